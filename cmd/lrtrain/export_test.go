package main

import (
	"context"
	"encoding/json"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/evaluate"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/train"
)

// trainedRun trains LR-LoRA adapters on a tiny Llama for a few steps and returns the
// run directory and the base model directory.
func trainedRun(t *testing.T) (run, base string) {
	t.Helper()
	return trainTiny(t, func(a *adapter.Spec) { a.R, a.K = 4, 8 })
}

// trainTiny trains adapters (the default spec, then adapt's changes) on a tiny Llama
// over the bundled alpaca set for 4 steps and returns the run and base model directories.
func trainTiny(t *testing.T, adapt func(*adapter.Spec)) (run, base string) {
	t.Helper()
	dir := t.TempDir()
	base = filepath.Join(dir, "base")
	tinymodel.WriteTo(t, base, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1})
	run = filepath.Join(dir, "run")
	o := train.DefaultOptions()
	o.Model.Path = base
	adapt(&o.Adapter)
	o.Data.Format = "alpaca_json"
	o.Data.Train = []string{abs(t, "../../data/testdata/alpaca_tiny_train.json")}
	o.Data.MaxLen = 64
	o.Train.MaxSteps, o.Train.MicroBatchSize, o.Train.LR, o.Train.LogEvery = 4, 2, 1e-2, 1
	o.Output.Dir = run
	if _, err := train.Run(context.Background(), o, train.Env{Console: io.Discard}); err != nil {
		t.Fatal(err)
	}
	return run, base
}

func abs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func runCLI(t *testing.T, args ...string) {
	t.Helper()
	if code := run(args); code != exitOK {
		t.Fatalf("lrtrain %s: exit %d", strings.Join(args, " "), code)
	}
}

// From a training run: the merged export computes what base + checkpoint adapters
// compute (bit for bit in float32: same W0 + ΔW, same kernels), eval gives the same
// perplexity either way, and inspect writes its table, valid PNGs and per-module
// stable ranks equal to evaluate.AnalyzeAdapters'.
func TestExportEvalInspectFromRun(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	run, _ := trainedRun(t)
	dir := t.TempDir()
	merged, adapter, insp := filepath.Join(dir, "merged"), filepath.Join(dir, "adapter"), filepath.Join(dir, "insp")
	runCLI(t, "export", "--run", run, "--out", merged)
	runCLI(t, "export", "--run", run, "--out", adapter, "--adapter-only")

	am, err := openAdapted("", run, "")
	if err != nil {
		t.Fatal(err)
	}
	defer am.Close()
	mm, err := model.Load(merged)
	if err != nil {
		t.Fatal(err)
	}
	defer mm.Close()
	a, b := forward(t, am.Model), forward(t, mm)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("logit %d: adapted %v, merged %v", i, a[i], b[i])
		}
	}
	if _, err := os.Stat(filepath.Join(adapter, "adapter_model.safetensors")); err != nil {
		t.Error(err)
	}

	data := abs(t, "../../data/testdata/alpaca_tiny_eval.json")
	j1, j2 := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	runCLI(t, "eval", "--run", run, "--data", data, "--task", "lm", "--out", j1)
	runCLI(t, "eval", "--model", merged, "--data", data, "--format", "alpaca_json", "--max-len", "64", "--task", "lm", "--out", j2)
	p1, p2 := perplexity(t, j1), perplexity(t, j2)
	if math.Abs(p1-p2) > 1e-9*p1 || p1 <= 1 {
		t.Errorf("perplexity with the checkpoint %v, of the merged model %v", p1, p2)
	}

	runCLI(t, "inspect", "--run", run, "--out", insp)
	for _, name := range []string{inspectRankPlot, inspectPhiPlot, inspectSpectra, inspectLossPlot} {
		f, err := os.Open(filepath.Join(insp, name))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Errorf("%s: not a valid PNG (%v)", name, err)
		}
	}
	table, err := os.ReadFile(filepath.Join(insp, inspectTable))
	if err != nil {
		t.Fatal(err)
	}
	stats, err := evaluate.AnalyzeAdapters(am.Model, evaluate.AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []adapterRecord
	raw, _ := os.ReadFile(filepath.Join(insp, inspectJSON))
	if err := json.Unmarshal(raw, &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(stats) || len(stats) != 14 {
		t.Fatalf("%d records, %d adapters (want 14)", len(recs), len(stats))
	}
	for i, s := range stats {
		if recs[i].Module != s.Name || recs[i].SRDelta != s.SRDelta || recs[i].SRBA != s.SRBA {
			t.Errorf("record %d: %+v, want %s %v %v", i, recs[i], s.Name, s.SRDelta, s.SRBA)
		}
		if !strings.Contains(string(table), s.Name) {
			t.Errorf("table lacks %s", s.Name)
		}
		// After a few steps B·A ≈ 0, so ΔW ≈ s·φ(0)·𝟙𝟙ᵀ: rank one, stable rank ≈ 1.
		if !(s.SRDelta >= 1-1e-9) {
			t.Errorf("%s: sr(ΔW) = %v after training, want ≥ 1", s.Name, s.SRDelta)
		}
		// … and inspect reports that constant: most of ‖ΔW‖², with φ(0) ≠ 0.
		if r := recs[i]; !(r.ConstShare > 0.5) || r.Phi0 == 0 || r.Phi0 != r.RawPhi0 {
			t.Errorf("%s: constant share %v, φ(0) %v (paper's %v): the failure mode unreported", s.Name, r.ConstShare, r.Phi0, r.RawPhi0)
		}
	}
	offsets, err := os.ReadFile(filepath.Join(insp, inspectOffset))
	if err != nil || !strings.Contains(string(offsets), stats[0].Name) {
		t.Errorf("%s: %v", inspectOffset, err)
	}
}

func forward(t *testing.T, m *model.Model) []float64 {
	t.Helper()
	ids, _ := model.Int64Tensor([]int64{1, 72, 101, 108, 33, 9, 40, 41}, 2, 4)
	defer ids.MustDrop()
	var out []float64
	ts.NoGrad(func() {
		y, err := m.Forward(model.Inputs{InputIDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		defer y.MustDrop()
		d := y.MustToDevice(gotch.CPU, gotch.Double, false, false, false)
		defer d.MustDrop()
		out = d.Float64Values()
	})
	return out
}

func perplexity(t *testing.T, path string) float64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Metrics []struct {
			Name  string
			Value float64
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	for _, m := range r.Metrics {
		if m.Name == "perplexity" {
			return m.Value
		}
	}
	t.Fatalf("%s has no perplexity", path)
	return 0
}
