package layertask

import (
	"math"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
)

// Every method must learn: the held-out error ends well below the error of the
// untrained adapter (which is exactly the teacher update's error, since ΔW = 0
// at initialisation), and training losses are finite.
func TestEveryMethodReducesTheError(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Steps = 120
	for _, m := range []adapter.Method{adapter.LoRA, adapter.SineLoRA, adapter.LRLoRA} {
		t.Run(m.String(), func(t *testing.T) {
			res, err := Run(cfg, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Losses) != cfg.Steps {
				t.Fatalf("%d losses for %d steps", len(res.Losses), cfg.Steps)
			}
			for i, l := range res.Losses {
				if math.IsNaN(l) || math.IsInf(l, 0) {
					t.Fatalf("step %d: loss %v", i, l)
				}
			}
			first, last := res.Losses[0], res.Losses[len(res.Losses)-1]
			if !(last < 0.8*first) {
				t.Errorf("loss went from %.5f to %.5f: not learning", first, last)
			}
			if !(res.EvalLoss < 0.8*first) {
				t.Errorf("held-out loss %.5f vs initial %.5f", res.EvalLoss, first)
			}
			if res.StableRankDelta < 1 || res.TeacherSR < 1 {
				t.Errorf("stable ranks must be ≥ 1: ΔW %.3f, Δ* %.3f", res.StableRankDelta, res.TeacherSR)
			}
		})
	}
}

func TestLearningRateSchedule(t *testing.T) {
	// 100 steps: warmup over 10, peak at step 9, linear decay to 0 after step 99.
	cases := []struct {
		step int
		want float64
	}{{0, 0.1}, {4, 0.5}, {9, 1}, {10, 1}, {55, 0.5}, {99, 1.0 / 90}}
	for _, c := range cases {
		if got := LearningRate(1, c.step, 100); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("step %d: lr %v, want %v", c.step, got, c.want)
		}
	}
}
