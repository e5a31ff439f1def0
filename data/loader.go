package data

import "fmt"

// Cursor is the sampler state a checkpoint keeps: the position, and the dataset size and
// shuffle it is only meaningful for. It holds nothing about the world size.
type Cursor struct {
	Position    int64  `json:"position"`
	NumExamples int    `json:"num_examples"`
	Seed        uint64 `json:"seed"`
	Sequential  bool   `json:"sequential"`
}

// Cursor returns the state to save after the last step taken.
func (s *Sampler) Cursor() Cursor {
	return Cursor{Position: s.pos, NumExamples: s.cfg.NumExamples, Seed: s.cfg.Seed, Sequential: s.cfg.Sequential}
}

// Resume moves to a saved cursor after checking that it was saved for the same dataset
// size and shuffle; world size, micro-batch size and accumulation may differ.
func (s *Sampler) Resume(c Cursor) error {
	switch {
	case c.NumExamples != s.cfg.NumExamples:
		return fmt.Errorf("%w: saved for %d examples, the dataset now has %d", ErrCursor, c.NumExamples, s.cfg.NumExamples)
	case c.Seed != s.cfg.Seed || c.Sequential != s.cfg.Sequential:
		return fmt.Errorf("%w: saved with seed %d (sequential %v), configured seed %d (sequential %v)",
			ErrCursor, c.Seed, c.Sequential, s.cfg.Seed, s.cfg.Sequential)
	}
	return s.SetPosition(c.Position)
}

// Loader joins examples, a sampler and a collator: each Next is one optimizer step's
// micro-batches for this rank.
type Loader struct {
	examples []Example
	targets  []int
	sampler  *Sampler
	collator *Collator
}

// NewLoader checks that the sampler is over exactly these examples.
func NewLoader(examples []Example, sampler *Sampler, collator *Collator) (*Loader, error) {
	if n := sampler.Config().NumExamples; n != len(examples) {
		return nil, fmt.Errorf("%w: sampler over %d examples, loader given %d", ErrConfig, n, len(examples))
	}
	targets := make([]int, len(examples))
	for i, ex := range examples {
		targets[i] = ex.TargetTokens()
	}
	return &Loader{examples: examples, targets: targets, sampler: sampler, collator: collator}, nil
}

// Sampler returns the loader's sampler (for its cursor).
func (l *Loader) Sampler() *Sampler { return l.sampler }

// StepData is one optimizer step on this rank.
type StepData struct {
	Step Step
	// Batches are this rank's AccumSteps micro-batches.
	Batches []*Batch
	// GlobalTargetTokens and GlobalExamples count the whole global batch, all ranks and
	// micro steps, padding excluded. Every rank computes them locally from the shared
	// order, so normalising the loss by them needs no extra collective.
	GlobalTargetTokens int64
	GlobalExamples     int
}

// Next collates the next step's micro-batches. Padding slots become Example.AsPadding.
func (l *Loader) Next() (*StepData, error) {
	step := l.sampler.Next()
	out := &StepData{Step: step}
	for _, slot := range step.Global {
		if !slot.Padding {
			out.GlobalTargetTokens += int64(l.targets[slot.Index])
			out.GlobalExamples++
		}
	}
	for j, micro := range step.Micro {
		examples := make([]Example, len(micro))
		for i, slot := range micro {
			examples[i] = l.examples[slot.Index]
			if slot.Padding {
				examples[i] = examples[i].AsPadding()
			}
		}
		b, err := l.collator.Collate(examples)
		if err != nil {
			return nil, fmt.Errorf("data: step at position %d, micro-batch %d: %w", step.Start, j, err)
		}
		out.Batches = append(out.Batches, b)
	}
	return out, nil
}
