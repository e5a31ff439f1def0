package rdzv

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// A request that reached a member without a leader, one whose leader changed, and one
// that waited on a silent member are each sent again, with twice the time each time;
// the first answer ends it.
func TestRetrierSendsAgainOnMemberErrors(t *testing.T) {
	r := retrier{attemptTimeout: 200 * time.Millisecond}
	var budgets []time.Duration
	got, err := do(r, context.Background(), func(ctx context.Context) (int, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatal("an attempt has no deadline")
		}
		budgets = append(budgets, time.Until(dl))
		switch len(budgets) {
		case 1:
			return 0, rpctypes.ErrNoLeader
		case 2:
			return 0, rpctypes.ErrLeaderChanged
		case 3:
			<-ctx.Done() // a member that never answers
			return 0, ctx.Err()
		}
		return 42, nil
	})
	if err != nil || got != 42 {
		t.Fatalf("got %d, %v; want 42 after 4 attempts", got, err)
	}
	if len(budgets) != 4 {
		t.Fatalf("%d attempts, want 4", len(budgets))
	}
	for i := 1; i < len(budgets); i++ {
		// Each attempt's budget is twice the one before; the time spent between taking
		// the two deadlines and reading them is far below one budget.
		if budgets[i] <= budgets[i-1] {
			t.Errorf("attempt %d had %v, attempt %d %v: want more each time", i, budgets[i-1], i+1, budgets[i])
		}
	}
}

// An error about the request itself comes back at once.
func TestRetrierReturnsRequestErrors(t *testing.T) {
	r := retrier{attemptTimeout: time.Second}
	attempts := 0
	_, err := do(r, context.Background(), func(context.Context) (int, error) {
		attempts++
		return 0, rpctypes.ErrPermissionDenied
	})
	if !errors.Is(err, rpctypes.ErrPermissionDenied) || attempts != 1 {
		t.Fatalf("%d attempts, error %v; want 1 attempt, permission denied", attempts, err)
	}
}

// While the cluster has no leader, the request is sent again until the caller's
// deadline, and the last member error is what the caller sees.
func TestRetrierEndsAtTheCallersDeadline(t *testing.T) {
	r := retrier{attemptTimeout: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	attempts := 0
	_, err := do(r, ctx, func(context.Context) (int, error) {
		attempts++
		return 0, rpctypes.ErrNoLeader
	})
	if !errors.Is(err, rpctypes.ErrNoLeader) || ctx.Err() == nil || attempts < 2 {
		t.Fatalf("%d attempts, error %v, caller's context %v; want several attempts ending with no leader at the deadline",
			attempts, err, ctx.Err())
	}
}

// Sending a transaction again must be harmless (its first application may have
// happened without the answer arriving): each of the agent's transactions, applied
// twice, leaves the state and the answer of a single application.
func TestTransactionsAreSafeToSendTwice(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "twice", "a", WithNodes(1, 1))
	ctx := context.Background()
	for i := range 2 {
		if n, err := a.startRound(ctx, nil); err != nil || n != 0 {
			t.Fatalf("startRound, sent %d time(s): round %d, %v; want 0", i+1, n, err)
		}
	}
	for i := range 2 {
		if n, err := a.advance(ctx, 0); err != nil || n != 1 {
			t.Fatalf("advance from 0, sent %d time(s): round %d, %v; want 1", i+1, n, err)
		}
	}
	sess, err := a.newSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.closeSession(sess)
	for i := range 2 {
		if err := a.register(ctx, sess, 1); err != nil {
			t.Fatalf("register, sent %d time(s): %v", i+1, err)
		}
	}
	s, err := a.snapshot(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.nodes) != 1 || s.round != 1 {
		t.Fatalf("after registering twice: round %d, nodes %v; want round 1, one node", s.round, s.nodes)
	}
	for i := range 2 {
		if err := a.freeze(ctx, 1, s); err != nil {
			t.Fatalf("freeze, sent %d time(s): %v", i+1, err)
		}
	}
	after, err := a.snapshot(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if after.frozen == nil || len(after.frozen.Members) != 1 {
		t.Fatalf("after freezing twice: frozen %+v; want one member", after.frozen)
	}
}
