package adapterio_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/adapterio"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/safetensors"
)

// writeBase writes a tiny random model of arch into a temporary directory.
func writeBase(t *testing.T, arch string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base-"+arch)
	tinymodel.WriteTo(t, dir, hfinit.Options{Arch: arch, Preset: "tiny", Seed: 7, Perturb: true})
	return dir
}

// load loads dir, closed when the test ends.
func load(t *testing.T, dir string) *model.Model {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	m.Train(false)
	return m
}

// inject attaches adapters of spec to m and draws every trainable tensor afresh
// (B ≠ 0, φ's amplitudes ≠ 0, heads too), so that ΔW ≠ 0.
func inject(t *testing.T, m *model.Model, spec adapter.Spec) {
	t.Helper()
	if _, err := m.Inject(spec, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	m.Train(false)
	rng := rand.New(rand.NewPCG(3, 11))
	for _, nt := range m.TrainableTensors() {
		if !nt.Trainable {
			continue
		}
		vals := values(t, nt.Tensor)
		for i := range vals {
			switch {
			case strings.HasSuffix(nt.Name, ".phi.amplitude"):
				vals[i] = 0.05 * rng.NormFloat64()
			case strings.HasSuffix(nt.Name, ".phi.bandwidth_raw"):
				vals[i] += 0.1 * rng.NormFloat64()
			default:
				vals[i] = 0.3 * rng.NormFloat64()
			}
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
	c := x.MustDetach(false).MustToDevice(gotch.CPU, gotch.Double, false, false, true).MustContiguous(true)
	defer c.MustDrop()
	out := make([]float64, c.Numel())
	if len(out) > 0 {
		c.MustCopyData(out, uint(len(out)))
	}
	return out
}

// logits runs m without autograd on a fixed padded batch.
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

// writeDir writes an adapter directory by hand: cfg as adapter_config.json and the
// tensors (float32 values, stored as dt) as adapter_model.safetensors.
func writeDir(t *testing.T, cfg string, dt safetensors.DType, tensors map[string][]float32, shapes map[string][]int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, adapterio.ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var list []safetensors.Tensor
	for name, vals := range tensors {
		data, err := safetensors.EncodeFloat32s(dt, vals)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, safetensors.Tensor{Name: name, DType: dt, Shape: shapes[name], Data: data})
	}
	if err := safetensors.Write(filepath.Join(dir, adapterio.WeightsFile), list, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}
