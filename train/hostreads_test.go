package train

import (
	"context"
	"io"
	"testing"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// hostReadsPerStep is what one optimizer step of a single rank reads from its device
// to the host: the step's loss sum (accumulated on the device over the micro-batches)
// and the clipping norm (the per-gradient norms stacked on the device). The target
// counts come from the host batch. A group of several ranks adds what its all-reduce
// reads: none on the flat path (the gradients reduced in place on the device), one per
// trainable tensor on the host path (allReduceHost).
const hostReadsPerStep = 2

// Every optimizer step reads the device exactly hostReadsPerStep times, however many
// micro-batches it accumulates and however many adapters it trains: the count of
// tensorkit's reads (the one helper every host read goes through) between two step
// hooks. No step synchronises the device either (deviceSyncs; the GPU flat path's
// ordering by events is checked against the fake NCCL in flatorder_test.go).
func TestHostReadsPerStep(t *testing.T) {
	for _, accum := range []int{1, 3} {
		o := tinyOptions(t, t.TempDir())
		o.Train.MaxSteps, o.Train.MicroBatchSize, o.Train.GradAccumSteps = 3, 1, accum
		o.Checkpoint.Every = 0
		var perStep []int64
		last := int64(-1)
		env := Env{Console: io.Discard}
		env.Hooks.Step = func(StepMetrics) {
			n := tensorkit.HostReads()
			if last >= 0 {
				perStep = append(perStep, n-last)
			}
			last = n
		}
		syncs := deviceSyncs.Load()
		res, err := Run(context.Background(), o, env)
		if err != nil {
			t.Fatal(err)
		}
		if n := deviceSyncs.Load() - syncs; n != 0 {
			t.Errorf("accum %d: %d device-wide synchronisations in the run, want 0", accum, n)
		}
		if res.Step != 3 || len(perStep) != 2 {
			t.Fatalf("accum %d: %d steps, %d step intervals; want 3 and 2", accum, res.Step, len(perStep))
		}
		for i, n := range perStep {
			if n != hostReadsPerStep {
				t.Errorf("accum %d, step %d: %d host reads, want %d", accum, i+2, n, hostReadsPerStep)
			}
		}
	}
}
