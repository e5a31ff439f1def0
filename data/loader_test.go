package data_test

import (
	"errors"
	"testing"

	"github.com/lrtrain/lrtrain/data"
)

// Each rank's loader reports the same global target count, equal to the sum of the
// target tokens in all ranks' micro-batches; padding slots count nothing.
func TestLoaderGlobalTargetTokens(t *testing.T) {
	var examples []data.Example
	for i := range 11 {
		examples = append(examples, lmExample(10*i+3, 2+i%4, i)) // i%4+1 targets each (label 0 masked below)
		examples[i].Labels[0] = data.IgnoreIndex
	}
	const world = 2
	loaders := make([]*data.Loader, world)
	for rank := range world {
		s, err := data.NewSampler(data.SamplerConfig{NumExamples: len(examples), Seed: 2, WorldSize: world, Rank: rank, MicroBatch: 2, AccumSteps: 2})
		if err != nil {
			t.Fatal(err)
		}
		l, err := data.NewLoader(examples, s, &data.Collator{PadID: 0})
		if err != nil {
			t.Fatal(err)
		}
		loaders[rank] = l
	}
	var epochTargets int64
	for step := range 3 { // 11 examples, global batch 8: the second step is padded
		var sum int64
		var global int64 = -1
		for rank, l := range loaders {
			sd, err := l.Next()
			if err != nil {
				t.Fatal(err)
			}
			if len(sd.Batches) != 2 {
				t.Fatalf("%d micro-batches", len(sd.Batches))
			}
			for _, b := range sd.Batches {
				sum += int64(b.TargetTokens)
			}
			if global >= 0 && sd.GlobalTargetTokens != global {
				t.Errorf("step %d: rank %d computes %d global targets, rank 0 %d", step, rank, sd.GlobalTargetTokens, global)
			}
			global = sd.GlobalTargetTokens
		}
		if sum != global {
			t.Errorf("step %d: ranks' micro-batches hold %d targets, loader reports %d", step, sum, global)
		}
		if step < 2 {
			epochTargets += global
		}
	}
	var want int64
	for _, ex := range examples {
		want += int64(ex.TargetTokens())
	}
	if epochTargets != want {
		t.Errorf("epoch targets %d, want every example once: %d", epochTargets, want)
	}
	if loaders[0].Sampler().Cursor().Position != 19 {
		t.Errorf("cursor %+v after 3 steps of 8 over 11 examples", loaders[0].Sampler().Cursor())
	}

	s, _ := data.NewSampler(data.SamplerConfig{NumExamples: 3, WorldSize: 1, MicroBatch: 1})
	if _, err := data.NewLoader(examples, s, &data.Collator{}); !errors.Is(err, data.ErrConfig) {
		t.Errorf("sampler over another size: %v", err)
	}
}
