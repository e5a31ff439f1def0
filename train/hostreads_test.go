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
// hooks.
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
		res, err := Run(context.Background(), o, env)
		if err != nil {
			t.Fatal(err)
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
