package shard

import (
	"fmt"
	"slices"
)

// Tensor is one frozen tensor to shard: its Hugging Face name and shape.
type Tensor struct {
	Name  string
	Shape []int64
}

// Numel is the number of elements (1 for a scalar).
func (t Tensor) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Options shape a Plan's flat buffers.
type Options struct {
	// ElemSize is the size in bytes of one element of the flat buffers, the compute
	// dtype's: 4 for float32 (the default), 2 for bfloat16 or float16, 8 for float64.
	ElemSize int
	// Align is the alignment in bytes of every tensor inside its unit's flat buffer
	// (default 64, a cache line, as a fresh libtorch allocation would be); it must be a
	// multiple of ElemSize.
	Align int
}

// Plan says which rank of a shard group holds which part of the frozen weights. The
// tensors of each unit — the embeddings, each block, the head: the pieces a pass runs
// one at a time — are laid out back to back (each aligned to Options.Align) in one
// flat buffer of Len elements, padded at the end so that it splits into Size equal
// slices; rank r holds elements [r·ShardLen, (r+1)·ShardLen) of every unit. It is
// FSDP's flat-parameter sharding, one flat parameter per block. Every rank computes
// the same Plan from the same tensor list; it depends on nothing else.
type Plan struct {
	Size     int    // ranks in the shard group
	ElemSize int    // bytes per element of the flat buffers
	Align    int    // bytes; tensor offsets in a flat buffer are multiples of it
	Blocks   int    // blocks 0..Blocks−1; the head's unit is numbered Blocks
	Units    []Unit // in pass order: embeddings (if any), blocks, head (if any)
}

// Unit is one flat buffer: the frozen tensors of one piece of a pass.
type Unit struct {
	// Block is the BlockHook number of the piece: Embeddings (−1), a block index, or
	// the number of blocks for the head.
	Block    int
	Tensors  []Entry // in the order given to NewPlan
	Numel    int64   // elements of the tensors
	Len      int64   // elements of the flat buffer: tensors, alignment gaps, tail padding
	ShardLen int64   // Len / Size: what each rank holds
}

// Entry is a tensor's place in its unit's flat buffer.
type Entry struct {
	Tensor
	Offset int64 // first element in the flat buffer
}

// Piece is the part of one tensor that one rank holds: the tensor's elements
// [From, From+Numel) in row-major order, at element At of the rank's shard.
type Piece struct {
	Tensor string
	From   int64
	Numel  int64
	At     int64
}

// NewPlan lays out tensors (typically every frozen tensor of a model, in binding
// order) for a shard group of size ranks. Tensors are grouped into units by their
// names (UnitOf); each block index from 0 to the highest must occur.
func NewPlan(tensors []Tensor, size int, opts Options) (*Plan, error) {
	if size < 1 {
		return nil, fmt.Errorf("%w: shard group of %d ranks", ErrPlan, size)
	}
	if opts.ElemSize == 0 {
		opts.ElemSize = 4
	}
	if opts.Align == 0 {
		opts.Align = 64
	}
	switch {
	case !slices.Contains([]int{1, 2, 4, 8}, opts.ElemSize):
		return nil, fmt.Errorf("%w: element size %d bytes (want 1, 2, 4 or 8)", ErrPlan, opts.ElemSize)
	case opts.Align < opts.ElemSize || opts.Align%opts.ElemSize != 0:
		return nil, fmt.Errorf("%w: alignment %d bytes is not a multiple of the element size %d", ErrPlan, opts.Align, opts.ElemSize)
	}
	p := &Plan{Size: size, ElemSize: opts.ElemSize, Align: opts.Align}
	byBlock := map[int][]Tensor{}
	seen := map[string]bool{}
	numBlocks := 0
	for _, t := range tensors {
		if seen[t.Name] {
			return nil, fmt.Errorf("%w: tensor %q listed twice", ErrPlan, t.Name)
		}
		seen[t.Name] = true
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("%w: tensor %q has shape %v", ErrPlan, t.Name, t.Shape)
			}
		}
		b := UnitOf(t.Name)
		if b >= 0 {
			numBlocks = max(numBlocks, b+1)
		}
		byBlock[b] = append(byBlock[b], Tensor{Name: t.Name, Shape: slices.Clone(t.Shape)})
	}
	for b := 0; b < numBlocks; b++ {
		if len(byBlock[b]) == 0 {
			return nil, fmt.Errorf("%w: no tensor of block %d, but there are tensors of block %d", ErrPlan, b, numBlocks-1)
		}
	}
	p.Blocks = numBlocks
	if hs := byBlock[Head]; len(hs) > 0 {
		byBlock[numBlocks] = hs
	}
	for b := Embeddings; b <= numBlocks; b++ {
		if ts := byBlock[b]; len(ts) > 0 {
			p.Units = append(p.Units, p.layout(b, ts))
		}
	}
	return p, nil
}

