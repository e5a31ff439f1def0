package e2e

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/safetensors"
)

// runSpec is one training run of the tiny Llama.
type runSpec struct {
	steps, micro, accum int
	every               int // checkpoint.every
	out                 string
}

var (
	baseOnce sync.Once
	baseDir  string
	baseErr  error
)

// baseModel writes the tiny Llama once per test binary and returns its directory.
func baseModel(t *testing.T) string {
	t.Helper()
	baseOnce.Do(func() {
		baseDir = filepath.Join(workDir, "base")
		run(t, time.Minute, "init-model", "--arch", "llama", "--preset", "tiny", "--seed", "1", "--out", baseDir)
	})
	if baseErr != nil {
		t.Fatal(baseErr)
	}
	return baseDir
}

// config writes the run's configuration and returns its path. The schedule is constant
// without warmup, so the learning rate of a step does not depend on max_steps and a run
// can be continued to more steps exactly as if it had been given them from the start.
// Adam's eps is 1e-4 rather than 1e-8: with 1e-8, gradient components at float32
// rounding level get Adam's full-size first step lr·sign(g), so the sign of a rounding
// error decides a 1e-2 move and runs that cut the batch differently end up 0.02 apart
// (measured, 4 ranks vs 1); with 1e-6 the gap was still up to 1.5e-4, with 1e-4 a few
// 1e-7, while training still moves the adapters by about 0.02.
func (s runSpec) config(t *testing.T) string {
	t.Helper()
	yaml := fmt.Sprintf(`model: {path: %s, dtype: float32}
adapter: {method: lrlora, r: 4, dropout: 0.0, phi: {k: 8}}
data: {format: alpaca_json, train: %s, max_len: 64}
train: {seed: 7, eps: 1.0e-4, max_steps: %d, micro_batch_size: %d, grad_accum_steps: %d, lr: 1.0e-2,
        warmup_ratio: 0, schedule: constant, grad_clip: 1.0, log_every: 1}
checkpoint: {every: %d, keep_last: 100}
dist: {backend: gloo, timeout: 20s}
output: {dir: %s}
`, baseModel(t), testdata(t, "alpaca_tiny_train.json"), s.steps, s.micro, s.accum, s.every, s.out)
	path := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// launchArgs is `lrtrain launch --standalone` with n workers running `train`.
func launchArgs(n int, runDir, cfg string, extra ...string) []string {
	args := []string{"launch", "--standalone", "--nproc-per-node", strconv.Itoa(n), "--run-dir", runDir,
		"--grace-period", "3s"}
	args = append(args, extra...)
	return append(args, "--", "train", "--config", cfg)
}

// adapterAt reads adapter.safetensors of the checkpoint of step under out.
func adapterAt(t *testing.T, out string, step int) map[string][]float64 {
	t.Helper()
	path := filepath.Join(out, "checkpoints", checkpoint.DirName(int64(step)), "adapter.safetensors")
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]float64{}
	for _, n := range f.Names() {
		if m[n], err = f.Float64s(n); err != nil {
			t.Fatalf("%s: %s: %v", path, n, err)
		}
	}
	if len(m) == 0 {
		t.Fatalf("%s holds no tensors", path)
	}
	return m
}

// adapterBytes reads the raw adapter file of a checkpoint.
func adapterBytes(t *testing.T, out string, step int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "checkpoints", checkpoint.DirName(int64(step)), "adapter.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// diff compares two adapter sets tensor by tensor and returns the largest absolute
// difference and the largest absolute value of want. Missing or reshaped tensors fail.
func diff(t *testing.T, want, got map[string][]float64) (maxDiff, maxAbs float64) {
	t.Helper()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(got) != len(want) {
		t.Errorf("%d adapter tensors, want %d", len(got), len(want))
	}
	for _, n := range names {
		w, g := want[n], got[n]
		if len(g) != len(w) {
			t.Fatalf("%s: %d values, want %d", n, len(g), len(w))
		}
		for i := range w {
			if math.IsNaN(g[i]) || math.IsInf(g[i], 0) {
				t.Fatalf("%s[%d] = %v", n, i, g[i])
			}
			maxDiff = max(maxDiff, math.Abs(w[i]-g[i]))
			maxAbs = max(maxAbs, math.Abs(w[i]))
		}
	}
	return maxDiff, maxAbs
}

// moved returns the largest change of any adapter value between two checkpoints, to
// show that a comparison tolerance is small against what training changed.
func moved(t *testing.T, from, to map[string][]float64) float64 {
	t.Helper()
	d, _ := diff(t, from, to)
	return d
}
