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

func TestPublishLookupAcrossAgents(t *testing.T) {
	srv := startEtcd(t)
	var agents []*Agent
	for _, id := range []string{"a", "b", "c"} {
		agents = append(agents, newAgent(t, srv, "kv", id, WithNodes(3, 3)))
	}
	joinAll(t, agents...)
	// A binary value like an NCCL unique id: 128 bytes with zeros in it.
	id := make([]byte, 128)
	for i := range id {
		id[i] = byte(i * 7)
	}
	got := make([][]byte, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, a := range agents[1:] {
		// Looking up before the value exists exercises the watch path.
		wg.Go(func() { got[i], errs[i] = a.Lookup(context.Background(), "nccl-id") })
	}
	waitInside(t, "rdzv.(*conn).watchOnce", len(agents)-1)
	if err := agents[0].Publish(context.Background(), "nccl-id", id); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(got[i], id) {
			t.Fatalf("agent %s looked up %x, want %x", agents[i+1].ID(), got[i], id)
		}
	}
	// A value that exists is returned without waiting.
	v, err := agents[2].Lookup(context.Background(), "nccl-id")
	if err != nil || !bytes.Equal(v, id) {
		t.Fatalf("second lookup: %x, %v", v, err)
	}
}

func TestLookupTimesOut(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "kv-timeout", "a", WithWaitTimeout(300*time.Millisecond))
	joinAll(t, a)
	_, err := a.Lookup(context.Background(), "never")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), `"never"`) || !strings.Contains(err.Error(), "round 0") {
		t.Fatalf("error %q does not name the key and round", err)
	}
}

func TestBarrierCompletesAndCanBeReused(t *testing.T) {
	srv := startEtcd(t)
	var agents []*Agent
	for _, id := range []string{"a", "b", "c"} {
		agents = append(agents, newAgent(t, srv, "barrier", id, WithNodes(3, 3)))
	}
	joinAll(t, agents...)
	for step := 0; step < 3; step++ {
		errs := make([]error, len(agents))
		var wg sync.WaitGroup
		for i, a := range agents {
			wg.Go(func() {
				time.Sleep(time.Duration(i*30) * time.Millisecond) // arrive staggered
				errs[i] = a.Barrier(context.Background(), "step", len(agents))
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("step %d, agent %s: %v", step, agents[i].ID(), err)
			}
		}
	}
}

func TestBarrierTimeoutNamesMissingMembers(t *testing.T) {
	srv := startEtcd(t)
	var agents []*Agent
	for _, id := range []string{"a", "b", "c"} {
		// Both a's and b's errors must count the other as arrived, so each must arrive
		// within the other's wait: 2 s, not less, so that a loaded machine that starts
		// one goroutine late does not turn "2 of 3 arrived" into "1 of 3".
		agents = append(agents, newAgent(t, srv, "barrier-timeout", id, WithNodes(3, 3),
			WithWaitTimeout(2*time.Second)))
	}
	joinAll(t, agents...)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, a := range agents[:2] { // "c" never comes
		wg.Go(func() { errs[i] = a.Barrier(context.Background(), "ready", 3) })
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		for _, want := range []string{`barrier "ready"`, "round 0", "2 of 3 arrived", "missing [c]"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not mention %q", err, want)
			}
		}
	}
}

func TestRoundScopedCallsNeedARound(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "noround", "a")
	ctx := context.Background()
	if err := a.Publish(ctx, "k", nil); !errors.Is(err, ErrNoRound) {
		t.Fatalf("Publish before Join: %v, want ErrNoRound", err)
	}
	if _, err := a.Lookup(ctx, "k"); !errors.Is(err, ErrNoRound) {
		t.Fatalf("Lookup before Join: %v, want ErrNoRound", err)
	}
	if err := a.Barrier(ctx, "b", 1); !errors.Is(err, ErrNoRound) {
		t.Fatalf("Barrier before Join: %v, want ErrNoRound", err)
	}
	if ev := <-a.Watch(ctx); ev.Kind != WatchFailed || !errors.Is(ev.Err, ErrNoRound) {
		t.Fatalf("Watch before Join: %v, want ErrNoRound", ev)
	}
	joinAll(t, a)
	if err := a.Publish(ctx, "bad/key", nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("key with '/': %v, want ErrConfig", err)
	}
	a.Close()
	if err := a.Publish(ctx, "k", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
}
