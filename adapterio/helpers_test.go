package adapterio_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/adapterio"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
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
		vals := tensortest.Values(t, nt.Tensor)
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
		tensortest.Set(t, nt.Tensor, vals)
	}
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
