package rdzv

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWorkersShareValuesAndBarriers(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "workers", "a", WithNproc(3))
	r := joinAll(t, a)[0]
	ctx := context.Background()

	workers := make([]*Worker, r.WorldSize)
	for rank := range workers {
		w, err := OpenWorker(ctx, "workers", r.Number, rank, r.WorldSize, testOptions(srv)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		workers[rank] = w
	}
	// Rank 0 publishes the CPU backend's address; the others look it up,
	// then all meet at a barrier. The agent's own barrier of the same name
	// (one node) is separate from the workers' (three ranks).
	if err := a.Barrier(ctx, "init", 1); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(workers))
	got := make([][]byte, len(workers))
	var wg sync.WaitGroup
	for rank, w := range workers {
		wg.Go(func() {
			if rank == 0 {
				errs[rank] = w.Publish(ctx, "cpu-backend-addr", []byte("127.0.0.1:29500"))
			} else {
				got[rank], errs[rank] = w.Lookup(ctx, "cpu-backend-addr")
			}
			if errs[rank] == nil {
				errs[rank] = w.Barrier(ctx, "init", len(workers))
			}
		})
	}
	wg.Wait()
	for rank, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", rank, err)
		}
		if rank > 0 && !bytes.Equal(got[rank], []byte("127.0.0.1:29500")) {
			t.Fatalf("rank %d looked up %q", rank, got[rank])
		}
	}
	// The agent sees what a worker published in its round.
	if v, err := a.Lookup(ctx, "cpu-backend-addr"); err != nil || string(v) != "127.0.0.1:29500" {
		t.Fatalf("agent lookup: %q, %v", v, err)
	}
}

func TestWorkerBarrierTimeoutNamesMissingRanks(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "worker-timeout", "a", WithNproc(3))
	r := joinAll(t, a)[0]
	ctx := context.Background()
	w, err := OpenWorker(ctx, "worker-timeout", r.Number, 1, 3,
		testOptions(srv, WithWaitTimeout(300*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	err = w.Barrier(ctx, "init", 3)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "missing [rank-0 rank-2]") {
		t.Fatalf("err = %v, want ErrTimeout naming rank-0 and rank-2", err)
	}
}

func TestOpenWorkerRejectsStaleRound(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "stale", "a")
	joinAll(t, a)
	joinAll(t, a) // round 1
	_, err := OpenWorker(context.Background(), "stale", 0, 0, 1, testOptions(srv)...)
	if !errors.Is(err, ErrRoundClosed) {
		t.Fatalf("err = %v, want ErrRoundClosed", err)
	}
	if _, err := OpenWorker(context.Background(), "stale", 1, 1, 1, testOptions(srv)...); !errors.Is(err, ErrConfig) {
		t.Fatalf("rank 1 of 1: err = %v, want ErrConfig", err)
	}
}
