package shard

import (
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Local is one rank's part of the frozen weights: for every unit of its Plan, the
// rank's ShardLen elements of the unit's flat buffer, in the compute dtype, in
// libtorch memory (padding is zero).
type Local struct {
	Plan   *Plan
	Rank   int
	DType  gotch.DType
	Shards []*ts.Tensor // by unit index, one-dimensional
}

// LoadLocal builds rank's shards of plan from src, a memory-mapped checkpoint, reading
// only the byte ranges of the pieces the rank holds: the pages of the other ranks'
// parts are never touched. names maps a plan tensor to its name in the checkpoint
// where they differ (alternate spellings; nil: the same). Values are converted to
// dtype by libtorch, as model.Load converts them.
func LoadLocal(src safetensors.Reader, plan *Plan, rank int, dtype gotch.DType, names map[string]string) (*Local, error) {
	if rank < 0 || rank >= plan.Size {
		return nil, fmt.Errorf("%w: rank %d of a shard group of %d", ErrPlan, rank, plan.Size)
	}
	if int(dtype.Size()) != plan.ElemSize {
		return nil, fmt.Errorf("%w: %v elements are %d bytes, the plan's %d", ErrPlan, dtype, dtype.Size(), plan.ElemSize)
	}
	l := &Local{Plan: plan, Rank: rank, DType: dtype}
	shapes := map[string][]int64{}
	for _, u := range plan.Units {
		for _, e := range u.Tensors {
			shapes[e.Name] = e.Shape
		}
	}
	for u, unit := range plan.Units {
		shard, err := ts.Zeros([]int64{unit.ShardLen}, dtype, gotch.CPU)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("shard: allocate the shard of %s: %w", plan.unitName(unit), err)
		}
		l.Shards = append(l.Shards, shard)
		for _, pc := range plan.Pieces(u, rank) {
			ck := pc.Tensor
			if n, ok := names[ck]; ok {
				ck = n
			}
			if err := readPiece(src, ck, shapes[pc.Tensor], pc, shard, dtype); err != nil {
				l.Close()
				return nil, err
			}
		}
	}
	return l, nil
}

// readPiece copies the elements of pc from the checkpoint tensor ck into shard.
func readPiece(src safetensors.Reader, ck string, shape []int64, pc Piece, shard *ts.Tensor, dtype gotch.DType) error {
	info, ok := src.Info(ck)
	if !ok {
		return fmt.Errorf("%w: no tensor %q", ErrCheckpoint, ck)
	}
	if !slices.Equal(info.Shape, shape) {
		return fmt.Errorf("%w: tensor %q has shape %v, the plan %v", ErrCheckpoint, ck, info.Shape, shape)
	}
	from, ok := model.TorchDType(info.DType)
	if !ok {
		return fmt.Errorf("%w: tensor %q is %s (want F32, F16, BF16 or F64)", ErrCheckpoint, ck, info.DType)
	}
	raw, err := src.Bytes(ck)
	if err != nil {
		return fmt.Errorf("shard: read %q: %w", ck, err)
	}
	// The piece is copied into the shard below: its mapped pages need not stay resident
	// beside the shard until the file is closed. Advisory: if the kernel refuses, they
	// stay mapped until Close.
	defer func() { _ = src.Release(ck) }()
	es := int64(from.Size())
	part := raw[pc.From*es : (pc.From+pc.Numel)*es] // the only bytes of ck this rank reads
	dst, err := dataOf(shard, pc.At, pc.Numel)
	if err != nil {
		return fmt.Errorf("shard: %q: %w", ck, err)
	}
	if from == dtype {
		copy(dst, part)
		return nil
	}
	// Convert with libtorch (the rounding model.Load uses): a temporary copy of the
	// piece in its own dtype, cast into the shard.
	// libtorch's error is thread-local in gotch's C layer: read it on the op's thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tmp := lib.AtTensorOfData(unsafe.Pointer(&part[0]), []int64{pc.Numel}, 1, uint(es), int(from.CKind()))
	if err := ts.TorchErr(); err != nil {
		return fmt.Errorf("shard: %q: %w", ck, err)
	}
	t := ts.New(tmp)
	defer t.Drop()
	view, err := shard.Narrow(0, pc.At, pc.Numel, false)
	if err != nil {
		return fmt.Errorf("shard: %q: %w", ck, err)
	}
	defer view.Drop()
	lib.AtCopy_(lib.Ctensor(view.Ctensor()), tmp)
	if err := ts.TorchErr(); err != nil {
		return fmt.Errorf("shard: convert %q from %s: %w", ck, info.DType, err)
	}
	return nil
}

// Close frees the shards.
func (l *Local) Close() {
	for _, s := range l.Shards {
		s.Drop()
	}
	l.Shards = nil
}

// Bytes is the memory the shards hold.
func (l *Local) Bytes() int64 { return l.Plan.ShardBytes() }

// dataOf is the memory of n elements of t (a contiguous CPU tensor) from element at,
// as bytes. It is valid while t lives.
func dataOf(t *ts.Tensor, at, n int64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	p, err := t.DataPtr()
	if err != nil {
		return nil, err
	}
	es := int64(t.DType().Size())
	return unsafe.Slice((*byte)(unsafe.Add(p, at*es)), n*es), nil
}

// moveTo moves the shards to dev (nothing to do on the CPU, where they are loaded).
func (l *Local) moveTo(dev gotch.Device) error {
	if dev == gotch.CPU {
		return nil
	}
	for u, s := range l.Shards {
		moved, err := s.To(dev, false)
		if err != nil {
			return fmt.Errorf("shard: move the shard of %s to %v: %w", l.Plan.unitName(l.Plan.Units[u]), dev, err)
		}
		s.Drop()
		l.Shards[u] = moved
	}
	return nil
}
