package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/internal/testkit/etcdtest"
	"github.com/lrtrain/lrtrain/train"
)

// evalConfig is a 2-rank run of the tiny Llama that evaluates every 5 steps (on the
// 200 training examples, so that an evaluation outlasts a step) and checkpoints every 10.
func evalConfig(t *testing.T, out string, steps int) string {
	t.Helper()
	yaml := fmt.Sprintf(`model: {path: %s, dtype: float32}
adapter: {method: lrlora, r: 4, dropout: 0.0, phi: {k: 8}}
data: {format: alpaca_json, train: %s, eval: %s, max_len: 64}
train: {seed: 7, eps: 1.0e-4, max_steps: %d, micro_batch_size: 1, grad_accum_steps: 2, lr: 1.0e-2,
        warmup_ratio: 0, schedule: constant, grad_clip: 1.0, log_every: 1, eval_every: 5}
checkpoint: {every: 10, keep_last: 100}
dist: {backend: gloo, timeout: 20s}
output: {dir: %s}
`, baseModel(t), testdata(t, "alpaca_tiny_train.json"), testdata(t, "alpaca_tiny_train.json"), steps, out)
	path := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// metricRecords decodes metrics.jsonl (nil while it is absent); a line being written is
// skipped.
func metricRecords(path string) []map[string]any {
	b, _ := os.ReadFile(path)
	var recs []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		var r map[string]any
		if json.Unmarshal(line, &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs
}

// logged reports whether metrics.jsonl holds the step record (eval false) or the
// evaluation record (eval true) of step.
func loggedAt(path string, step int, eval bool) bool {
	for _, r := range metricRecords(path) {
		_, isEval := r["eval_loss"]
		if s, _ := r["step"].(float64); int(s) == step && isEval == eval {
			return true
		}
	}
	return false
}

// freezeRank1AfterStep15 waits for rank 0 to log step 15 and stops rank 1 (SIGSTOP)
// before it can take part in the evaluation's all-reduce, so that rank 0 is inside the
// step-15 evaluation when the test strikes. The saved state's eval_due proves it was.
func freezeRank1AfterStep15(t *testing.T, l *proc, out string) int {
	t.Helper()
	metrics := filepath.Join(out, train.MetricsFile)
	if !waitFor(context.Background(), 2*time.Minute, func() bool { return loggedAt(metrics, 15, false) }) {
		t.Fatalf("no step 15 within 2 minutes\n%s", l.output())
	}
	rank1 := workerPID(t, l.cmd.Process.Pid, 1, 5*time.Second)
	if err := syscall.Kill(rank1, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	return rank1
}

// savedWithEvalDue checks that the run's newest checkpoint holds step 15 with its
// evaluation still due (the interruption landed in the evaluation and the step was kept).
func savedWithEvalDue(t *testing.T, out string, l *proc) {
	t.Helper()
	c, _, err := checkpoint.LatestValid(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatalf("no checkpoint: %v\n%s", err, l.output())
	}
	s, err := train.OpenCheckpoint(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.State.Step != 15 || !s.State.EvalDue {
		t.Fatalf("newest checkpoint: step %d, eval due %v; want step 15 saved during its evaluation\n%s",
			s.State.Step, s.State.EvalDue, lastLines(l.output(), 15))
	}
}

// An interruption that lands while the ranks evaluate step 15 (eval_every 5, checkpoint
// every 10) loses nothing: rank 0 saves step 15 with its evaluation due, whether rank 1
// was killed (then the launcher's new round resumes there, evaluates step 15 first, and
// ends byte for byte like an uninterrupted run, every step and evaluation logged once),
// the launcher got SIGTERM, or etcd stopped answering (then the launcher names etcd).
func TestInterruptionDuringEvaluationKeepsTheStep(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: multi-process, etcd; runs without -short")
	}
	tmp := t.TempDir()
	const steps = 30

	t.Run("rank 1 killed", func(t *testing.T) {
		refOut := filepath.Join(tmp, "ref")
		run(t, 3*time.Minute, launchArgs(2, filepath.Join(tmp, "l-ref"), evalConfig(t, refOut, steps))...)
		out := filepath.Join(tmp, "killed")
		l := start(t, "launch.log", launchArgs(2, filepath.Join(tmp, "l-killed"), evalConfig(t, out, steps), "--max-restarts", "1")...)
		rank1 := freezeRank1AfterStep15(t, l, out)
		if err := syscall.Kill(rank1, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !waitFor(context.Background(), stopBound, func() bool {
			return exists(filepath.Join(out, "checkpoints", checkpoint.DirName(15)))
		}) {
			t.Fatalf("step 15 not saved within %v of rank 1's death\n%s", stopBound, l.output())
		}
		if err := l.wait(t, 3*time.Minute); err != nil {
			t.Fatalf("launcher: %v\n%s", err, l.output())
		}
		r1, err := os.ReadFile(filepath.Join(tmp, "l-killed", "logs", "round1", "rank0.log"))
		if err != nil || !regexp.MustCompile(`"resumed_from":"[^"]*step-000015"`).Match(r1) {
			t.Fatalf("round 1 did not resume from step 15 (%v)\n%s", err, lastLines(string(r1), 10))
		}
		s, err := train.OpenCheckpoint(filepath.Join(out, "checkpoints", checkpoint.DirName(15)))
		if err != nil || !s.State.EvalDue {
			t.Fatalf("step 15's checkpoint: %v, eval due %v; want saved during its evaluation", err, s != nil && s.State.EvalDue)
		}
		want, got := metricRecords(filepath.Join(refOut, train.MetricsFile)), metricRecords(filepath.Join(out, train.MetricsFile))
		if len(got) != len(want) {
			t.Errorf("%d metrics records, the uninterrupted run has %d", len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			for _, k := range []string{"step", "loss", "eval_loss"} {
				if got[i][k] != want[i][k] {
					t.Errorf("metrics record %d: %s %v, uninterrupted %v", i, k, got[i][k], want[i][k])
				}
			}
		}
		if !bytes.Equal(adapterBytes(t, refOut, steps), adapterBytes(t, out, steps)) {
			t.Errorf("final adapter differs from the uninterrupted run's")
		}
	})

	t.Run("launcher SIGTERMed", func(t *testing.T) {
		out := filepath.Join(tmp, "term")
		l := start(t, "launch.log", launchArgs(2, filepath.Join(tmp, "l-term"), evalConfig(t, out, 100000))...)
		freezeRank1AfterStep15(t, l, out)
		if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err := l.wait(t, stopBound)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 128+int(syscall.SIGTERM) {
			t.Errorf("launcher: %v, want exit %d", err, 128+int(syscall.SIGTERM))
		}
		savedWithEvalDue(t, out, l)
	})

	t.Run("etcd lost", func(t *testing.T) {
		srv := etcdtest.Start(t)
		ep := etcdtest.HostPort(srv)
		out := filepath.Join(tmp, "etcd-run")
		l := start(t, "launch.log", "launch", "--nnodes", "1", "--nproc-per-node", "2", "--rdzv-endpoint", ep,
			"--rdzv-id", "e2e-evalstop", "--rdzv-ttl", "3s", "--rdzv-dial-timeout", "3s", "--grace-period", "3s",
			"--run-dir", filepath.Join(tmp, "l-etcd"), "--", "train", "--config", evalConfig(t, out, 100000))
		freezeRank1AfterStep15(t, l, out)
		srv.Close()
		if err := l.wait(t, time.Minute); err == nil {
			t.Fatalf("the launcher exited 0 without etcd\n%s", l.output())
		}
		last := lastLines(l.output(), 3)
		if !strings.Contains(last, "etcd unreachable") || strings.Contains(last, "no restarts are left") {
			t.Errorf("the launcher's last words do not say etcd is unreachable:\n%s", last)
		}
		savedWithEvalDue(t, out, l)
	})
}
