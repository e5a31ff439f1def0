package export_test

import (
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
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
		vals := tensortest.Values(t, nt.Tensor)
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
		tensortest.Set(t, nt.Tensor, vals)
	}
}