// layout places ts in one flat buffer.
func (p *Plan) layout(block int, ts []Tensor) Unit {
	align := int64(p.Align / p.ElemSize)
	// Slices travel as float32 words, so each holds a whole number of 4 bytes.
	word := int64(max(1, 4/p.ElemSize))
	u := Unit{Block: block}
	var end int64
	for _, t := range ts {
		off := roundUp(end, align)
		u.Tensors = append(u.Tensors, Entry{Tensor: t, Offset: off})
		u.Numel += t.Numel()
		end = off + t.Numel()
	}
	u.Len = roundUp(end, int64(p.Size)*word)
	u.ShardLen = u.Len / int64(p.Size)
	return u
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// Unit returns the index in Units of the unit with BlockHook number block.
func (p *Plan) Unit(block int) (int, bool) {
	for i, u := range p.Units {
		if u.Block == block {
			return i, true
		}
	}
	return 0, false
}

// Pieces lists the parts of tensors that rank holds of unit u (an index into Units),
// in order; what is left of the rank's shard is padding.
func (p *Plan) Pieces(u, rank int) []Piece {
	unit := p.Units[u]
	lo := int64(rank) * unit.ShardLen
	hi := lo + unit.ShardLen
	var out []Piece
	for _, e := range unit.Tensors {
		a, b := max(lo, e.Offset), min(hi, e.Offset+e.Numel())
		if a < b {
			out = append(out, Piece{Tensor: e.Name, From: a - e.Offset, Numel: b - a, At: a - lo})
		}
	}
	return out
}

// ShardBytes is what one rank holds, in bytes: the same on every rank.
func (p *Plan) ShardBytes() int64 {
	var n int64
	for _, u := range p.Units {
		n += u.ShardLen
	}
	return n * int64(p.ElemSize)
}

// TotalBytes is the size of the tensors themselves, without gaps or padding.
func (p *Plan) TotalBytes() int64 {
	var n int64
	for _, u := range p.Units {
		n += u.Numel
	}
	return n * int64(p.ElemSize)
}

// BufferLen is the length, in elements, of the buffer unit u (an index into Units) is
// gathered into: the unit's own Len, or that of the longest unit at most an eighth
// longer. Units of nearly one size (an embedding table and an LM head of the same
// shape, whose Len differ by the final norm) then share one buffer size, so that a
// caching allocator, whose freed blocks serve requests of their own size class, can
// hand either's memory to the other instead of keeping a block of each.
func (p *Plan) BufferLen(u int) int64 {
	n := p.Units[u].Len
	for _, v := range p.Units {
		if v.Len > n && v.Len*8 <= p.Units[u].Len*9 {
			n = v.Len
		}
	}
	return n
}

// MaxUnitBytes is the largest flat buffer, in bytes: what one gathered unit costs.
func (p *Plan) MaxUnitBytes() int64 {
	var n int64
	for _, u := range p.Units {
		n = max(n, u.Len)
	}
	return n * int64(p.ElemSize)
}
