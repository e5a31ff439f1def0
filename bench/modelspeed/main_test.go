package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const python = "/usr/bin/python3"

// TestBothSidesComputeTheSameStep runs the harness's agreement check on a tiny Qwen2:
// lrtrain's first training step (in this process) against torch_ref.py's, for LoRA
// and LR-LoRA, and torch_ref.py's other formulations (PEFT's unmerged LoRA, φ by
// broadcast and autograd) against the same lrtrain step. It also makes sure that the
// check notices when the two sides compute different things.
func TestBothSidesComputeTheSameStep(t *testing.T) {
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skipf("%s cannot import torch (%v): Debian's python3-torch is the reference", python, err)
	}
	b := &bench{
		workload: workload{Preset: "tiny", Layers: 2, Batch: 2, Seq: 12, Rank: 4, K: 50, Seed: 5, WorkDir: t.TempDir()},
		// One thread: on a loaded machine OpenMP's barriers make tiny ops take milliseconds.
		Threads: 1, Warmup: 1, Steps: 0, Python: python, Script: "torch_ref.py",
	}
	if _, err := b.prepare(); err != nil {
		t.Fatal(err)
	}
	ours := map[string]*result{}
	for _, method := range []string{"lora", "lrlora"} {
		r, err := measureLRTrain(runOpts{ModelDir: b.modelDir(), Adapters: b.adaptersPath(), Inputs: b.inputsPath(),
			Method: method, Threads: b.Threads, Warmup: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Count != 2*11 {
			t.Errorf("%s: %d targets, want 22 (2 rows of 12 tokens, shifted)", method, r.Count)
		}
		ours[method] = r
	}
	theirs, err := b.torch([]string{"lora", "lrlora", "lora-peft", "lrlora-naive"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range theirs {
		ref := ours[strings.TrimSuffix(strings.TrimSuffix(r.Method, "-peft"), "-naive")]
		desc, err := agreement(ref, r)
		t.Logf("%s: %s", r.Method, desc)
		if err != nil {
			t.Error(err)
		}
		want := 2 * 7 * 2 // layers × modules × (A, B)
		if strings.HasPrefix(r.Method, "lrlora") {
			want *= 2 // and a, β
		}
		if len(r.GradNorms) != want {
			t.Errorf("%s: %d gradient norms, want %d", r.Method, len(r.GradNorms), want)
		}
	}
	// LoRA and LR-LoRA with these values differ: the check must say so.
	if _, err := agreement(ours["lrlora"], theirs[0]); err == nil {
		t.Error("lrtrain lrlora and pytorch lora passed the agreement check")
	}
}

func TestCheckpointIsReused(t *testing.T) {
	w := workload{Preset: "tiny", Layers: 1, Batch: 1, Seq: 4, Rank: 2, K: 4, Seed: 1, WorkDir: t.TempDir()}
	if _, err := w.prepare(); err != nil {
		t.Fatal(err)
	}
	stamp := filepath.Join(w.modelDir(), stampName)
	before := modTime(t, filepath.Join(w.modelDir(), "model.safetensors"))
	if _, err := w.prepare(); err != nil {
		t.Fatal(err)
	}
	if after := modTime(t, filepath.Join(w.modelDir(), "model.safetensors")); !after.Equal(before) {
		t.Errorf("the checkpoint was rewritten although %s matched", stamp)
	}
	w.Layers = 2
	cfg, err := w.prepare()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NumHiddenLayers != 2 {
		t.Errorf("after changing the layer count the checkpoint has %d layers, want 2", cfg.NumHiddenLayers)
	}
}

func modTime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}
