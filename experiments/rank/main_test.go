package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// A few steps of every method on a smaller problem: the report is written, every KL
// is finite, and LoRA's ΔW is s·B·A (equal stable ranks, no constant part).
func TestExperimentRuns(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	err := os.WriteFile(cfg, []byte(`arch: llama
preset: tiny
init_std: 0.1
seed: 1
targets: q_proj,v_proj,down_proj
rank: 2
teacher_rank: 8
teacher_scale: 0.5
methods: [lora, sinelora, lrlora]
k: 50
l: 3
seq_len: 16
train_sequences: 16
eval_sequences: 4
batch: 8
steps: 4
lrs: [0.005]
warmup_ratio: 0.25
grad_clip: 1.0
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := run(cfg, out); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		BaseEvalKL float64   `json:"base_eval_kl"`
		Results    []*Result `json:"results"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 3 || !(res.BaseEvalKL > 0) {
		t.Fatalf("%d results, base KL %v", len(res.Results), res.BaseEvalKL)
	}
	for _, r := range res.Results {
		if math.IsNaN(r.EvalKL) || math.IsNaN(r.FinalTrainKL) || r.EvalKL < 0 || len(r.SRDelta) != 6 {
			t.Errorf("%s: eval KL %v, train KL %v, %d modules", r.Method, r.EvalKL, r.FinalTrainKL, len(r.SRDelta))
		}
		if r.Method != "lora" {
			continue
		}
		if r.ConstShare > 0.05 {
			t.Errorf("lora: constant share %v", r.ConstShare)
		}
		for name, sr := range r.SRDelta {
			if math.Abs(sr-r.SRBA[name]) > 1e-6*sr {
				t.Errorf("lora %s: sr(ΔW) %v ≠ sr(B·A) %v", name, sr, r.SRBA[name])
			}
		}
	}
	for _, f := range []string{"results.md", "loss.png", "lrlora_stable_rank.png", "lora-lr0.005.metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
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
