package export_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// writeBase writes a tiny random model of arch into a temporary directory.
func writeBase(t *testing.T, arch string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base-"+arch)
	tinymodel.WriteTo(t, dir, hfinit.Options{Arch: arch, Preset: "tiny", Seed: 7, Perturb: true})
	return dir
}

// adapted loads dir and injects adapters of method into targets, then perturbs every
// trainable tensor (B ≠ 0, a ≠ 0, heads too) so that ΔW ≠ 0.
func adapted(t *testing.T, dir, targets string, method adapter.Method) *model.Model {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	spec := adapter.Default()
	spec.Method, spec.R, spec.K = method, 4, 12
	if spec.TargetModules, err = adapter.ParseTargets(targets); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Inject(spec, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	m.Train(false)
	perturb(t, m, 3)
	return m
}

// perturb draws every trainable tensor of m afresh: normal(0, 0.3) for lora_A, lora_B
// and heads, normal(0, 0.05) for φ's amplitudes and raw bandwidths around their init.
func perturb(t *testing.T, m *model.Model, seed uint64) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rng := rand.New(rand.NewPCG(seed, 11))
	for _, nt := range m.TrainableTensors() {
		if !nt.Trainable {
			continue
		}
		vals := values(t, nt.Tensor)
		std := 0.3
		switch {
		case strings.HasSuffix(nt.Name, ".phi.amplitude"):
			std = 0.05
		case strings.HasSuffix(nt.Name, ".phi.bandwidth_raw"):
			std = 0.1
		}
		for i := range vals {
			if strings.HasSuffix(nt.Name, ".phi.amplitude") || strings.HasSuffix(nt.Name, ".lora_B") {
				vals[i] = 0
			}
			vals[i] += std * rng.NormFloat64()
		}
		set(t, nt.Tensor, vals)
	}
}

// set copies vals into x in place (no autograd).
func set(t *testing.T, x *ts.Tensor, vals []float64) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	src := ts.MustOfSlice(vals).MustReshape(x.MustSize(), true).MustTotype(x.DType(), true)
	defer src.MustDrop()
	ts.NoGrad(func() { x.Copy_(src) })
}

// values reads any tensor as float64 values.
func values(t *testing.T, x *ts.Tensor) []float64 {
	t.Helper()
	d := x.MustDetach(false)
	defer d.MustDrop()
	c := d.MustToDevice(gotch.CPU, gotch.Double, false, false, false)
	defer c.MustDrop()
	cc := c.MustContiguous(false)
	defer cc.MustDrop()
	out := make([]float64, cc.Numel())
	if len(out) > 0 {
		cc.MustCopyData(out, uint(len(out)))
	}
	return out
}

// logits runs m without autograd on a fixed padded batch and returns the logits.
func logits(t *testing.T, m *model.Model) []float64 {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ids, _ := model.Int64Tensor([]int64{1, 72, 101, 108, 33, 9, 1, 72, 5, 6, 2, 2}, 2, 6)
	mask, _ := model.Int64Tensor([]int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 2, 6)
	defer ids.MustDrop()
	defer mask.MustDrop()
	var out []float64
	ts.NoGrad(func() {
		y, err := m.Forward(model.Inputs{InputIDs: ids, AttentionMask: mask})
		if err != nil {
			t.Fatal(err)
		}
		out = values(t, y)
		y.MustDrop()
	})
	return out
}

// maxAbsDiff is max |a − b| (Inf when the lengths differ).
func maxAbsDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(a[i]-b[i]))
	}
	return worst
}

// maxAbs is max |a|.
func maxAbs(a []float64) float64 {
	worst := 0.0
	for _, x := range a {
		worst = math.Max(worst, math.Abs(x))
	}
	return worst
}
