package main

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/export"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/train"
)

// The overrides --init-adapter puts before the command line's --set make the adapter
// section describe the adapter: an LR-LoRA export (centred φ, shared grid, Chebyshev
// grid, rsLoRA) read back through config and train.FromConfig gives the same
// shaping settings as the adapters that were exported, whatever the file said.
func TestInitAdapterOverridesDescribeTheAdapter(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base := filepath.Join(t.TempDir(), "base")
	tinymodel.WriteTo(t, base, hfinit.Options{Arch: "qwen2", Preset: "tiny", Seed: 3})
	m, err := model.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	spec := adapter.Default()
	spec.R, spec.Alpha, spec.RSLoRA, spec.K, spec.Grid, spec.Center, spec.Init = 2, 3, true, 9, adapter.Chebyshev, true, adapter.InitSmall
	spec.TargetModules = adapter.Targets{Regex: `.*layers\.1\..*_proj`}
	if _, err := m.Inject(spec, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "adapter")
	if _, err := export.AdapterOnly(m, out, export.Options{}); err != nil {
		t.Fatal(err)
	}
	pre, _, closeDir, err := initAdapter(out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDir()
	yaml := "model:\n  path: " + base + "\nadapter:\n  method: sinelora\n  r: 16\n  phi:\n    k: 40\ndata:\n  format: text\n  train: x.txt\n"
	c, err := config.Decode([]byte(yaml), "cfg.yaml", pre)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := train.FromConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	got, want := shapingOf(t, opts.Adapter), shapingOf(t, m.Adapters()[0].Spec())
	if got != want {
		t.Errorf("adapter section after the overrides\n%s\nthe exported adapters\n%s", got, want)
	}
	// The regex written as the suffixes that select the same modules.
	var n int
	for _, l := range m.Linears() {
		if opts.Adapter.TargetModules.Match(l.Name) != (l.Adapter() != nil) {
			t.Errorf("%s: selected %v, adapted %v", l.Name, opts.Adapter.TargetModules.Match(l.Name), l.Adapter() != nil)
		}
		if l.Adapter() != nil {
			n++
		}
	}
	if n == 0 {
		t.Fatal("nothing adapted")
	}
}

func shapingOf(t *testing.T, s adapter.Spec) string {
	t.Helper()
	raw, _ := json.Marshal(s.Resolved())
	var all map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, k := range adapter.ShapingKeys() {
		if k != "target_modules" {
			out[k] = all[k]
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// eval --adapter's loader gives a classifier the adapter's label count (3, where the
// base config says 2) and the adapted model's logits; a directory that is no adapter
// is a usage error (exit 2) for train --init-adapter.
func TestOpenPEFTClassifierAndBadDir(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base := filepath.Join(t.TempDir(), "base")
	tinymodel.WriteTo(t, base, hfinit.Options{Arch: "roberta", Preset: "tiny", Seed: 4})
	m, err := model.Load(base, model.WithNumLabels(3))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	spec := adapter.Default()
	spec.Method, spec.R = adapter.LoRA, 2
	spec.TargetModules = adapter.Targets{Names: []string{"query", "value"}}
	if _, err := m.Inject(spec, rand.New(rand.NewPCG(2, 2))); err != nil {
		t.Fatal(err)
	}
	m.Train(false)
	out := filepath.Join(t.TempDir(), "adapter")
	if _, err := export.AdapterOnly(m, out, export.Options{}); err != nil {
		t.Fatal(err)
	}
	pm, err := openPEFT(out, "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	if n := pm.Config().NumLabels; n != 3 {
		t.Errorf("num_labels %d, want 3", n)
	}
	a, b := forward(t, m), forward(t, pm.Model)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("logit %d: adapted %v, loaded %v", i, a[i], b[i])
		}
	}

	empty := t.TempDir()
	cfg := filepath.Join(empty, "cfg.yaml")
	if err := os.WriteFile(cfg, []byte("model:\n  path: "+base+"\ndata:\n  format: text\n  train: x.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"train", "--config", cfg, "--init-adapter", empty}); code != exitUsage {
		t.Errorf("train --init-adapter with no adapter_config.json: exit %d, want %d", code, exitUsage)
	}
}
