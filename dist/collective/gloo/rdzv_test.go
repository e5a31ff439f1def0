package gloo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
	"github.com/lrtrain/lrtrain/dist/rdzv"
	"github.com/lrtrain/lrtrain/internal/testkit/etcdtest"
	"go.uber.org/zap"
)

// TestRendezvousWorkerAsStore forms a group through etcd (an embedded
// server, a one-node round of two workers): *rdzv.Worker is the Store and
// its Done() the AbortOn signal, so closing a worker's session aborts the
// collective that rank is blocked in.
func TestRendezvousWorkerAsStore(t *testing.T) {
	if testing.Short() {
		t.Skip("etcd; runs without -short")
	}
	ctx := context.Background()
	srv := etcdtest.Start(t)
	opts := []rdzv.Option{rdzv.WithEndpoints(srv.Endpoint()), rdzv.WithTTL(2 * time.Second),
		rdzv.WithWaitTimeout(10 * time.Second), rdzv.WithLogger(zap.NewNop())}
	agent, err := rdzv.NewAgent(ctx, "collective-test", append(opts, rdzv.WithAgentID("node-0"), rdzv.WithNproc(2))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	round, err := agent.Join(ctx)
	if err != nil {
		t.Fatal(err)
	}

	size := round.WorldSize
	workers := make([]*rdzv.Worker, size)
	gs := make([]*gloo.Group, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r := range size {
		wg.Go(func() {
			w, err := rdzv.OpenWorker(ctx, "collective-test", round.Number, r, size, opts...)
			if err != nil {
				errs[r] = err
				return
			}
			workers[r] = w
			gs[r], errs[r] = gloo.New(ctx, collective.Config{Rank: r, Size: size, Store: w,
				AbortOn: w.Done(), Hostname: "127.0.0.1", Timeout: 30 * time.Second})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		t.Cleanup(func() { gs[r].Close(); workers[r].Close() })
	}

	bufs := [][]float32{{1, 2}, {10, 20}}
	for r, g := range gs {
		wg.Go(func() { errs[r] = g.AllReduce(ctx, bufs[r], collective.Sum) })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil || bufs[r][0] != 11 || bufs[r][1] != 22 {
			t.Fatalf("rank %d: %v, %v; want [11 22]", r, bufs[r], err)
		}
	}

	done := blocked(t, gs[0], ctx)
	workers[0].Close() // the session ends; Done() fires
	if err := within(t, done, abortBound); !errors.Is(err, collective.ErrAborted) {
		t.Fatalf("got %v, want ErrAborted", err)
	}
}
