package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/rdzv"
	"github.com/lrtrain/lrtrain/internal/testkit"
)

func TestOneNodeThreeWorkersGetDistinctRanks(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	out := workerOut(t)
	cfg := testConfig(t, "", "one-node", 3, "rdzv", out) // standalone
	cfg.Tee = []int{0}
	cfg.OMPThreads = 2
	l := launch(t, cfg)
	if err := l.wait(t, testDeadline); err != nil {
		t.Fatal(err)
	}
	recs := records(t, out)
	if len(recs) != 3 {
		t.Fatalf("%d worker records, want 3: %v", len(recs), recs)
	}
	for rank := 0; rank < 3; rank++ {
		r, ok := recs[recordName(0, rank)]
		if !ok {
			t.Fatalf("no record of rank %d in round 0", rank)
		}
		e := r.Env
		if e.Rank != rank || e.LocalRank != rank || e.WorldSize != 3 || e.LocalWorldSize != 3 ||
			e.NodeRank != 0 || e.NumNodes != 1 || e.Restart != 0 || e.Round != 0 || e.Job != "one-node" {
			t.Errorf("rank %d: %+v", rank, e)
		}
		if e.MasterAddr != "127.0.0.1" || e.MasterPort == 0 {
			t.Errorf("rank %d: master %s:%d", rank, e.MasterAddr, e.MasterPort)
		}
		if !strings.HasPrefix(e.Endpoints[0], "http://127.0.0.1:") {
			t.Errorf("rank %d: endpoints %v, want the embedded etcd", rank, e.Endpoints)
		}
		v := r.Vars
		if v["ROLE_RANK"] != fmt.Sprint(rank) || v["TORCHELASTIC_RESTART_COUNT"] != "0" ||
			v["CUDA_VISIBLE_DEVICES"] != "" {
			t.Errorf("rank %d: %v", rank, v)
		}
		if _, user := os.LookupEnv("OMP_NUM_THREADS"); !user && v["OMP_NUM_THREADS"] != "2" {
			t.Errorf("rank %d: OMP_NUM_THREADS %q, want 2", rank, v["OMP_NUM_THREADS"])
		}
		log, err := os.ReadFile(filepath.Join(cfg.RunDir, "logs", "round0", fmt.Sprintf("rank%d.log", rank)))
		if err != nil || !strings.Contains(string(log), fmt.Sprintf("hello from rank %d of 3", rank)) {
			t.Errorf("rank %d log: %q, %v", rank, log, err)
		}
	}
	console := l.console.String()
	if !strings.Contains(console, "[rank0]: hello from rank 0 of 3") || strings.Contains(console, "[rank1]") {
		t.Errorf("console shows %q, want rank 0 only", console)
	}
	if dirs, _ := filepath.Glob(filepath.Join(cfg.RunDir, "rdzv-etcd-*")); len(dirs) != 0 {
		t.Errorf("standalone etcd data left behind: %v", dirs)
	}
}

func TestFailedWorkerRestartsGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	out := workerOut(t)
	cfg := testConfig(t, "", "restart", 3, "fail-first", out)
	cfg.MaxRestarts = 2
	if err := launch(t, cfg).wait(t, testDeadline); err != nil {
		t.Fatalf("want success after one restart: %v", err)
	}
	recs := records(t, out)
	for rank := 0; rank < 3; rank++ {
		r, ok := recs[recordName(1, rank)]
		if !ok {
			t.Fatalf("rank %d did not run in round 1: %v", rank, recs)
		}
		if r.Env.Restart != 1 || r.Vars["TORCHELASTIC_RESTART_COUNT"] != "1" {
			t.Errorf("rank %d in round 1: restart %d (%q), want 1", rank, r.Env.Restart, r.Vars["TORCHELASTIC_RESTART_COUNT"])
		}
	}
	if _, ok := recs[recordName(2, 0)]; ok {
		t.Error("a third round ran")
	}
}

