package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/train"
)

// trainConfig writes a config for a few steps on a tiny Llama and returns its path.
func trainConfig(t *testing.T, extra string) (cfg, out string) {
	t.Helper()
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	tinymodel.WriteTo(t, base, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1})
	out = filepath.Join(dir, "run")
	cfg = filepath.Join(dir, "cfg.yaml")
	yaml := fmt.Sprintf(`model: {path: %s}
adapter: {r: 4, phi: {k: 8}}
data: {format: alpaca_json, train: %s, max_len: 64}
train: {max_steps: 3, micro_batch_size: 2, lr: 1.0e-2, log_every: 1}
checkpoint: {every: 2}
output: {dir: %s}
%s`, base, abs(t, "../../data/testdata/alpaca_tiny_train.json"), out, extra)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, out
}

// runCaptured runs the CLI and returns its exit code and what it wrote to stderr.
func runCaptured(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runCapturedWith(t, nil, args...)
}

// runCapturedWith is runCaptured with run's options (withStepHook).
func runCapturedWith(t *testing.T, opts []runOption, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	code := run(args, opts...)
	w.Close()
	os.Stderr = old
	return code, <-done
}

// lrtrain train exits 0 after training (and again when the run has already finished),
// 2 for a bad command line or configuration, 1 when training itself fails.
func TestTrainCommandExitCodes(t *testing.T) {
	cfg, out := trainConfig(t, "")
	code, msg := runCaptured(t, "train", "--config", cfg, "--log-json")
	if code != exitOK {
		t.Fatalf("train: exit %d\n%s", code, msg)
	}
	s, err := train.OpenCheckpoint(filepath.Join(out, "checkpoints", "step-000003"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Manifest.Config, "max_steps: 3") {
		t.Errorf("the manifest does not record the resolved config:\n%s", s.Manifest.Config)
	}
	if code, msg = runCaptured(t, "train", "--config", cfg, "--log-json"); code != exitOK || !strings.Contains(msg, "already finished") {
		t.Errorf("second run: exit %d\n%s", code, msg)
	}
	if code, msg = runCaptured(t, "train", "--config", cfg, "--set", "train.max_steps=4", "--resume", "never"); code != exitError ||
		!strings.Contains(msg, "holds checkpoints") {
		t.Errorf("--resume never over a finished run: exit %d\n%s", code, msg)
	}

	empty := filepath.Join(t.TempDir(), "empty.json")
	os.WriteFile(empty, []byte("[]"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no config", []string{"train"}, exitUsage, "--config is required"},
		{"unknown key", []string{"train", "--config", cfg, "--set", "train.learning_rat=1"}, exitUsage, "did you mean"},
		{"missing model", []string{"train", "--config", cfg, "--set", "model.path=/nonexistent/model"}, exitUsage, "model.path"},
		{"bad value", []string{"train", "--config", cfg, "--set", "adapter.r=0"}, exitUsage, "adapter.r"},
		{"no GPU", []string{"train", "--config", cfg, "--set", "train.device=cuda", "--set", "output.dir=" + t.TempDir()},
			exitUsage, "sees no CUDA device"},
		{"empty dataset", []string{"train", "--config", cfg, "--set", "data.train=" + empty, "--set", "output.dir=" + t.TempDir()},
			exitError, "empty"},
		{"changed rank", []string{"train", "--config", cfg, "--set", "adapter.r=8", "--set", "train.max_steps=5"},
			exitError, "adapter.r is 4 in the checkpoint and 8"},
	} {
		code, msg := runCaptured(t, c.args...)
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, code, c.code, c.want, msg)
		}
	}
}

// envLaunchWorker marks the test binary started by lrtrain launch as a worker.
const envLaunchWorker = "LRTRAIN_TEST_LAUNCH_WORKER"

// TestLaunchWorkerHelper is the worker process of TestLaunchTwoRanksTrainLikeOne: the
// launcher runs this test binary (--no-python) with the train arguments after "--".
func TestLaunchWorkerHelper(t *testing.T) {
	if os.Getenv(envLaunchWorker) == "" {
		t.Skip("runs only as a worker of TestLaunchTwoRanksTrainLikeOne")
	}
	os.Exit(run(flag.Args()))
}

// `lrtrain launch --standalone --nproc-per-node 2 -- train ...` trains what one process
// trains on the same global batches (2 sequences per step): each worker reads the
// launcher's environment, opens its rendezvous session and joins a Gloo group. The
// losses agree up to float32 rounding of the gradient sums; only rank 0 writes metrics.
func TestLaunchTwoRanksTrainLikeOne(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, etcd; runs without -short")
	}
	cfg, out := trainConfig(t, "")
	if code, msg := runCaptured(t, "train", "--config", cfg, "--log-json"); code != exitOK {
		t.Fatalf("one process: exit %d\n%s", code, msg)
	}
	two := filepath.Join(t.TempDir(), "run2")
	t.Setenv(envLaunchWorker, "1")
	code, msg := runCaptured(t, "launch", "--standalone", "--nproc-per-node", "2", "--run-dir", t.TempDir(),
		"--no-python", "--", os.Args[0], "-test.run=^TestLaunchWorkerHelper$", "--",
		"train", "--config", cfg, "--set", "output.dir="+two, "--set", "train.micro_batch_size=1", "--log-json")
	if code != exitOK {
		t.Fatalf("launch: exit %d\n%s", code, msg)
	}
	want := stepLosses(t, out)
	got := stepLosses(t, two)
	if len(got) != len(want) || len(want) != 3 {
		t.Fatalf("%d step records with 2 ranks, %d with 1", len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > 1e-5*want[i] {
			t.Errorf("step %d: loss %v with 2 ranks, %v with 1", i+1, got[i], want[i])
		}
	}
	s, err := train.OpenCheckpoint(filepath.Join(two, "checkpoints", "step-000003"))
	if err != nil || s.Manifest.WorldSize != 2 {
		t.Errorf("2-rank checkpoint: %v, %+v", err, s)
	}
}

