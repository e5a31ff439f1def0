package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// issuesOf returns the Issues of err, failing the test when err is not an Issues list.
func issuesOf(t *testing.T, err error) Issues {
	t.Helper()
	var l Issues
	if !errors.As(err, &l) {
		t.Fatalf("error %v (%T) is not an Issues list", err, err)
	}
	return l
}

// findIssue returns the issue about key, or nil.
func findIssue(l Issues, key string) *Issue {
	for _, i := range l {
		if i.Key == key {
			return i
		}
	}
	return nil
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fixture makes a model directory and data files in a temp dir and returns a config
// file (in the same dir) that validates, plus the dir.
func fixture(t *testing.T) (cfgPath, dir string) {
	t.Helper()
	dir = t.TempDir()
	writeFile(t, dir, "model/config.json", "{}")
	writeFile(t, dir, "train.json", "[]")
	writeFile(t, dir, "eval.json", "[]")
	src := strings.NewReplacer("DIR", dir).Replace(`# lrtrain train --config cfg.yaml
model:
  path: DIR/model
data:
  format: alpaca_json
  train: DIR/train.json
  eval: [DIR/eval.json]
train:
  max_steps: 10
output:
  dir: DIR/run
`)
	return writeFile(t, dir, "cfg.yaml", src), dir
}

// withoutWhere returns a copy of c without the record of where values came from, for
// comparisons.
func withoutWhere(c *Config) Config {
	cp := *c
	cp.where = nil
	return cp
}
