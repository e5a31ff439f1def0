package data

import "fmt"

// LastBatch says what happens to the examples left at the end of an epoch that do not fill
// a whole global batch.
type LastBatch int

const (
	// PadLastBatch (the default) completes the last global batch with padding slots that
	// repeat examples from the start of the epoch's order; they are flagged so that the
	// loss ignores them (Example.AsPadding), so every example counts exactly once.
	PadLastBatch LastBatch = iota
	// DropLastBatch leaves the remaining examples out of this epoch.
	DropLastBatch
)

// SamplerConfig describes the distributed sampling of one dataset.
type SamplerConfig struct {
	// NumExamples is the dataset size (after building and packing).
	NumExamples int
	// Seed selects the shuffle; epoch e uses Permutation(NumExamples, Seed, e).
	Seed uint64
	// Sequential keeps the dataset order instead of shuffling.
	Sequential bool
	// WorldSize and Rank place this process among the data-parallel ranks.
	WorldSize, Rank int
	// MicroBatch is the examples per rank per forward pass; AccumSteps the micro steps
	// per optimizer step (0 means 1).
	MicroBatch, AccumSteps int
	LastBatch              LastBatch
}

// Slot is one place in a global batch: the index of an example, and whether it only pads
// the epoch's last global batch.
type Slot struct {
	Index   int
	Padding bool
}

// Step is one optimizer step's share of the data.
type Step struct {
	Epoch int
	// Start is the position of the step's first example and Next the position the
	// following step starts at: Next is what a checkpoint saved after this step records.
	Start, Next int64
	// Global is the whole global batch in order: AccumSteps micro steps, each WorldSize ×
	// MicroBatch slots, rank after rank.
	Global []Slot
	// Micro is this rank's part: AccumSteps micro-batches of MicroBatch slots.
	Micro [][]Slot
}

// Sampler hands out global batches of MicroBatch·AccumSteps·WorldSize examples and each
// rank's disjoint part of them. In every micro step j, rank k takes the MicroBatch slots
// starting at (j·WorldSize + k)·MicroBatch of the global batch.
//
// Positions count examples along the epochs' orders: position p is offset p mod
// NumExamples in epoch p div NumExamples. They do not depend on the world size, micro-batch
// size or accumulation, so a run resumed at a position continues the same example order
// with any of them changed. With the same global batch size the global batches are
// exactly the uninterrupted run's; with a different one, the example stream is the same
// and only its cut into batches (and, with DropLastBatch, which tail is dropped) differs.
type Sampler struct {
	cfg       SamplerConfig
	pos       int64
	permEpoch int
	perm      []int
}

// NewSampler checks cfg and starts at position 0.
func NewSampler(cfg SamplerConfig) (*Sampler, error) {
	if cfg.AccumSteps == 0 {
		cfg.AccumSteps = 1
	}
	switch {
	case cfg.NumExamples <= 0:
		return nil, fmt.Errorf("%w: sampler over %d examples", ErrEmpty, cfg.NumExamples)
	case cfg.WorldSize < 1 || cfg.Rank < 0 || cfg.Rank >= cfg.WorldSize:
		return nil, fmt.Errorf("%w: rank %d of world size %d", ErrConfig, cfg.Rank, cfg.WorldSize)
	case cfg.MicroBatch < 1 || cfg.AccumSteps < 1:
		return nil, fmt.Errorf("%w: micro-batch %d, accumulation steps %d", ErrConfig, cfg.MicroBatch, cfg.AccumSteps)
	case cfg.LastBatch != PadLastBatch && cfg.LastBatch != DropLastBatch:
		return nil, fmt.Errorf("%w: last-batch policy %d", ErrConfig, cfg.LastBatch)
	}
	s := &Sampler{cfg: cfg, permEpoch: -1}
	if cfg.LastBatch == DropLastBatch && cfg.NumExamples < s.GlobalBatchSize() {
		return nil, fmt.Errorf("%w: %d examples do not fill one global batch of %d (dropping the last batch would leave none)",
			ErrConfig, cfg.NumExamples, s.GlobalBatchSize())
	}
	return s, nil
}