func stepLosses(t *testing.T, run string) []float64 {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(run, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Loss *float64 `json:"loss"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Loss != nil {
			out = append(out, *rec.Loss)
		}
	}
	return out
}

// With dist.shard_group_size 2 the two launched workers partition the frozen backbone
// between them (a second Gloo group through the same rendezvous) and train bit for bit
// what two workers with the whole backbone train, over shared memory or TCP. A shard group size that does not
// divide the world, or sharding without lrtrain launch, is a usage error.
func TestLaunchShardedBackboneTrainsLikeWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, etcd; runs without -short")
	}
	cfg, _ := trainConfig(t, "")
	t.Setenv(envLaunchWorker, "1")
	launch2 := func(out string, sets ...string) (int, string) {
		args := []string{"launch", "--standalone", "--nproc-per-node", "2", "--run-dir", t.TempDir(), "--max-restarts", "0",
			"--no-python", "--", os.Args[0], "-test.run=^TestLaunchWorkerHelper$", "--",
			"train", "--config", cfg, "--set", "output.dir=" + out, "--set", "train.micro_batch_size=1", "--log-json"}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		return runCaptured(t, args...)
	}
	whole, sharded := filepath.Join(t.TempDir(), "whole"), filepath.Join(t.TempDir(), "sharded")
	if code, msg := launch2(whole); code != exitOK {
		t.Fatalf("whole backbone: exit %d\n%s", code, msg)
	}
	if code, msg := launch2(sharded, "dist.shard_group_size=2"); code != exitOK {
		t.Fatalf("sharded backbone: exit %d\n%s", code, msg)
	}
	logs, err := os.ReadFile(filepath.Join(sharded, "train.log"))
	if err != nil || !strings.Contains(string(logs), "frozen backbone sharded") {
		t.Fatalf("the sharded run's log does not say the backbone was sharded (%v)", err)
	}
	// The launcher's workers on one host read each other's shards.
	if !strings.Contains(string(logs), `"shard_gather":"peer reads"`) {
		t.Errorf("the sharded run's log does not say its ranks read each other's shards")
	}
	if w, s := stepLosses(t, whole), stepLosses(t, sharded); !slices.Equal(w, s) || len(w) != 3 {
		t.Errorf("step losses: %v sharded, %v whole", s, w)
	}
	adapter := filepath.Join("checkpoints", "step-000003", train.AdapterFile)
	a, errA := os.ReadFile(filepath.Join(whole, adapter))
	b, errB := os.ReadFile(filepath.Join(sharded, adapter))
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("final adapters differ (%v, %v)", errA, errB)
	}

	// Both runs moved their collectives through /dev/shm (the default on one host);
	// over loopback TCP the two ranks train the same bits (each all-reduced value is
	// one float32 addition, and a+b == b+a).
	tcp := filepath.Join(t.TempDir(), "tcp")
	if code, msg := launch2(tcp, "dist.shard_group_size=2", "dist.shared_memory=false"); code != exitOK {
		t.Fatalf("sharded backbone over TCP: exit %d\n%s", code, msg)
	}
	// A /dev/shm too small for the ranks' windows (a container's 64 MiB default, with
	// other tests' ranks beside these) makes them agree on TCP, saying so: accepted,
	// since the point here is that they agree and train the same bits.
	for dir, want := range map[string][]string{
		sharded: {`"collectives":"shared memory (windows of`, `"collectives":"tcp (shared memory: allocate`,
			`"collectives":"tcp (shared memory: another rank could not create its file`},
		tcp: {`"collectives":"tcp"`},
	} {
		logs, err := os.ReadFile(filepath.Join(dir, "train.log"))
		if err != nil || !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(string(logs), w) }) {
			t.Errorf("%s: the log says none of %q (%v)", dir, want, err)
		}
	}
	c, errC := os.ReadFile(filepath.Join(tcp, adapter))
	if errC != nil || !bytes.Equal(a, c) {
		t.Errorf("the final adapter over TCP differs from the one over shared memory (%v)", errC)
	}

	if code, msg := launch2(t.TempDir(), "dist.shard_group_size=3"); code == exitOK || !strings.Contains(msg, "does not divide the world size 2") {
		t.Errorf("shard group of 3 in a world of 2: exit %d\n%s", code, msg)
	}
	if code, msg := runCaptured(t, "train", "--config", cfg, "--set", "dist.shard_group_size=2", "--set", "output.dir="+t.TempDir()); code != exitUsage ||
		!strings.Contains(msg, "start the run with lrtrain launch") {
		t.Errorf("sharding without launch: exit %d\n%s", code, msg)
	}
}
