package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Command lines that used to wait or pass fail at once with exit 2 and a message naming
// what is wrong: an etcd endpoint whose port is not a port, a launch without a worker
// command, a YAML value of the wrong type that --set overrides, a --resume directory
// that holds no checkpoint.
func TestUsageErrorsFailAtOnce(t *testing.T) {
	cfg, _ := trainConfig(t, "")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(string(raw), "lr: 1.0e-2", "lr: fast", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"endpoint port", []string{"launch", "--nnodes", "2", "--rdzv-id", "j", "--rdzv-endpoint", "127.0.0.1:notaport", "--", "train"},
			[]string{"--rdzv-endpoint", `port "notaport"`}},
		{"endpoint range", []string{"launch", "--nnodes", "2", "--rdzv-id", "j", "--rdzv-endpoint", "127.0.0.1:99999", "--", "train"},
			[]string{"--rdzv-endpoint", `port "99999"`}},
		{"no worker command", []string{"launch", "--standalone"}, []string{"no worker command", "-- train --config"}},
		{"type error under --set", []string{"train", "--config", bad, "--set", "train.lr=1e-3"},
			[]string{"expected a number", bad + ":", "overridden by --set train.lr=1e-3"}},
		{"resume from a directory without checkpoints", []string{"train", "--config", cfg, "--resume", t.TempDir()},
			[]string{"checkpoint.resume", "neither a checkpoint", "want auto, never"}},
	} {
		begin := time.Now()
		code, msg := runCaptured(t, c.args...)
		took := time.Since(begin)
		ok := code == exitUsage
		for _, w := range c.want {
			ok = ok && strings.Contains(msg, w)
		}
		if !ok {
			t.Errorf("%s: exit %d after %v, want %d naming %q:\n%s", c.name, code, took.Round(time.Millisecond), exitUsage, c.want, msg)
		}
	}
}

// --resume with the run's checkpoints directory continues from the newest checkpoint in it.
func TestResumeTakesTheCheckpointsDirectory(t *testing.T) {
	cfg, out := trainConfig(t, "")
	if code, msg := runCaptured(t, "train", "--config", cfg, "--log-json"); code != exitOK {
		t.Fatalf("train: exit %d\n%s", code, msg)
	}
	code, msg := runCaptured(t, "train", "--config", cfg, "--log-json", "--set", "train.max_steps=4",
		"--resume", filepath.Join(out, "checkpoints"))
	if code != exitOK || !strings.Contains(msg, `"resumed_from":"`+filepath.Join(out, "checkpoints", "step-000003")) {
		t.Errorf("--resume %s: exit %d\n%s", filepath.Join(out, "checkpoints"), code, msg)
	}
}
