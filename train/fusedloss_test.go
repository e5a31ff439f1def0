package train

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// model.fused_loss (on by default) makes the trainer take a causal LM's loss from the
// pass's head instead of the logits, and train.log says so once; the run is the run
// with the logits. Three float64 steps of 2 micro-batches with chunks of 5 positions
// (so every pass has several, the last one short), against fused_loss false: the
// per-step losses and gradient norms agree to 1e-10 relative (only the order of sums
// differs; a target lost, counted twice or normalised differently is off by O(1/n)).
func TestFusedLossTrainsLikeLogits(t *testing.T) {
	const steps = 3
	type outcome struct{ losses, norms []float64 }
	run := func(fused bool) outcome {
		o := tinyOptions(t, t.TempDir())
		if !DefaultOptions().Model.FusedLoss {
			t.Fatal("model.fused_loss is not on by default")
		}
		o.Model.DType = "float64"
		o.Model.FusedLoss, o.Model.LossChunk = fused, 5
		o.Train.MaxSteps, o.Train.MicroBatchSize, o.Train.GradAccumSteps = steps, 2, 2
		o.Checkpoint.Every = 0
		if _, err := Run(context.Background(), o, Env{Console: io.Discard}); err != nil {
			t.Fatal(err)
		}
		logs, err := os.ReadFile(filepath.Join(o.Output.Dir, "train.log"))
		if err != nil {
			t.Fatal(err)
		}
		noted := 0
		for _, line := range strings.Split(string(logs), "\n") {
			if strings.Contains(line, `"loss_chunk":5,`) && strings.Contains(line, `"message":"causal LM loss computed in the head without the logits`) {
				noted++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[fused]; noted != want {
			t.Errorf("fused_loss %v: train.log notes the fused loss %d times, want %d", fused, noted, want)
		}
		var out outcome
		recs, _ := metricsOf(t, o.Output.Dir)
		for _, r := range recs {
			out.losses = append(out.losses, r["loss"].(float64))
			out.norms = append(out.norms, r["grad_norm"].(float64))
		}
		return out
	}
	fused, logits := run(true), run(false)
	stepsAgree(t, steps, 1e-10, "fused", "from the logits", fused.losses, fused.norms, logits.losses, logits.norms)
}
