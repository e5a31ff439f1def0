package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// testConfig is the reduced grid: a few steps on a smaller problem, 2 seeds, 2 learning
// rates, LoRA against the residual variant on the power-law teacher, and a
// fixed-bandwidth ablation with a shared β on the low-rank teacher.
const testConfig = `arch: llama
preset: tiny
init_std: 0.1
seed: 1
seeds: [1, 2]
targets: q_proj,v_proj,down_proj
ranks: [2]
teachers: [powerlaw]
teacher_rank: 8
teacher_scale: 0.5
methods: [lora]
variants:
  - {name: lrlora-residual, method: lrlora, phi: {residual: true}}
ablations:
  - {name: lrlora, method: lrlora, lrs: [0.005]}
  - {name: lrlora-fixedbw, method: lrlora, phi: {fixed_bandwidth: true, share: bandwidth}, lrs: [0.005]}
ablation_ranks: [1]
ablation_teachers: [lowrank]
k: 50
l: 3
seq_len: 16
train_sequences: 16
eval_sequences: 4
val_sequences: 4
batch: 8
steps: 3
lrs: [0.005, 0.001]
warmup_ratio: 0.34
grad_clip: 1.0
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The reduced grid runs end to end and its numbers are consistent: every KL finite,
// the residual variant's first loss is LoRA's bit for bit (a = 0 makes it LoRA), LoRA's
// ΔW has no constant part and sr(ΔW) = sr(B·A), each group's mean ± std is that of its
// per-seed values, the chosen learning rate has the lowest mean validation KL, and the
// power-law teacher has the requested norm and spectrum.
//
// The grid is trained three runs at a time (-jobs 3); a second pass one at a time must
// give the same numbers bit for bit: every run has its own seeded generators and student
// and the same kernels in the same thread configuration, so the order runs finish in
// cannot change them.
func TestExperimentRuns(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cfg := writeConfig(t, testConfig)
	if err := run(cfg, out, 3); err != nil {
		t.Fatal(err)
	}
	res := readResults(t, out)
	out1 := filepath.Join(t.TempDir(), "out1")
	if err := run(cfg, out1, 1); err != nil {
		t.Fatal(err)
	}
	serial := readResults(t, out1)
	if len(serial.Results) != len(res.Results) {
		t.Fatalf("-jobs 1: %d results, -jobs 3: %d", len(serial.Results), len(res.Results))
	}
	for i, r := range res.Results {
		s := serial.Results[i]
		if r.Section != s.Section || r.Teacher != s.Teacher || r.Variant != s.Variant || r.Seed != s.Seed || r.LR != s.LR ||
			r.EvalKL != s.EvalKL || r.ValKL != s.ValKL || r.FirstLoss != s.FirstLoss || r.LastStepsKL != s.LastStepsKL {
			t.Errorf("result %d: -jobs 3 %+v, -jobs 1 %+v", i, *r, *s)
		}
	}
	// main: 2 variants × 2 seeds × 2 lrs; ablations: 2 variants × 2 seeds × 1 lr.
	if len(res.Results) != 12 || len(res.Groups) != 6 || len(res.Teachers) != 2 {
		t.Fatalf("%d results, %d groups, %d teachers", len(res.Results), len(res.Groups), len(res.Teachers))
	}
	first := map[string]float64{}
	for _, r := range res.Results {
		if math.IsNaN(r.EvalKL) || math.IsNaN(r.ValKL) || r.EvalKL < 0 || r.ValKL < 0 || len(r.SRDelta) != 6 {
			t.Errorf("%s %s: held-out %v, val %v, %d modules", r.Teacher, r.Variant, r.EvalKL, r.ValKL, len(r.SRDelta))
		}
		if r.Section == sectionMain {
			k := fmt.Sprintf("s%d lr%g", r.Seed, r.LR)
			if f, ok := first[k]; ok && f != r.FirstLoss {
				t.Errorf("%s: first loss %v (%s) ≠ %v", k, r.FirstLoss, r.Variant, f)
			}
			first[k] = r.FirstLoss
		}
		if r.Variant == "lora" {
			if r.ConstShare > 0.05 {
				t.Errorf("lora: constant share %v", r.ConstShare)
			}
			for name, sr := range r.SRDelta {
				if math.Abs(sr-r.SRBA[name]) > 1e-6*sr {
					t.Errorf("lora %s: sr(ΔW) %v ≠ sr(B·A) %v", name, sr, r.SRBA[name])
				}
			}
		}
	}
	if len(first) != 4 {
		t.Errorf("first losses of %d (seed, lr) pairs, want 4", len(first))
	}
	checkGroups(t, res.Groups, res.Results)
	checkTeachers(t, res.Teachers)
	for _, f := range []string{"results.md", "loss_powerlaw_r2.png", "metrics/powerlaw-r2-lora-s2-lr0.001.metrics.jsonl",
		"metrics/lowrank-r1-lrlora-fixedbw-s1-lr0.005.metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

// checkGroups recomputes every group's statistics from its runs (std with two seeds is
// |x₁ − x₂|/√2; float64 rounding differs from the two-pass formula by a few ulps, hence
// 1e-12 relative) and checks that exactly one learning rate per variant is chosen, the
// one with the lowest mean validation KL.
func checkGroups(t *testing.T, groups []*Group, results []*Result) {
	t.Helper()
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }
	chosen := map[string]int{}
	for _, g := range groups {
		var xs []float64
		for _, r := range results {
			if r.Section == g.Section && r.Teacher == g.Teacher && r.Rank == g.Rank && r.Variant == g.Variant && r.LR == g.LR {
				xs = append(xs, r.EvalKL)
			}
		}
		if len(xs) != 2 || g.Seeds != 2 {
			t.Fatalf("%s %s lr %g: %d runs, %d seeds", g.Section, g.Variant, g.LR, len(xs), g.Seeds)
		}
		if m, s := (xs[0]+xs[1])/2, math.Abs(xs[0]-xs[1])/math.Sqrt2; !close(g.Test.Mean, m) || !close(g.Test.Std, s) {
			t.Errorf("%s %s lr %g: held-out %v ± %v, want %v ± %v", g.Section, g.Variant, g.LR, g.Test.Mean, g.Test.Std, m, s)
		}
		key := g.Section + "/" + g.Teacher + "/" + g.Variant
		if g.Best {
			chosen[key]++
		}
		for _, h := range groups {
			if h.Best && h.Section+"/"+h.Teacher+"/"+h.Variant == key && h.Rank == g.Rank && h.Val.Mean > g.Val.Mean {
				t.Errorf("%s: chose lr %g (val %v) over lr %g (val %v)", key, h.LR, h.Val.Mean, g.LR, g.Val.Mean)
			}
		}
	}
	for key, n := range chosen {
		if n != 1 {
			t.Errorf("%s: %d learning rates chosen", key, n)
		}
	}
	if len(chosen) != 4 {
		t.Errorf("%d variants with a chosen learning rate, want 4", len(chosen))
	}
}

// checkTeachers: both updates are teacher_scale·‖W0‖_F (float32 tensors: 1e-5
// relative), and the power-law update's stable rank is Σ_{i≤64} 1/i² (σ_i = 1/i over
// the 64 directions of the tiny preset's 64-wide layers; the stable rank's iterative
// σ_max is accurate to about 1e-4 relative).
func checkTeachers(t *testing.T, ts []*taskSummary) {
	t.Helper()
	want := 0.0
	for i := 1; i <= 64; i++ {
		want += 1 / float64(i*i)
	}
	for _, s := range ts {
		if math.Abs(s.RelNorm-0.5) > 1e-5 {
			t.Errorf("%s teacher: ‖ΔW*‖/‖W0‖ = %v, want 0.5", s.Teacher, s.RelNorm)
		}
		if s.Teacher != teacherPowerLaw {
			continue
		}
		for _, m := range []string{"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"} {
			if got := s.ModuleSR[m]; math.Abs(got-want) > 1e-3*want {
				t.Errorf("power-law teacher %s: stable rank %v, want %v", m, got, want)
			}
		}
	}
}

// lrAt keeps the experiment's own convention (step counted, ⌊ratio·steps⌋ warmup
// steps): its rates equal, bit for bit, the formula the published results used.
func TestLRAtKeepsTheExperimentsConvention(t *testing.T) {
	old := func(c Config, lr float64, step int) float64 {
		warm := int(c.WarmupRatio * float64(c.Steps))
		if step < warm {
			return lr * float64(step+1) / float64(warm)
		}
		rest := c.Steps - warm
		return lr * float64(c.Steps-step) / float64(max(rest, 1))
	}
	for _, c := range []Config{{Steps: 200, WarmupRatio: 0.1}, {Steps: 4, WarmupRatio: 0.25}, {Steps: 37, WarmupRatio: 0.15}, {Steps: 10}} {
		for _, lr := range []float64{0.005, 0.001, 0.0002, 3e-4} {
			for step := 0; step < c.Steps; step++ {
				if got, want := c.lrAt(lr, step), old(c, lr, step); got != want {
					t.Fatalf("steps %d ratio %v lr %v step %d: %v, want %v", c.Steps, c.WarmupRatio, lr, step, got, want)
				}
			}
		}
	}
	// The convention itself: 200 steps, 20 warmup steps, peak 1.
	c := Config{Steps: 200, WarmupRatio: 0.1}
	for step, want := range map[int]float64{0: 1.0 / 20, 19: 1, 20: 1, 110: 0.5, 199: 1.0 / 180} {
		if got := c.lrAt(1, step); math.Abs(got-want) > 4*0x1p-52*want {
			t.Errorf("step %d: %v, want %v", step, got, want)
		}
	}
}

type resultsFile struct {
	Teachers []*taskSummary `json:"teachers"`
	Groups   []*Group       `json:"groups"`
	Results  []*Result      `json:"results"`
}

func readResults(t *testing.T, out string) resultsFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res resultsFile
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	return res
}
