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
