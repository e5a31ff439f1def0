package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/internal/testkit/etcdtest"
)

// Elastic scale-up with the real trainer: node agent A (`launch --nnodes 1:2`, one
// worker) trains alone; once it has checkpointed step 10, its worker is frozen
// (SIGSTOP) so that it cannot run on, whatever the load, while node agent B starts and
// joins the same rendezvous. A's launcher reports the membership change and stops its
// worker; the test thaws the worker once the launcher's SIGTERM is pending on it, the
// worker saves its last step (a single process saves a checkpoint when stopped), and
// both agents form round 1 with world size 2, whose workers resume from that checkpoint
// and finish the run. The final adapter is
// byte for byte that of two plain runs: one process trained to the step round 1 resumed
// from, then two ranks (launch --standalone) resuming it to the end. Bit for bit,
// because every phase has the same world size, micro-batch cut and thread count as its
// counterpart, and Gloo sums two ranks' buckets with one commutative addition. Had B
// been ignored, A would have finished alone on global batches of 2 instead of 4, B would
// have timed out, and no round of world size 2 would exist.
func TestElasticJoinFormsBiggerRound(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: multi-process, etcd; runs without -short")
	}
	const steps = 60
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv := etcdtest.Start(t)
	ep := etcdtest.HostPort(srv)

	el := runSpec{steps: steps, micro: 1, accum: 2, every: 5, out: filepath.Join(tmp, "elastic")}
	cfg := el.config(t)
	// The TTL outlives the frozen worker's silence (its lease gets no keepalive while B
	// starts and joins); the grace period covers the thawed worker's save.
	node := func(rank int, runDir string) []string {
		return []string{"launch", "--nnodes", "1:2", "--nproc-per-node", "1", "--node-rank", strconv.Itoa(rank),
			"--rdzv-endpoint", ep, "--rdzv-id", "e2e-elastic", "--rdzv-last-call", "1s",
			"--rdzv-join-timeout", "120s", "--rdzv-ttl", "30s", "--max-restarts", "0", "--grace-period", "60s",
			"--exit-barrier-timeout", "120s", "--run-dir", runDir, "--", "train", "--config", cfg}
	}
	dirA, dirB := filepath.Join(tmp, "node-a"), filepath.Join(tmp, "node-b")
	a := start(t, "node-a.log", node(0, dirA)...)
	if !waitFor(ctx, 2*time.Minute, func() bool {
		return exists(filepath.Join(el.out, "checkpoints", checkpoint.DirName(10)))
	}) {
		t.Fatalf("no step-10 checkpoint within two minutes\n%s", a.output())
	}
	workerA := workerPID(t, a.cmd.Process.Pid, 0, 30*time.Second)
	lastStep := freeze(t, workerA, filepath.Join(el.out, "metrics.jsonl"))
	checkWorkerEnv(t, workerA)
	b := start(t, "node-b.log", node(1, dirB)...)
	if !waitFor(ctx, 2*time.Minute, func() bool { return sigtermPending(workerA) }) {
		syscall.Kill(workerA, syscall.SIGCONT)
		t.Fatalf("node A's launcher did not stop its worker after node B started\nA:\n%s\nB:\n%s", a.output(), b.output())
	}
	if err := syscall.Kill(workerA, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	errA, errB := a.wait(t, 3*time.Minute), b.wait(t, 3*time.Minute)
	outA, outB := a.output(), b.output()
	if testing.Verbose() {
		t.Logf("node A's launcher:\n%s", outA)
	}
	if errA != nil || errB != nil {
		t.Fatalf("node A: %v, node B: %v\nA:\n%s\nB:\n%s", errA, errB, outA, outB)
	}
	if left := ourProcesses(); len(left) > 0 {
		t.Errorf("processes left after both launchers exited: %v", left)
	}

	// The launchers: round 0 of A alone, a membership change, round 1 of both nodes.
	rounds := func(out string) []string {
		var rs []string
		for _, r := range jsonLines(out) {
			if r["message"] == "round formed" {
				rs = append(rs, fmt.Sprintf("round %v: node %v of %v, world %v", r["round"], r["node_rank"], r["nodes"], r["world_size"]))
			}
		}
		return rs
	}
	if got, want := strings.Join(rounds(outA), "; "),
		"round 0: node 0 of 1, world 1; round 1: node 0 of 2, world 2"; got != want {
		t.Errorf("node A's rounds: %s, want %s\n%s", got, want, outA)
	}
	if got, want := strings.Join(rounds(outB), "; "), "round 1: node 1 of 2, world 2"; got != want {
		t.Errorf("node B's rounds: %s, want %s\n%s", got, want, outB)
	}
	if !hasMessage(outA, "membership changed: workers stopped, joining the next round") {
		t.Errorf("node A did not report the membership change:\n%s", outA)
	}
	for _, out := range []string{outA, outB} {
		if hasMessage(out, "restarting the workers") || hasMessage(out, "worker failed: workers stopped") {
			t.Errorf("a worker failure was counted:\n%s", out)
		}
	}

	// The trainers: round 0 alone from scratch, round 1 on two ranks from a checkpoint.
	r0 := trainingLine(t, filepath.Join(dirA, "logs", "round0", "rank0.log"))
	if r0["world_size"] != 1.0 || r0["resumed_from"] != "" || r0["global_batch"] != 2.0 {
		t.Errorf("round 0 trainer: %v, want world size 1 from scratch, global batch 2", r0)
	}
	r1 := trainingLine(t, filepath.Join(dirA, "logs", "round1", "rank0.log"))
	r1b := trainingLine(t, filepath.Join(dirB, "logs", "round1", "rank1.log"))
	m := regexp.MustCompile(`step-0*(\d+)$`).FindStringSubmatch(fmt.Sprint(r1["resumed_from"]))
	if m == nil {
		t.Fatalf("round 1 did not resume from a checkpoint: %v", r1)
	}
	resumed, _ := strconv.Atoi(m[1])
	t.Logf("round 1 (world size 2) resumed from step %d (node A's worker frozen after logging step %d)", resumed, lastStep)
	if r1["world_size"] != 2.0 || r1["global_batch"] != 4.0 || r1["start_step"] != float64(resumed) {
		t.Errorf("round 1 rank 0: %v, want world size 2, global batch 4, start step %d", r1, resumed)
	}
	if r1b["world_size"] != 2.0 || r1b["start_step"] != float64(resumed) {
		t.Errorf("round 1 rank 1 (node B): %v, want world size 2, start step %d", r1b, resumed)
	}
	// Nothing lost, and nothing assumed about timing: round 1 resumes from exactly the
	// step round 0's worker stopped at and checkpointed, which is at or past the step it
	// had logged when frozen. How many steps it takes after SIGCONT before it sees the
	// pending SIGTERM depends on when the Go runtime delivers the signal to the training
	// loop (a step in cgo runs on), so no upper bound is asserted.
	saved := logLines(t, filepath.Join(dirA, "logs", "round0", "rank0.log"), "checkpoint saved")
	if last := saved[len(saved)-1]; last["step"] != float64(resumed) ||
		!strings.HasSuffix(fmt.Sprint(last["dir"]), checkpoint.DirName(int64(resumed))) {
		t.Errorf("round 0's last checkpoint: step %v in %v; round 1 resumed from step %d", last["step"], last["dir"], resumed)
	}
	if resumed < 10 || resumed < lastStep {
		t.Fatalf("round 1 resumed from step %d: want at least 10 and at least %d (step %d was logged when the worker was frozen)",
			resumed, lastStep, lastStep)
	}
	for _, dir := range []string{dirA, dirB} {
		if exists(filepath.Join(dir, "logs", "round2")) {
			t.Errorf("%s: a third round formed:\n%s\n%s", dir, outA, outB)
		}
	}

	// metrics.jsonl (rank 0, appended by both rounds): round 1's steps run from the
	// resumed step to the end.
	logged := metricSteps(t, filepath.Join(el.out, "metrics.jsonl"))
	tail := -1
	for i, s := range logged {
		if s == resumed+1 {
			tail = i
		}
	}
	if tail <= 0 || len(logged)-tail != steps-resumed || logged[len(logged)-1] != steps {
		t.Fatalf("metrics steps %v: want round 0's from 1 and then %d…%d", logged, resumed+1, steps)
	}
	for i, s := range logged[tail:] {
		if s != resumed+1+i {
			t.Fatalf("metrics steps after the resume %v: want %d…%d", logged[tail:], resumed+1, steps)
		}
	}

	// The reference: one process to the resumed step, then two ranks to the end.
	ref := runSpec{steps: resumed, micro: 1, accum: 2, every: 5, out: filepath.Join(tmp, "ref")}
	run(t, time.Minute, "train", "--config", ref.config(t))
	if string(adapterBytes(t, ref.out, resumed)) != string(adapterBytes(t, el.out, resumed)) {
		d, s := diff(t, adapterAt(t, ref.out, resumed), adapterAt(t, el.out, resumed))
		t.Errorf("the checkpoint round 1 resumed from differs from a plain run's at step %d: max |Δ| %.3g (max |value| %.3g)",
			resumed, d, s)
	}
	rest := runSpec{steps: steps, micro: 1, accum: 2, every: 5, out: ref.out}
	run(t, 90*time.Second, launchArgs(2, filepath.Join(tmp, "l-ref"), rest.config(t))...)
	want, got := adapterAt(t, ref.out, steps), adapterAt(t, el.out, steps)
	mv := moved(t, adapterAt(t, ref.out, resumed), want)
	if string(adapterBytes(t, ref.out, steps)) != string(adapterBytes(t, el.out, steps)) {
		d, s := diff(t, want, got)
		t.Errorf("final adapter differs from the reference's: max |Δ| %.3g (max |value| %.3g, moved %.3g after the resume)", d, s, mv)
	}
	// Had the world stayed at 1, steps after the resume would have used batches of 2: the
	// comparison only means something if those steps moved the adapters.
	if mv < 1e-3 {
		t.Errorf("steps %d–%d moved the adapters by only %.3g", resumed+1, steps, mv)
	}
}

