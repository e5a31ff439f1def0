package train

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/phiop"
)

// With grad_accum_steps > 1, model.delta_per_step forms each LR-LoRA layer's ΔW once
// per optimizer step: φ's op runs one forward and one backward per layer and step
// instead of one per micro-batch (counted by phiop.Passes), and the run is the same run
// as without it. Three float64 steps of 2 micro-batches: the per-step losses and
// gradient norms agree to 1e-10 relative (only the order of the sums over
// micro-batches differs, ~1e-16 per sum; a gradient term lost or counted twice is off
// by O(1)), and steps 2 and 3 start from adapters with a ≠ 0, so φ' and with it the
// gradients of B, A and β are in them. With φ shared by all layers too (the one backward
// call adds every layer's part into the shared amplitudes' gradient).
func TestDeltaPerStepRunsPhiOncePerStep(t *testing.T) {
	for _, share := range []adapter.Sharing{adapter.ShareNone, adapter.ShareAll} {
		t.Run(string(share), func(t *testing.T) { deltaPerStepRunsPhiOncePerStep(t, share) })
	}
}

func deltaPerStepRunsPhiOncePerStep(t *testing.T, share adapter.Sharing) {
	const steps, accum, layers = 3, 2, 14 // the tiny Llama: 2 blocks × 7 projections
	type outcome struct {
		passes       int64
		losses, norm []float64
	}
	run := func(perStep bool) outcome {
		o := tinyOptions(t, t.TempDir())
		o.Model.DType = "float64"
		o.Model.DeltaPerStep = perStep
		o.Adapter.Phi.Share = share
		o.Train.MaxSteps, o.Train.MicroBatchSize, o.Train.GradAccumSteps = steps, 1, accum
		o.Checkpoint.Every = 0
		before := phiop.Passes()
		if _, err := Run(context.Background(), o, Env{Console: io.Discard}); err != nil {
			t.Fatal(err)
		}
		out := outcome{passes: phiop.Passes() - before}
		logs, err := os.ReadFile(filepath.Join(o.Output.Dir, "train.log"))
		if err != nil {
			t.Fatal(err)
		}
		noted := strings.Contains(string(logs), `"adapters":14,"of":14,"micro_batches":2,`) &&
			strings.Contains(string(logs), `"message":"ΔW formed once per optimizer step (model.delta_per_step)"`)
		if noted != perStep {
			t.Errorf("delta_per_step %v: train.log notes ΔW held once per step: %v", perStep, noted)
		}
		recs, _ := metricsOf(t, o.Output.Dir)
		for _, r := range recs {
			out.losses = append(out.losses, r["loss"].(float64))
			out.norm = append(out.norm, r["grad_norm"].(float64))
		}
		return out
	}
	held, per := run(true), run(false)
	if want := int64(steps * layers * 2); held.passes != want {
		t.Errorf("delta_per_step: %d φ passes in %d steps, want %d (one forward and one backward per layer and step)", held.passes, steps, want)
	}
	if want := int64(steps * layers * 2 * accum); per.passes != want {
		t.Errorf("per micro-batch: %d φ passes in %d steps, want %d", per.passes, steps, want)
	}
	stepsAgree(t, steps, 1e-10, "with delta_per_step", "without", held.losses, held.norm, per.losses, per.norm)
}
