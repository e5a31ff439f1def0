package worker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/etcdembed"
	"github.com/lrtrain/lrtrain/dist/rdzv"
	"github.com/lrtrain/lrtrain/dist/worker"
	"github.com/lrtrain/lrtrain/dist/worker/workerenv"
)

// Two ranks of a one-node round, each formed as lrtrain train forms it (from the
// environment the launcher would give it, against a real embedded etcd), sum a
// value through the data-parallel group and through the shard group; when etcd
// goes away, each run is cancelled with a cause naming the lost session.
func TestTwoRanksFormAndAllReduce(t *testing.T) {
	ctx := context.Background()
	srv, err := etcdembed.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Close()
		}
	})
	quiet := []rdzv.Option{rdzv.WithLogger(zap.NewNop()), rdzv.WithWaitTimeout(20 * time.Second)}
	agent, err := rdzv.NewAgent(ctx, "worker-test", append([]rdzv.Option{rdzv.WithEndpoints(srv.Endpoint()),
		rdzv.WithTTL(2 * time.Second), rdzv.WithAgentID("node-0"), rdzv.WithNproc(2)}, quiet...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	round, err := agent.Join(ctx)
	if err != nil {
		t.Fatal(err)
	}

	const size = 2
	groups := make([]*worker.Groups, size)
	causes := make([]chan error, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r := range size {
		causes[r] = make(chan error, 1)
		env := workerenv.Env{Rank: r, LocalRank: r, WorldSize: size, LocalWorldSize: size, NumNodes: 1,
			MasterAddr: "127.0.0.1", MasterPort: 1, Endpoints: []string{srv.Endpoint()}, Job: "worker-test",
			Round: round.Number, TTL: 2 * time.Second, DialTimeout: 2 * time.Second}
		spec := worker.Spec{Device: "cpu", Backend: "auto", ShardGroupSize: size, Timeout: 30 * time.Second,
			Lookup: lookupOf(env), RdzvOptions: quiet}
		wg.Go(func() {
			groups[r], errs[r] = worker.Form(ctx, spec, func(cause error) {
				select {
				case causes[r] <- cause:
				default:
				}
			})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		t.Cleanup(groups[r].Close)
		if g := groups[r]; g.DP == nil || g.Shard == nil || g.DP.Rank() != r || g.DP.Size() != size ||
			g.Shard.Size() != size || g.LocalRank != r {
			t.Fatalf("rank %d: groups %+v", r, g)
		}
	}

	// Rank r contributes r+1 and 10(r+1): sums 3 and 30, exact in float64.
	for _, pick := range []func(*worker.Groups) collective.Group{
		func(g *worker.Groups) collective.Group { return g.DP },
		func(g *worker.Groups) collective.Group { return g.Shard },
	} {
		bufs := make([][]float64, size)
		for r := range size {
			bufs[r] = []float64{float64(r + 1), float64(10 * (r + 1))}
			wg.Go(func() { errs[r] = pick(groups[r]).AllReduceFloat64(ctx, bufs[r], collective.Sum) })
		}
		wg.Wait()
		for r := range size {
			if errs[r] != nil || fmt.Sprint(bufs[r]) != "[3 30]" {
				t.Fatalf("rank %d: all-reduce gave %v, %v; want [3 30]", r, bufs[r], errs[r])
			}
		}
	}

	// etcd stops: each worker's session is lost within about its TTL, and the
	// run is cancelled with a cause naming it (the bound only fails a hung test).
	srv.Close()
	stopped = true
	for r := range size {
		select {
		case cause := <-causes[r]:
			if !errors.Is(cause, rdzv.ErrSessionLost) {
				t.Errorf("rank %d: cancelled with %v; want ErrSessionLost", r, cause)
			}
		case <-time.After(time.Minute):
			t.Fatalf("rank %d: not cancelled a minute after etcd stopped", r)
		}
	}
}