// freeze stops the worker pid with SIGSTOP, waits until it is stopped and returns the
// last step that metrics.jsonl (flushed every step) holds by then.
func freeze(t *testing.T, pid int, metrics string) int {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP worker %d: %v", pid, err)
	}
	// Every thread, not only the first: the training loop runs on a thread of its own,
	// which may finish a step after the first thread has stopped.
	if !waitFor(context.Background(), time.Minute, func() bool { return allThreadsStopped(pid) }) {
		t.Fatalf("worker %d not stopped after SIGSTOP (state %q)", pid, processState(pid))
	}
	logged := metricSteps(t, metrics)
	if len(logged) == 0 {
		t.Fatalf("%s holds no step", metrics)
	}
	return logged[len(logged)-1]
}

// allThreadsStopped reports whether every thread of pid is in the stopped state.
func allThreadsStopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		i := bytes.LastIndexByte(b, ')')
		if err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// sigtermPending reports whether SIGTERM waits to be delivered to pid (a stopped
// process keeps the launcher's SIGTERM pending until it is continued).
func sigtermPending(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "SigPnd" && name != "ShdPnd") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err == nil && mask&(1<<(uint(syscall.SIGTERM)-1)) != 0 {
			return true
		}
	}
	return false
}

// jsonLines decodes the JSON object lines of a log, skipping any other line.
func jsonLines(out string) []map[string]any {
	var recs []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var r map[string]any
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs
}

// hasMessage reports whether a JSON log line of out has the message msg.
func hasMessage(out, msg string) bool {
	for _, r := range jsonLines(out) {
		if r["message"] == msg {
			return true
		}
	}
	return false
}

// trainingLine returns the trainer's "training" log record from a worker's log.
func trainingLine(t *testing.T, path string) map[string]any {
	t.Helper()
	return logLines(t, path, "training")[0]
}

// logLines returns the JSON log lines of path whose message is msg, in order; none is
// a failure.
func logLines(t *testing.T, path, msg string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, r := range jsonLines(string(b)) {
		if r["message"] == msg {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no %q line:\n%s", path, msg, lastLines(string(b), 20))
	}
	return out
}

// metricSteps lists the step of every training record of a metrics.jsonl, in order.
func metricSteps(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Step int      `json:"step"`
			Loss *float64 `json:"loss"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v: %s", path, err, sc.Text())
		}
		if r.Loss != nil {
			steps = append(steps, r.Step)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}