func TestRestartsExhaustedNamesTheRank(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	out := workerOut(t)
	cfg := testConfig(t, "", "exhausted", 3, "fail-always", out)
	cfg.MaxRestarts = 1
	err := launch(t, cfg).wait(t, testDeadline)
	var f *WorkerFailure
	if !errors.Is(err, ErrRestartsExhausted) || !errors.As(err, &f) {
		t.Fatalf("err = %v, want ErrRestartsExhausted with a WorkerFailure", err)
	}
	if f.Rank != 1 || f.ExitCode != 3 || f.Round != 1 || f.Restart != 1 || ExitCode(err) != ExitFailed {
		t.Errorf("failure %+v, exit code %d", f, ExitCode(err))
	}
	wantLog := filepath.Join(cfg.RunDir, "logs", "round1", "rank1.log")
	for _, want := range []string{"rank 1 ", "exited with code 3", wantLog} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %q", err, want)
		}
	}
	if b, _ := os.ReadFile(wantLog); !strings.Contains(string(b), "rank 1 fails on purpose") {
		t.Errorf("log %s: %q", wantLog, b)
	}
	// The other ranks were stopped with SIGTERM in both rounds.
	for round := 0; round < 2; round++ {
		for _, rank := range []int{0, 2} {
			if !exists(filepath.Join(out, fmt.Sprintf("term-r%d-rank%d.json", round, rank))) {
				t.Errorf("rank %d of round %d got no SIGTERM", rank, round)
			}
		}
	}
}

func TestKilledWorkerStopsTheOthersAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	out := workerOut(t)
	cfg := testConfig(t, "", "killed", 3, "kill", out)
	cfg.MaxRestarts = 1
	cfg.GracePeriod = 1500 * time.Millisecond
	if err := launch(t, cfg).wait(t, testDeadline); err != nil {
		t.Fatal(err)
	}
	var killed, term struct{ Time int64 }
	readJSON(t, filepath.Join(out, "killed.json"), &killed)
	readJSON(t, filepath.Join(out, "term-r0-rank1.json"), &term)
	if d := time.Duration(term.Time - killed.Time); d < 0 || d > cfg.GracePeriod {
		t.Errorf("rank 1 got SIGTERM %v after rank 0 was killed, want within the grace period %v", d, cfg.GracePeriod)
	}
	// Rank 2 ignores SIGTERM: the round restarts once SIGKILL ended it.
	next := records(t, out)[recordName(1, 0)]
	if next.Env.Restart != 1 {
		t.Fatalf("round 1 rank 0: %+v", next.Env)
	}
	if d := time.Duration(next.Time - killed.Time); d < cfg.GracePeriod || d > cfg.GracePeriod+10*time.Second {
		t.Errorf("round 1 started %v after the kill, want just after the grace period %v", d, cfg.GracePeriod)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableEtcdFailsFast(t *testing.T) {
	endpoint := testkit.RefusingAddr(t) // nobody listens there, nor can until the test ends
	cfg := testConfig(t, endpoint, "unreachable", 1, "env", t.TempDir())
	cfg.DialTimeout = time.Second
	start := time.Now()
	err := launch(t, cfg).wait(t, 10*time.Second)
	if !errors.Is(err, rdzv.ErrUnreachable) || !strings.Contains(err.Error(), endpoint) {
		t.Fatalf("err = %v, want ErrUnreachable naming %s", err, endpoint)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to give up, dial timeout is 1s", d)
	}
	if ExitCode(err) != ExitFailed {
		t.Errorf("exit code %d", ExitCode(err))
	}
}

// On a node with GPUs (NVML present), --nproc-per-node gpu gives each
// worker one GPU of its own; elsewhere the test only checks that NVML's
// absence is reported.
func TestGPUWorkersEachSeeOneGPU(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	h := DetectHost()
	if len(h.GPUs) == 0 {
		if h.GPUErr == nil {
			t.Fatal("no GPU and no reason")
		}
		t.Skipf("no GPU: %v", h.GPUErr)
	}
	out := workerOut(t)
	o := DefaultOptions()
	o.NprocPerNode, o.Standalone, o.RunDir = "gpu", true, t.TempDir()
	cfg, err := Resolve(o, []string{roleWorker, "env", out}, h)
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	cfg.Program = self
	if err := launch(t, cfg).wait(t, testDeadline); err != nil {
		t.Fatal(err)
	}
	recs := records(t, out)
	for local, id := range h.GPUs {
		if got := recs[recordName(0, local)].Vars["CUDA_VISIBLE_DEVICES"]; got != id {
			t.Errorf("local rank %d sees CUDA_VISIBLE_DEVICES=%q, want %q", local, got, id)
		}
	}
}
