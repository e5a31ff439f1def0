package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/internal/testkit/etcdtest"
)

// stopBound is how long the surviving ranks may take to stop after a failure: the
// configured collective timeout (dist.timeout 20s in runSpec.config) plus the
// launcher's grace period (3s in launchArgs).
const stopBound = 23 * time.Second

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// A worker SIGKILLed in the middle of a 2-rank run under the launcher: the other rank
// is stopped within stopBound, the launcher starts round 1, the workers resume from the
// last checkpoint and finish with the very adapter bytes of an uninterrupted run. Bit
// for bit, because the resumed run has the same world size, micro-batch cut and thread
// count, so every sum is formed in the same order (train's exact resume; Gloo sums two
// ranks' float64 buckets, a commutative single addition).
func TestKilledWorkerRecoversExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: multi-process; runs without -short")
	}
	tmp := t.TempDir()
	const steps = 60
	ref := runSpec{steps: steps, micro: 1, accum: 2, every: 5, out: filepath.Join(tmp, "ref")}
	run(t, 2*time.Minute, launchArgs(2, filepath.Join(tmp, "l-ref"), ref.config(t))...)

	killed := runSpec{steps: steps, micro: 1, accum: 2, every: 5, out: filepath.Join(tmp, "killed")}
	runDir := filepath.Join(tmp, "l-killed")
	l := start(t, "launch.log", launchArgs(2, runDir, killed.config(t), "--max-restarts", "2")...)
	ctx := context.Background()
	if !waitFor(ctx, time.Minute, func() bool {
		return exists(filepath.Join(killed.out, "checkpoints", checkpoint.DirName(10)))
	}) {
		t.Fatalf("no step-10 checkpoint within a minute\n%s", l.output())
	}
	victim := workerPID(t, l.cmd.Process.Pid, 1, 5*time.Second)
	survivor := workerPID(t, l.cmd.Process.Pid, 0, 5*time.Second)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	if !waitFor(ctx, stopBound, func() bool { return !alive(survivor) }) {
		t.Fatalf("rank 0 (pid %d) still running %v after rank 1 was killed\n%s", survivor, stopBound, l.output())
	}
	t.Logf("rank 0 stopped %v after rank 1 was killed", time.Since(killedAt).Round(time.Millisecond))
	if err := l.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("launcher: %v\n%s", err, l.output())
	}
	out := l.output()
	if !strings.Contains(out, "worker failed") || !strings.Contains(out, "restarting the workers") {
		t.Errorf("the launcher did not report the failure and the restart:\n%s", out)
	}
	r1, err := os.ReadFile(filepath.Join(runDir, "logs", "round1", "rank0.log"))
	if err != nil {
		t.Fatalf("no round 1: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`"resumed_from":"[^"]*step-0*(\d+)"`).FindSubmatch(r1)
	if m == nil {
		t.Fatalf("round 1 did not resume from a checkpoint:\n%s", r1)
	}
	t.Logf("round 1 resumed from step %s", m[1])
	if string(m[1]) == "0" || string(m[1]) == "" {
		t.Errorf("resumed from step %s", m[1])
	}
	if exists(filepath.Join(runDir, "logs", "round2")) {
		t.Errorf("a second restart happened:\n%s", out)
	}
	if a, b := adapterBytes(t, ref.out, steps), adapterBytes(t, killed.out, steps); string(a) != string(b) {
		d, s := diff(t, adapterAt(t, ref.out, steps), adapterAt(t, killed.out, steps))
		t.Errorf("final adapter differs from the uninterrupted run's: max |Δ| %.3g (max |value| %.3g)", d, s)
	}
}

// The rendezvous etcd (an external one started here) stops in the middle of a run:
// the workers stop within workerBound, the launcher exits with an error that says so
// within etcdBound, no process is left, and the newest checkpoint on disk still
// verifies.
func TestEtcdLossStopsTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: multi-process, etcd; runs without -short")
	}
	// The sessions are lost at most the TTL (3s) after the last keepalive answer, plus
	// the etcd client's 1s deadline check; the launcher then stops the workers (SIGTERM,
	// SIGKILL after the 3s grace period; they exit at once) and gives etcd the dial
	// timeout (3s) to answer a new lease before it exits. Measured: workers gone ~2s,
	// launcher exited ~5s after etcd stopped. The bounds add 2s of slack for a loaded
	// machine.
	const (
		workerBound = 3*time.Second + time.Second + 3*time.Second + 2*time.Second
		etcdBound   = workerBound + 3*time.Second + time.Second
	)
	tmp := t.TempDir()
	srv := etcdtest.Start(t)
	ep := etcdtest.HostPort(srv)

	spec := runSpec{steps: 100000, micro: 1, accum: 2, every: 5, out: filepath.Join(tmp, "run")}
	args := []string{"launch", "--nnodes", "1", "--nproc-per-node", "2", "--rdzv-endpoint", ep,
		"--rdzv-id", "e2e-etcd", "--rdzv-ttl", "3s", "--rdzv-dial-timeout", "3s", "--max-restarts", "1",
		"--grace-period", "3s", "--run-dir", filepath.Join(tmp, "l"), "--", "train", "--config", spec.config(t)}
	l := start(t, "launch.log", args...)
	if !waitFor(context.Background(), time.Minute, func() bool {
		return exists(filepath.Join(spec.out, "checkpoints", checkpoint.DirName(10)))
	}) {
		t.Fatalf("no step-10 checkpoint within a minute\n%s", l.output())
	}
	workers := children(l.cmd.Process.Pid)
	srv.Close()
	stoppedAt := time.Now()
	if !waitFor(context.Background(), workerBound, func() bool {
		for _, pid := range workers {
			if alive(pid) {
				return false
			}
		}
		return true
	}) {
		t.Errorf("workers %v still running %v after etcd stopped\n%s", workers, workerBound, l.output())
	}
	t.Logf("workers gone %v after etcd stopped", time.Since(stoppedAt).Round(time.Millisecond))
	err := l.wait(t, etcdBound-time.Since(stoppedAt))
	t.Logf("launcher exited %v after etcd stopped: %v", time.Since(stoppedAt).Round(time.Millisecond), err)
	out := l.output()
	if testing.Verbose() {
		t.Logf("launcher output:\n%s", lastLines(out, 12))
	}
	if err == nil {
		t.Fatalf("the launcher exited 0 without etcd\n%s", out)
	}
	if !regexp.MustCompile(`(?i)etcd|rendezvous|rdzv`).MatchString(lastLines(out, 5)) {
		t.Errorf("the launcher's last words do not mention the rendezvous:\n%s", lastLines(out, 5))
	}
	for _, pid := range workers {
		if alive(pid) {
			t.Errorf("worker %d still running after the launcher exited", pid)
		}
	}
	if left := ourProcesses(); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	c, skipped, err := checkpoint.LatestValid(filepath.Join(spec.out, "checkpoints"))
	if err != nil {
		t.Fatalf("the last checkpoint does not load: %v", err)
	}
	if len(skipped) > 0 {
		t.Errorf("invalid checkpoints left: %+v", skipped)
	}
	t.Logf("latest valid checkpoint: %s", c.Dir)
	if !strings.Contains(c.Dir, "step-") || strings.HasSuffix(c.Dir, checkpoint.DirName(5)) {
		t.Errorf("latest valid checkpoint %s, want step 10 or later", c.Dir)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
