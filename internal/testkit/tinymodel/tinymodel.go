// Package tinymodel writes small models in the Hugging Face layout for tests:
// config.json, model.safetensors and the tokenizer files, exactly as package
// model/hfinit (and `lrtrain init-model`) writes them. The options are hfinit's own,
// so a test keeps the very weights it has always had (golden files depend on them):
// the same options give the same bytes. Preset defaults to "tiny" (hidden 64, 2
// layers, vocabulary 512).
//
//	dir := tinymodel.Write(t, hfinit.Options{Arch: "llama", Seed: 1})
//	shared := tinymodel.Shared(t, hfinit.Options{Arch: "llama", Seed: 1}) // once per binary
package tinymodel

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// Write writes the model o describes into a new directory under t.TempDir(),
// named after the architecture, and returns the directory.
func Write(t testing.TB, o hfinit.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), o.Arch)
	WriteTo(t, dir, o)
	return dir
}

// WriteTo writes the model o describes into dir (created if needed) and returns
// its config as model.ReadConfig reads it back.
func WriteTo(t testing.TB, dir string, o hfinit.Options) *model.Config {
	t.Helper()
	cfg, err := write(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func write(dir string, o hfinit.Options) (*model.Config, error) {
	if o.Preset == "" {
		o.Preset = "tiny"
	}
	cfg, err := hfinit.Write(dir, o)
	if err != nil {
		return nil, fmt.Errorf("tinymodel: write %s %s (seed %d) into %s: %w", o.Arch, o.Preset, o.Seed, dir, err)
	}
	return cfg, nil
}

// The models Shared wrote, by their options, in one temporary directory of this
// process.
var shared struct {
	mu   sync.Mutex
	root string
	dirs map[string]*sharedDir
}

type sharedDir struct {
	once sync.Once
	dir  string
	err  error
}

// Shared returns a directory holding the model o describes, written on the first
// call with these options in this test binary and reused afterwards, for the many
// tests that only read a model. Callers must not change its files. TestMain removes
// them all with RemoveShared after m.Run.
func Shared(t testing.TB, o hfinit.Options) string {
	t.Helper()
	if o.Preset == "" {
		o.Preset = "tiny"
	}
	key := fmt.Sprintf("%+v", o)
	shared.mu.Lock()
	if shared.dirs == nil {
		shared.dirs = map[string]*sharedDir{}
	}
	d := shared.dirs[key]
	if d == nil {
		d = &sharedDir{}
		shared.dirs[key] = d
	}
	shared.mu.Unlock()
	d.once.Do(func() {
		root, err := sharedRoot()
		if err != nil {
			d.err = err
			return
		}
		h := fnv.New64a()
		h.Write([]byte(key))
		d.dir = filepath.Join(root, fmt.Sprintf("%s-%x", o.Arch, h.Sum64()))
		_, d.err = write(d.dir, o)
	})
	if d.err != nil {
		t.Fatal(d.err)
	}
	return d.dir
}

func sharedRoot() (string, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.root == "" {
		root, err := os.MkdirTemp("", "lrtrain-tinymodel-")
		if err != nil {
			return "", fmt.Errorf("tinymodel: %w", err)
		}
		shared.root = root
	}
	return shared.root, nil
}

// RemoveShared removes every directory Shared wrote; TestMain calls it after m.Run.
func RemoveShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.root != "" {
		os.RemoveAll(shared.root)
		shared.root, shared.dirs = "", nil
	}
}
