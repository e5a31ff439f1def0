package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/rdzv"
	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/internal/testkit/etcdtest"
)

// When etcd stops, the launcher's session and its workers' sessions (which
// get the launcher's TTL) are lost within the TTL, the workers are stopped,
// and the launcher gives etcd the dial timeout to come back before it exits
// saying etcd is unreachable.
func TestEtcdOutageStopsWorkersAndLauncherPromptly(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, etcd; runs without -short")
	}
	srv := etcdtest.Start(t)
	out := workerOut(t)
	cfg := testConfig(t, srv.Endpoint(), "outage", 2, "session", out)
	cfg.DialTimeout = time.Second
	cfg.GracePeriod = 8 * time.Second // the workers wait for their own sessions to end
	l := launch(t, cfg)
	testkit.WaitFor(t, testDeadline, "both workers' sessions", func() bool {
		return exists(filepath.Join(out, "open-r0-rank0.json")) && exists(filepath.Join(out, "open-r0-rank1.json"))
	})
	// Each session's lease was granted before its file was written: the loss bound
	// below counts from that answer at the latest, so nothing more is awaited.
	t0 := time.Now()
	srv.Close()
	stopped := time.Now()
	t.Logf("etcd stopped in %v", stopped.Sub(t0).Round(time.Millisecond))

	// TTL since the last keepalive answer, the client's 1 s check, slack
	// for a loaded machine.
	lossBound := cfg.TTL + time.Second + 1500*time.Millisecond
	err := l.wait(t, lossBound+cfg.DialTimeout+cfg.GracePeriod)
	took := time.Since(stopped)
	t.Logf("launcher exited %v after etcd stopped: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, rdzv.ErrUnreachable) || ExitCode(err) != ExitFailed {
		t.Errorf("launcher: %v, want ErrUnreachable", err)
	}
	if limit := lossBound + cfg.DialTimeout + time.Second; took > limit {
		t.Errorf("launcher exited %v after etcd stopped, want within %v (TTL %v, dial timeout %v)",
			took, limit, cfg.TTL, cfg.DialTimeout)
	}
	recs := records(t, out)
	for rank := 0; rank < 2; rank++ {
		if v := recs[recordName(0, rank)].Vars; v["LRTRAIN_RDZV_TTL"] != cfg.TTL.String() ||
			v["LRTRAIN_RDZV_DIAL_TIMEOUT"] != cfg.DialTimeout.String() {
			t.Errorf("rank %d: %v, want the launcher's TTL and dial timeout", rank, v)
		}
		var lost struct{ Time int64 }
		readJSON(t, filepath.Join(out, fmt.Sprintf("lost-r0-rank%d.json", rank)), &lost)
		if d := time.Unix(0, lost.Time).Sub(stopped); d > lossBound {
			t.Errorf("rank %d's session lost %v after etcd stopped, want within %v", rank, d, lossBound)
		} else {
			t.Logf("rank %d's session lost %v after etcd stopped", rank, d.Round(time.Millisecond))
		}
	}
}

// A worker that fails while etcd is gone (in a real run: its own session was lost before
// the launcher's) neither uses up a restart nor is reported as the cause: the launcher
// sees that the rendezvous fails too, joins again and exits saying etcd is unreachable.
// With etcd healthy the same failure ends the run as a worker failure.
func TestWorkerFailureDuringEtcdOutageNamesEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, etcd; runs without -short")
	}
	for _, outage := range []bool{true, false} {
		srv := etcdtest.Start(t)
		out := workerOut(t)
		cfg := testConfig(t, srv.Endpoint(), fmt.Sprintf("fail-outage-%v", outage), 2, "fail-when-told", out)
		cfg.TTL = 5 * time.Second // the launcher's session outlives the worker's failure
		cfg.DialTimeout = time.Second
		l := launch(t, cfg)
		testkit.WaitFor(t, testDeadline, "both workers", func() bool { return len(records(t, out)) == 2 })
		if outage {
			srv.Close()
		}
		if err := os.WriteFile(filepath.Join(out, "fail"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		err := l.wait(t, testDeadline)
		t.Logf("etcd stopped %v: launcher: %v", outage, err)
		switch {
		case outage && (errors.Is(err, ErrRestartsExhausted) || !errors.Is(err, rdzv.ErrUnreachable) ||
			!strings.Contains(err.Error(), "etcd")):
			t.Errorf("worker failure during an etcd outage: %v, want etcd named as unreachable", err)
		case !outage && !errors.Is(err, ErrRestartsExhausted):
			t.Errorf("worker failure with etcd healthy: %v, want ErrRestartsExhausted", err)
		}
	}
}

// Stopping a group kills every worker that ignores SIGTERM once the grace
// period has passed, not only the first one.
func TestStopKillsEveryStubbornWorkerAfterGrace(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	out := workerOut(t)
	cfg := testConfig(t, "", "stubborn", 3, "stubborn", out)
	g, err := startGroup(&cfg, groupSpec{
		logDir: t.TempDir(), console: &syncBuffer{},
		env: func(local int) WorkerEnv {
			return WorkerEnv{Rank: local, LocalRank: local, WorldSize: 3, LocalWorldSize: 3,
				MasterAddr: "127.0.0.1", Endpoints: []string{"127.0.0.1:1"}, Job: "stubborn"}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "three stubborn workers", func() bool { return len(records(t, out)) == 3 })
	const grace = 300 * time.Millisecond
	t0 := time.Now()
	g.stop(syscall.SIGTERM, grace, nil)
	if d := time.Since(t0); d > grace+2*time.Second {
		t.Errorf("stop took %v with a grace period of %v", d, grace)
	}
	for _, w := range g.workers {
		if f := g.failure(w); f == nil || f.Signal != syscall.SIGKILL {
			t.Errorf("rank %d: %+v, want killed by SIGKILL", w.rank, f)
		}
	}
}
