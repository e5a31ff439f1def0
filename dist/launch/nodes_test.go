package launch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"testing"

	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/internal/testkit/etcdtest"
)

func TestTwoNodesFormOneWorld(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, etcd; runs without -short")
	}
	srv := etcdtest.Start(t)
	out := workerOut(t)
	var nodes []*launched
	for rank := 0; rank < 2; rank++ {
		nodes = append(nodes, launch(t, nodeConfig(t, srv.Endpoint(), "two-nodes", 2, 2, rank, 2, "env", out)))
	}
	waitNodes(t, nodes...)
	recs := records(t, out)
	if len(recs) != 4 {
		t.Fatalf("%d worker records, want 4", len(recs))
	}
	master := ""
	for rank := 0; rank < 4; rank++ {
		e := recs[recordName(0, rank)].Env
		if e.Rank != rank || e.WorldSize != 4 || e.LocalWorldSize != 2 || e.NumNodes != 2 ||
			e.NodeRank != rank/2 || e.LocalRank != rank%2 {
			t.Errorf("rank %d: %+v", rank, e)
		}
		m := fmt.Sprintf("%s:%d", e.MasterAddr, e.MasterPort)
		if master == "" {
			master = m
		} else if m != master {
			t.Errorf("rank %d: master %s, rank 0 has %s", rank, m, master)
		}
	}
	if host, _, _ := net.SplitHostPort(master); host != "127.0.0.1" {
		t.Errorf("master %s, want node 0's loopback address", master)
	}
}

func TestFailureOnOneNodeRestartsEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, etcd; runs without -short")
	}
	srv := etcdtest.Start(t)
	out := workerOut(t)
	var nodes []*launched
	for rank := 0; rank < 2; rank++ {
		cfg := nodeConfig(t, srv.Endpoint(), "two-node-restart", 2, 2, rank, 1, "fail-round0", out)
		cfg.MaxRestarts = 1
		nodes = append(nodes, launch(t, cfg))
	}
	waitNodes(t, nodes...)
	recs := records(t, out)
	// The failed node counts a restart; the other one only followed the
	// round change.
	for rank, restart := range []int{0, 1} {
		e := recs[recordName(1, rank)].Env
		if e.WorldSize != 2 || e.Rank != rank || e.Restart != restart {
			t.Errorf("round 1 rank %d: %+v, want restart %d", rank, e, restart)
		}
	}
	if !exists(filepath.Join(out, "term-r0-rank0.json")) {
		t.Error("rank 0 was not stopped with SIGTERM when rank 1 failed")
	}
}

func TestElasticScaleUpFormsBiggerRound(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, etcd; runs without -short")
	}
	srv := etcdtest.Start(t)
	out := workerOut(t)
	node := func(rank int) Config {
		return nodeConfig(t, srv.Endpoint(), "elastic", 1, 2, rank, 2, "elastic", out, "4")
	}
	first := launch(t, node(0))
	testkit.WaitFor(t, testDeadline, "round 0 workers of the first node", func() bool {
		return len(records(t, out)) == 2
	})
	second := launch(t, node(1))
	waitNodes(t, first, second)
	recs := records(t, out)
	if e := recs[recordName(0, 1)].Env; e.WorldSize != 2 || e.NumNodes != 1 {
		t.Errorf("round 0: %+v, want one node of 2 workers", e)
	}
	var last int64
	for _, r := range recs {
		last = max(last, r.Env.Round)
	}
	ranks := []int{}
	for name, r := range recs {
		if r.Env.Round != last {
			continue
		}
		if r.Env.WorldSize != 4 || r.Env.NumNodes != 2 || r.Env.Restart != 0 {
			t.Errorf("%s: %+v, want world size 4 on 2 nodes, no restart counted", name, r.Env)
		}
		ranks = append(ranks, r.Env.Rank)
	}
	sort.Ints(ranks)
	if fmt.Sprint(ranks) != "[0 1 2 3]" {
		t.Errorf("ranks of round %d: %v", last, ranks)
	}
}

func TestLostNodeMakesTheOthersRestartWithoutIt(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, etcd; runs without -short")
	}
	srv := etcdtest.Start(t)
	out := workerOut(t)
	node := func(rank int) Config {
		return nodeConfig(t, srv.Endpoint(), "shrink", 1, 2, rank, 2, "elastic", out, "2")
	}
	ctx, stopSecond := context.WithCancel(context.Background())
	defer stopSecond()
	first, second := launch(t, node(0)), launchContext(t, ctx, node(1))
	testkit.WaitFor(t, testDeadline, "a round of two nodes", func() bool { return len(records(t, out)) == 4 })
	stopSecond() // the second node goes away: its agent revokes its lease
	if err := second.wait(t, testDeadline); !errors.Is(err, ErrInterrupted) || ExitCode(err) != ExitFailed {
		t.Errorf("stopped node: %v (exit code %d), want ErrInterrupted", err, ExitCode(err))
	}
	if err := first.wait(t, testDeadline); err != nil {
		t.Fatalf("remaining node: %v", err)
	}
	var last record
	for _, r := range records(t, out) {
		if r.Env.Round > last.Env.Round {
			last = r
		}
	}
	if e := last.Env; e.Round == 0 || e.WorldSize != 2 || e.NumNodes != 1 || e.Restart != 0 {
		t.Errorf("last round: %+v, want one node of 2 workers and no restart counted", e)
	}
}
