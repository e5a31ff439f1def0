package tinymodel_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	tinymodel.RemoveShared()
	os.Exit(code)
}

// files are the files of a model directory, by name.
func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func same(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// The kit writes hfinit's bytes for the same options, with the tiny preset by
// default, so switching a test to it keeps that test's weights.
func TestWriteIsHfinitsTinyPreset(t *testing.T) {
	for _, o := range []hfinit.Options{
		{Arch: "llama", Seed: 1},
		{Arch: "roberta", Seed: 7, NumLabels: 3, Perturb: true},
	} {
		got := tinymodel.Write(t, o)
		ref := filepath.Join(t.TempDir(), "ref")
		o.Preset = "tiny"
		if _, err := hfinit.Write(ref, o); err != nil {
			t.Fatal(err)
		}
		g, r := files(t, got), files(t, ref)
		if _, ok := g["model.safetensors"]; !ok {
			t.Fatalf("%s: no model.safetensors among %d files", o.Arch, len(g))
		}
		if !same(g, r) {
			t.Errorf("%s: the kit's files differ from hfinit.Write's", o.Arch)
		}
	}
}

func TestWriteToReturnsTheConfig(t *testing.T) {
	cfg := tinymodel.WriteTo(t, filepath.Join(t.TempDir(), "m"), hfinit.Options{Arch: "qwen2", Seed: 2})
	if cfg.HiddenSize != 64 || cfg.NumHiddenLayers != 2 {
		t.Errorf("config hidden %d layers %d, want the tiny preset's 64 and 2", cfg.HiddenSize, cfg.NumHiddenLayers)
	}
}

// Shared writes once per options: the same options give the same directory, other
// options (another seed) another one with other weights; RemoveShared removes them.
func TestSharedWritesOncePerOptions(t *testing.T) {
	a := tinymodel.Shared(t, hfinit.Options{Arch: "llama", Seed: 1})
	b := tinymodel.Shared(t, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1})
	c := tinymodel.Shared(t, hfinit.Options{Arch: "llama", Seed: 2})
	if a != b {
		t.Errorf("same options, two directories: %s and %s", a, b)
	}
	if a == c {
		t.Fatalf("seeds 1 and 2 share %s", a)
	}
	if same(files(t, a), files(t, c)) {
		t.Error("seeds 1 and 2 wrote the same files")
	}
	if !same(files(t, a), files(t, tinymodel.Write(t, hfinit.Options{Arch: "llama", Seed: 1}))) {
		t.Error("Shared and Write differ for the same options")
	}
	tinymodel.RemoveShared()
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Errorf("%s after RemoveShared: %v", a, err)
	}
	d := tinymodel.Shared(t, hfinit.Options{Arch: "llama", Seed: 1})
	if _, err := os.Stat(filepath.Join(d, "config.json")); err != nil {
		t.Errorf("Shared after RemoveShared: %v", err)
	}
}
