package rdzv

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"
)

// lossBound is how long after etcd stops answering a session may still look
// alive: the TTL since the last keepalive answer, plus the client's 1 s
// deadline check, plus slack for a loaded 2-core machine.
const lossBound = testTTL + time.Second + 1500*time.Millisecond

// proxy forwards TCP connections to etcd until it is cut: then it closes
// every connection and stops listening, as an etcd that went away; restore
// listens on the same address again.
type proxy struct {
	target, addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	target = strings.TrimPrefix(target, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, up) {
				return
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// track registers a connection pair, or closes it when the proxy was cut.
func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) restore(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Errorf("listen on %s again: %v", p.addr, err)
		return
	}
	p.serve(ln)
}

// waitFor polls cond until it holds, failing after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDone returns how long after since ch closed, failing after limit.
func waitDone(t *testing.T, what string, ch <-chan struct{}, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	select {
	case <-ch:
		return time.Since(since)
	case <-time.After(limit - time.Since(since)):
		t.Fatalf("%s: still alive %v after etcd went away", what, limit)
	}
	return 0
}

// When etcd goes away, the agent's and the worker's sessions end within the
// TTL (plus the client's check interval), Watch reports it, Close does not
// wait for the gone etcd, and Join, whether it began before or after the
// session was lost, gives up within the dial timeout of the loss saying etcd
// is unreachable, not after a request timeout.
func TestEtcdOutageEndsSessionsWithinTTL(t *testing.T) {
	srv := startEtcd(t)
	p := newProxy(t, srv.Endpoint())
	const dial, request = time.Second, 10 * time.Second
	opts := []Option{WithEndpoints(p.addr), WithDialTimeout(dial), WithRequestTimeout(request)}
	a := newAgent(t, srv, "outage", "a", opts...)
	r := joinAll(t, a)[0]
	ctx := context.Background()
	w, err := OpenWorker(ctx, "outage", r.Number, 0, 1, testOptions(srv, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w2, err := OpenWorker(ctx, "outage", r.Number, 0, 1, testOptions(srv, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	events := a.Watch(ctx)
	waitFor(t, 10*time.Second, "two keepalives answered", func() bool { return a.scope.sess.answers.Load() >= 2 })

	cutAt := time.Now()
	p.cut()
	// A worker stopping while etcd is gone closes at once: the client is
	// disconnected, so the lease is left to expire instead of revoked.
	waitFor(t, time.Second, "the worker's client to notice", func() bool {
		return w2.cli.ActiveConnection().GetState() != connectivity.Ready
	})
	t0 := time.Now()
	err = w2.Close()
	if took := time.Since(t0); took > 700*time.Millisecond {
		t.Errorf("worker Close took %v with etcd gone", took)
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("worker Close: %v, want ErrUnreachable (lease not revoked)", err)
	}

	// A Join that begins while the session still looks alive (a launcher
	// restarting failed workers) ends with the session.
	agentDone := a.Done()
	joined := make(chan error, 1)
	go func() { _, err := a.Join(ctx); joined <- err }()

	took := waitDone(t, "agent session", agentDone, cutAt, lossBound)
	t.Logf("agent session lost %v after etcd went away (TTL %v)", took.Round(time.Millisecond), testTTL)
	took = waitDone(t, "worker session", w.Done(), cutAt, lossBound)
	t.Logf("worker session lost %v after etcd went away", took.Round(time.Millisecond))
	if ev := firstEvent(t, events, time.Second); ev.Kind != SessionLost {
		t.Fatalf("watch: %v, want session lost", ev)
	}
	select {
	case err = <-joined:
	case <-time.After(lossBound + dial - time.Since(cutAt)):
		t.Fatalf("Join begun with etcd gone still waiting %v after the outage", lossBound+dial)
	}
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), p.addr) {
		t.Fatalf("Join without etcd: %v, want ErrUnreachable naming %s", err, p.addr)
	}
	t.Logf("Join begun with etcd gone failed %v after the outage: %v", time.Since(cutAt).Round(time.Millisecond), err)

	t0 = time.Now()
	_, err = a.Join(ctx)
	took = time.Since(t0)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Join after the session was lost: %v, want ErrUnreachable", err)
	}
	if took > dial+time.Second {
		t.Fatalf("Join after the session was lost failed after %v, dial timeout %v", took, dial)
	}
}

// An outage well within the TTL costs nothing; after a longer one, an etcd
// that is back within the dial timeout lets the agent join the next round.
func TestShortOutageIsSurvived(t *testing.T) {
	srv := startEtcd(t)
	p := newProxy(t, srv.Endpoint())
	// The last keepalive answer before the outage may be TTL/3 + 0.5 s old;
	// after it, the client reconnects within its backoff (0.1 s, growing to
	// 1 s) and retries the keepalive stream 0.5 s after it broke. With a 3 s
	// TTL, a 0.5 s outage leaves about a second to spare.
	const ttl, blip, dial = 3 * time.Second, 500 * time.Millisecond, 3 * time.Second
	a := newAgent(t, srv, "blip", "a", WithEndpoints(p.addr), WithDialTimeout(dial), WithTTL(ttl))
	joinAll(t, a)
	ctx := context.Background()

	p.cut()
	time.Sleep(blip) // the outage itself
	p.restore(t)
	select {
	case <-a.Done():
		t.Fatalf("session lost after an outage of %v (TTL %v)", blip, ttl)
	case <-time.After(ttl + 1500*time.Millisecond - blip):
	}
	if err := a.Publish(ctx, "after-blip", []byte("ok")); err != nil {
		t.Fatalf("publish after the outage: %v", err)
	}

	cutAt := time.Now()
	p.cut()
	waitDone(t, "agent session", a.Done(), cutAt, ttl+2500*time.Millisecond)
	go func() {
		time.Sleep(500 * time.Millisecond) // the outage's length
		p.restore(t)
	}()
	t0 := time.Now()
	r, err := a.Join(ctx)
	if err != nil {
		t.Fatalf("Join with etcd back after 0.5 s: %v", err)
	}
	t.Logf("joined round %d %v after Join began", r.Number, time.Since(t0).Round(time.Millisecond))
	if r.Number != 1 {
		t.Errorf("joined round %d, want 1", r.Number)
	}
}
