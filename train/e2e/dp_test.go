package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Tolerance of the float32 runs. The configuration only accepts float32 (and bfloat16)
// backbones, so ranks that cut the same global batch differently sum the same
// per-example gradients in another order (the all-reduce itself sums in float64):
// rounding differences of the order of float32's 1.2e-7, which Adam amplifies for
// parameters with tiny gradients (hence eps 1e-4 in runSpec.config). dpTol bounds the
// final adapters' largest difference relative to their largest value (measured: a few
// 1e-7 absolute against a largest value of 3, so about 100× below the bound); each test
// also checks that it is far below how much training moved the adapters.
const dpTol = 1e-5

// Four CPU ranks (launch --standalone --nproc-per-node 4, Gloo) with one micro-batch
// each train the same adapters as one process accumulating four micro-batches: the
// same global batch of 4 examples per step.
func TestFourRanksTrainLikeOne(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: multi-process; runs without -short")
	}
	tmp := t.TempDir()
	one := runSpec{steps: 6, micro: 1, accum: 4, every: 2, out: filepath.Join(tmp, "one")}
	four := runSpec{steps: 6, micro: 1, accum: 1, every: 2, out: filepath.Join(tmp, "four")}
	run(t, 60*time.Second, "train", "--config", one.config(t))
	run(t, 90*time.Second, launchArgs(4, filepath.Join(tmp, "launch"), four.config(t))...)

	want := adapterAt(t, one.out, 6)
	got := adapterAt(t, four.out, 6)
	d, scale := diff(t, want, got)
	m := moved(t, adapterAt(t, one.out, 2), want)
	t.Logf("4 ranks vs 1: max |Δ| %.3g, max |value| %.3g, moved %.3g between steps 2 and 6", d, scale, m)
	if d > dpTol*scale {
		t.Errorf("final adapters differ by %.3g > %.0e × %.3g", d, dpTol, scale)
	}
	if m < 100*d {
		t.Errorf("training moved the adapters by only %.3g: the comparison (Δ %.3g) says little", m, d)
	}
}

// A run checkpointed by 2 ranks continues with 1 rank (grad_accum 4) and with 4 ranks
// (grad_accum 1) on the same global batch of 4 examples and ends where the
// uninterrupted 2-rank run ends, within dpTol (the summation order changes with the cut).
func TestResumeWithAnotherWorldSize(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: multi-process; runs without -short")
	}
	tmp := t.TempDir()
	ref := runSpec{steps: 8, micro: 1, accum: 2, every: 2, out: filepath.Join(tmp, "ref")}
	run(t, 90*time.Second, launchArgs(2, filepath.Join(tmp, "l-ref"), ref.config(t))...)

	half := runSpec{steps: 4, micro: 1, accum: 2, every: 2, out: filepath.Join(tmp, "to1")}
	run(t, 90*time.Second, launchArgs(2, filepath.Join(tmp, "l-half"), half.config(t))...)
	if out, err := exec.Command("cp", "-a", half.out, filepath.Join(tmp, "to4")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	want := adapterAt(t, ref.out, 8)
	mv := moved(t, adapterAt(t, ref.out, 4), want)

	for _, c := range []struct {
		world, accum int
		out          string
	}{{1, 4, half.out}, {4, 1, filepath.Join(tmp, "to4")}} {
		rest := runSpec{steps: 8, micro: 1, accum: c.accum, every: 2, out: c.out}
		if c.world == 1 {
			run(t, 60*time.Second, "train", "--config", rest.config(t), "--resume", "auto")
		} else {
			run(t, 90*time.Second, launchArgs(c.world, filepath.Join(tmp, "l-rest4"), rest.config(t))...)
		}
		got := adapterAt(t, c.out, 8)
		d, scale := diff(t, want, got)
		t.Logf("2 ranks → %d: max |Δ| %.3g, max |value| %.3g, moved %.3g in steps 5–8", c.world, d, scale, mv)
		if d > dpTol*scale {
			t.Errorf("resumed on %d ranks: final adapters differ by %.3g > %.0e × %.3g", c.world, d, dpTol, scale)
		}
		if mv < 100*d {
			t.Errorf("resumed on %d ranks: steps 5–8 moved the adapters by only %.3g (Δ %.3g)", c.world, mv, d)
		}
		// The continuation really started from step 4: steps 2 and 4 are phase 1's.
		if b, a := adapterBytes(t, c.out, 4), adapterBytes(t, half.out, 4); string(a) != string(b) {
			t.Errorf("resumed on %d ranks: the step-4 checkpoint changed", c.world)
		}
	}
}