// Config returns the configuration with defaults filled in.
func (s *Sampler) Config() SamplerConfig { return s.cfg }

// GlobalBatchSize is MicroBatch·AccumSteps·WorldSize.
func (s *Sampler) GlobalBatchSize() int {
	return s.cfg.MicroBatch * s.cfg.AccumSteps * s.cfg.WorldSize
}

// StepsPerEpoch is the number of optimizer steps in an epoch.
func (s *Sampler) StepsPerEpoch() int {
	g, n := s.GlobalBatchSize(), s.cfg.NumExamples
	if s.cfg.LastBatch == DropLastBatch {
		return n / g
	}
	return (n + g - 1) / g
}

// Position is where the next step starts.
func (s *Sampler) Position() int64 { return s.pos }

// Epoch is the epoch the next step belongs to.
func (s *Sampler) Epoch() int { return int(s.pos / int64(s.cfg.NumExamples)) }

// SetPosition moves to a position (from Step.Next, PositionAtStep or a checkpoint). A position
// inside an epoch's dropped tail moves on to the next epoch's start.
func (s *Sampler) SetPosition(pos int64) error {
	if pos < 0 {
		return fmt.Errorf("%w: position %d", ErrCursor, pos)
	}
	s.pos = s.normalise(pos)
	return nil
}

// PositionAtStep is the position after step optimizer steps from position 0, when every
// step so far used this sampler's global batch size. After a change of world size or batch
// size, resume from a saved position instead.
func (s *Sampler) PositionAtStep(step int64) int64 {
	spe := int64(s.StepsPerEpoch())
	epoch, within := step/spe, step%spe
	return s.normalise(epoch*int64(s.cfg.NumExamples) + within*int64(s.GlobalBatchSize()))
}

func (s *Sampler) normalise(pos int64) int64 {
	n := int64(s.cfg.NumExamples)
	if s.cfg.LastBatch == DropLastBatch && n-pos%n < int64(s.GlobalBatchSize()) {
		return (pos/n + 1) * n
	}
	return pos
}

// Next returns the next step and advances past it. Epochs follow one another without end;
// the caller decides when to stop (Step.Epoch, StepsPerEpoch).
func (s *Sampler) Next() Step {
	n, g := s.cfg.NumExamples, s.GlobalBatchSize()
	epoch, offset := int(s.pos/int64(n)), int(s.pos%int64(n))
	perm := s.order(epoch)
	global := make([]Slot, g)
	for i := range global {
		j := offset + i
		if j < n {
			global[i] = Slot{Index: perm[j]}
		} else { // PadLastBatch: wrap around the epoch's order, flagged
			global[i] = Slot{Index: perm[(j-n)%n], Padding: true}
		}
	}
	next := s.pos + int64(g)
	if offset+g >= n {
		next = int64(epoch+1) * int64(n)
	}
	step := Step{Epoch: epoch, Start: s.pos, Next: s.normalise(next), Global: global,
		Micro: RankSlots(global, s.cfg.Rank, s.cfg.WorldSize, s.cfg.MicroBatch)}
	s.pos = step.Next
	return step
}

// order returns the epoch's example order, computing it once per epoch.
func (s *Sampler) order(epoch int) []int {
	if s.permEpoch != epoch {
		if s.cfg.Sequential {
			s.perm = make([]int, s.cfg.NumExamples)
			for i := range s.perm {
				s.perm[i] = i
			}
		} else {
			s.perm = Permutation(s.cfg.NumExamples, s.cfg.Seed, epoch)
		}
		s.permEpoch = epoch
	}
	return s.perm
}

// RankSlots cuts a global batch into one rank's micro-batches: in micro step j, rank k
// takes the micro slots starting at (j·worldSize + k)·micro.
func RankSlots(global []Slot, rank, worldSize, micro int) [][]Slot {
	accum := len(global) / (worldSize * micro)
	out := make([][]Slot, accum)
	for j := range accum {
		start := (j*worldSize + rank) * micro
		out[j] = global[start : start+micro : start+micro]
	}
	return out
}
