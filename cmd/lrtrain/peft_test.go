package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/adapterio"
	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/safetensors"
	"github.com/lrtrain/lrtrain/train"
)

// trainedLoRARun trains plain LoRA adapters (r = 4, the default targets) on a tiny
// Llama for a few steps and returns the run and base model directories.
func trainedLoRARun(t *testing.T) (run, base string) {
	t.Helper()
	return trainTiny(t, func(a *adapter.Spec) { a.Method, a.R = adapter.LoRA, 4 })
}

// evalLoss reads the loss of an eval report.
func evalLoss(t *testing.T, path string) float64 {
	t.Helper()
	p := perplexity(t, path)
	return math.Log(p)
}

// A trained lora run exported with --adapter-only is a PEFT adapter directory that
// lrtrain reads back: `eval --adapter` (base model found through
// base_model_name_or_path) gives the checkpoint's eval loss, and `train
// --init-adapter` starts from exactly the exported tensors — its adapter section
// (lrlora, r 8 in the file) replaced by the adapter's — and trains.
func TestPEFTAdapterRoundTrip(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	run, base := trainedLoRARun(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "adapter")
	runCLI(t, "export", "--run", run, "--out", out, "--adapter-only")
	d, err := adapterio.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if d.Config.PEFTType != "LORA" || d.Config.LRLoRA != nil || d.Config.BaseModelNameOrPath != base {
		t.Errorf("config: peft_type %s, lrlora block %v, base %q", d.Config.PEFTType, d.Config.LRLoRA, d.Config.BaseModelNameOrPath)
	}

	data := abs(t, "../../data/testdata/alpaca_tiny_eval.json")
	j1, j2 := filepath.Join(dir, "ckpt.json"), filepath.Join(dir, "peft.json")
	runCLI(t, "eval", "--run", run, "--data", data, "--task", "lm", "--out", j1)
	runCLI(t, "eval", "--adapter", out, "--data", data, "--format", "alpaca_json", "--max-len", "64", "--task", "lm", "--out", j2)
	l1, l2 := evalLoss(t, j1), evalLoss(t, j2)
	// The same float32 adapter values on the same base with the same kernels: the losses
	// agree to the bit in practice; the bound admits only a few float32 roundings
	// (ε32 ≈ 1.2e-7) of the loss's reduction.
	if math.Abs(l1-l2) > 4*1.2e-7*math.Abs(l1) || l1 <= 0 {
		t.Errorf("eval loss with the checkpoint %v, with the exported adapter %v", l1, l2)
	}

	// Continue training from the adapter with a learning rate far below float32's
	// resolution of the values (AdamW's step is ≈ lr), so the run's final adapters must
	// be the exported tensors exactly: proof that they were loaded.
	cfg := filepath.Join(dir, "cont.yaml")
	yaml := fmt.Sprintf(`model:
  path: %s
adapter:
  method: lrlora
  r: 8
data:
  format: alpaca_json
  train: %s
  max_len: 64
train:
  max_steps: 2
  micro_batch_size: 2
  lr: 1.0e-20
  weight_decay: 0.0
  log_every: 1
output:
  dir: %s
`, base, abs(t, "../../data/testdata/alpaca_tiny_train.json"), filepath.Join(dir, "cont"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "train", "--config", cfg, "--init-adapter", out)
	c, _, err := checkpoint.LatestValid(filepath.Join(dir, "cont", "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	saved, err := train.OpenCheckpoint(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if a := saved.Manifest.Options.Adapter; a.Method != adapter.LoRA || a.R != 4 || a.Alpha != 8 {
		t.Errorf("the continued run's adapter section: %+v", a)
	}
	got, err := safetensors.Open(filepath.Join(c.Dir, train.AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := safetensors.Open(filepath.Join(out, adapterio.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if got.Len() != want.Len() {
		t.Fatalf("%d tensors in the continued run, %d in the adapter", got.Len(), want.Len())
	}
	for _, name := range got.Names() {
		a, err1 := got.Float32s(name)
		b, err2 := want.Float32s(adapterio.FileName(name))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", name, err1, err2)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: continued run %v, adapter %v", name, i, a[i], b[i])
			}
		}
	}
	if !strings.HasSuffix(c.Dir, "step-000002") {
		t.Errorf("the continued run ended at %s, want step 2", c.Dir)
	}
}
