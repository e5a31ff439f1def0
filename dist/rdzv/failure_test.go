package rdzv

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/internal/testkit"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestUnreachableEtcdFailsWithinDialTimeout(t *testing.T) {
	before := runtime.NumGoroutine()
	// A port held without listening: refused, and no other process can take it meanwhile.
	endpoint := testkit.RefusingAddr(t)

	const dialTimeout = 500 * time.Millisecond
	t0 := time.Now()
	_, err := NewAgent(context.Background(), "nowhere", WithEndpoints(endpoint),
		WithDialTimeout(dialTimeout), WithLogger(zap.NewNop()))
	took := time.Since(t0)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), endpoint) {
		t.Fatalf("error %q does not name endpoint %s", err, endpoint)
	}
	if took > dialTimeout+time.Second {
		t.Fatalf("failed after %v, dial timeout %v", took, dialTimeout)
	}
	_, err = OpenWorker(context.Background(), "nowhere", 0, 0, 1, WithEndpoints(endpoint),
		WithDialTimeout(dialTimeout), WithLogger(zap.NewNop()))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("worker: err = %v, want ErrUnreachable", err)
	}
	testkit.NoGoroutinesLeft(t, before, 5, 5*time.Second) // slack: a few process-wide ones gRPC starts once
}

func TestEtcdStoppedMidRoundNothingHangs(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := startEtcd(t)
	a := newAgent(t, srv, "crash", "a", WithNodes(2, 2), WithRequestTimeout(time.Second))
	b := newAgent(t, srv, "crash", "b", WithNodes(2, 2), WithRequestTimeout(time.Second))
	joinAll(t, a, b)
	ctx := context.Background()
	chA := a.Watch(ctx)
	// b waits at a barrier that a never enters when etcd goes away.
	barrierErr := make(chan error, 1)
	go func() { barrierErr <- b.Barrier(ctx, "never", 2) }()
	waitInside(t, "rdzv.(*conn).watchOnce", 2) // a's round watch and b's barrier wait

	t0 := time.Now()
	srv.Close()
	t.Logf("etcd stopped in %v", time.Since(t0).Round(time.Millisecond))
	// With etcd gone no keepalive is answered; the client declares the
	// lease lost once its TTL passes.
	ev := firstEvent(t, chA, testTTL+3*time.Second)
	if ev.Kind != SessionLost || !errors.Is(ev.Err, ErrSessionLost) {
		t.Fatalf("event %v, want session lost", ev)
	}
	t.Logf("watch reported %v %v after etcd stopped", ev.Kind, time.Since(t0).Round(time.Millisecond))
	select {
	case err := <-barrierErr:
		if !errors.Is(err, ErrSessionLost) {
			t.Fatalf("barrier: %v, want ErrSessionLost", err)
		}
	case <-time.After(testTTL + 3*time.Second):
		t.Fatal("barrier still waiting after etcd stopped")
	}

	// With the session lost, round-scoped calls fail at once, Join fails
	// within the dial timeout or the request timeout, whichever is shorter
	// (1 s here), trying to open a new session, and Close does not try to
	// revoke a lease that is gone.
	for _, c := range []struct {
		name  string
		limit time.Duration
		call  func() error
	}{
		{"Publish", 100 * time.Millisecond, func() error { return a.Publish(ctx, "k", []byte("v")) }},
		{"Lookup", 100 * time.Millisecond, func() error { _, err := a.Lookup(ctx, "k"); return err }},
		{"Barrier", 100 * time.Millisecond, func() error { return a.Barrier(ctx, "b", 2) }},
		{"Join", 2 * time.Second, func() error { _, err := a.Join(ctx); return err }},
		{"Close", 100 * time.Millisecond, func() error { return a.Close() }},
	} {
		t1 := time.Now()
		err := c.call()
		took := time.Since(t1)
		if took > c.limit {
			t.Fatalf("%s took %v with etcd stopped, limit %v", c.name, took, c.limit)
		}
		if c.name != "Close" && err == nil {
			t.Fatalf("%s succeeded with etcd stopped", c.name)
		}
		if c.name == "Publish" && !errors.Is(err, ErrSessionLost) {
			t.Fatalf("Publish: %v, want ErrSessionLost", err)
		}
	}
	b.Close()
	testkit.NoGoroutinesLeft(t, before, 5, 5*time.Second) // slack: a few process-wide ones gRPC starts once
}

func TestAuthUsesCredentialsAndNamesRejection(t *testing.T) {
	srv := startEtcd(t)
	ctx := context.Background()
	admin, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	// bcrypt makes authentication slow, very slow under -race.
	const dial = 20 * time.Second
	a := newAgent(t, srv, "auth", "a", WithAuth("root", "rootpw"), WithDialTimeout(dial))
	if r := joinAll(t, a)[0]; r.NumNodes != 1 {
		t.Fatalf("round with %d nodes", r.NumNodes)
	}
	_, err = NewAgent(ctx, "auth", testOptions(srv, WithAuth("root", "wrong"), WithDialTimeout(dial))...)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), `user "root"`) {
		t.Fatalf("wrong password: err = %v, want ErrAuth naming the user", err)
	}
}
