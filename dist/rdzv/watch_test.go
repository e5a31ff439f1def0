package rdzv

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestWatchFiresWhenMemberLeaseRevoked(t *testing.T) {
	srv := startEtcd(t)
	var agents []*Agent
	for _, id := range []string{"a", "b", "c"} {
		agents = append(agents, newAgent(t, srv, "revoke", id, WithNodes(2, 3)))
	}
	joinAll(t, agents...)
	ctx := context.Background()
	chA, chB := agents[0].Watch(ctx), agents[1].Watch(ctx)

	// Revoke c's lease from outside, as an operator or etcd itself would.
	if _, err := agents[0].cli.Revoke(ctx, agents[2].sess.Lease()); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan Event{chA, chB} {
		ev := firstEvent(t, ch, testTTL)
		if ev.Kind != MemberLost || ev.Agent != "c" || ev.Round != 0 {
			t.Fatalf("event %v, want member c lost in round 0", ev)
		}
		if _, open := <-ch; open {
			t.Fatal("watch channel not closed after its event")
		}
	}
	select {
	case <-agents[2].Done():
	case <-time.After(2 * testTTL):
		t.Fatal("revoked agent's session not reported lost")
	}

	// The survivors form the next round without c.
	rounds := joinAll(t, agents[0], agents[1])
	for _, r := range rounds {
		if r.Number != 1 || !slices.Equal(r.IDs(), []string{"a", "b"}) {
			t.Fatalf("round %d with %v, want round 1 with [a b]", r.Number, r.IDs())
		}
	}
	// c comes back with a fresh session and waits for the round after.
	ch := agents[0].Watch(ctx)
	done := make(chan *Round, 1)
	go func() {
		r, err := agents[2].Join(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	if ev := firstEvent(t, ch, 5*time.Second); ev.Kind != NodeWaiting || ev.Agent != "c" {
		t.Fatalf("event %v, want node c waiting", ev)
	}
	rounds = joinAll(t, agents[0], agents[1])
	rc := <-done
	if rc == nil || rc.Number != 2 || rounds[0].Number != 2 || rc.NumNodes != 3 {
		t.Fatalf("after scale-up: c in %+v, a in round %d; want all three in round 2", rc, rounds[0].Number)
	}
}

func TestWatchFiresWhenMemberSessionExpires(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "expire", "a", WithNodes(2, 2))
	b := newAgent(t, srv, "expire", "b", WithNodes(2, 2))
	joinAll(t, a, b)
	ch := a.Watch(context.Background())
	// b dies abruptly: its keepalives stop, nobody revokes the lease.
	t0 := time.Now()
	b.sess.Orphan()
	ev := firstEvent(t, ch, 3*testTTL)
	if ev.Kind != MemberLost || ev.Agent != "b" {
		t.Fatalf("event %v, want member b lost", ev)
	}
	// etcd expires leases on its own clock, checked every 500 ms.
	if took := time.Since(t0); took > testTTL+1500*time.Millisecond {
		t.Fatalf("member loss seen after %v, TTL %v", took, testTTL)
	}
}

func TestWatchFiresWhenRoundClosedByPeer(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "closed", "a", WithNodes(2, 2))
	b := newAgent(t, srv, "closed", "b", WithNodes(2, 2))
	joinAll(t, a, b)
	ch := a.Watch(context.Background())
	// b decides to restart: its Join moves the job to round 1.
	go b.Join(context.Background())
	ev := firstEvent(t, ch, 5*time.Second)
	if ev.Kind != RoundClosed || ev.Round != 0 {
		t.Fatalf("event %v, want round 0 closed", ev)
	}
	if r := joinAll(t, a)[0]; r.Number != 1 {
		t.Fatalf("a rejoined round %d, want 1", r.Number)
	}
}

func TestWatchIgnoresWaitersWhenRoundIsFull(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "full-watch", "a", WithNodes(1, 1))
	joinAll(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	ch := a.Watch(ctx)
	// A spare node waits, but round 0 is at its maximum: no restart.
	spare := newAgent(t, srv, "full-watch", "spare", WithNodes(1, 1), WithJoinTimeout(500*time.Millisecond))
	if _, err := spare.Join(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("spare joined: %v, want ErrTimeout", err)
	}
	ev := firstEvent(t, ch, 5*time.Second)
	if ev.Kind != Canceled || !errors.Is(ev.Err, context.DeadlineExceeded) {
		t.Fatalf("event %v, want canceled by the context", ev)
	}
}
