package rdzv

import (
	"context"
	"errors"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Agent is one node's participant in the rendezvous of a job: the launcher
// creates one per node, joins rounds with it, watches the round and starts a
// new one when the membership changes.
//
// An Agent's methods may be called from several goroutines; Join and Close
// are meant for the launcher's main loop.
type Agent struct {
	*conn

	mu     sync.Mutex
	sess   *session
	round  *Round
	scope  *scope
	closed bool
}

// NewAgent connects to etcd and opens a session (a lease kept alive in the
// background). It fails within the dial timeout, naming the endpoints, when
// etcd cannot be reached.
func NewAgent(ctx context.Context, job string, opts ...Option) (*Agent, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	c, err := dial(ctx, job, cfg)
	if err != nil {
		return nil, err
	}
	sess, err := c.newSession(ctx)
	if err != nil {
		c.cli.Close()
		return nil, err
	}
	return &Agent{conn: c, sess: sess}, nil
}

// ID is the agent's id.
func (a *Agent) ID() string { return a.cfg.agentID }

// Round is the last round joined, nil before the first Join.
func (a *Agent) Round() *Round {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.round
}

// Done is closed when the current session's lease is lost (expired, revoked
// or etcd unanswered for the TTL: between the TTL less one keepalive interval,
// TTL/6, and the TTL after etcd stops answering). The next Join opens a new
// session, giving etcd the dial timeout to answer; it fails with
// ErrUnreachable when etcd does not.
func (a *Agent) Done() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sess.Done()
}

// Check reports whether the rendezvous still works for this agent: nil when its session
// is alive and etcd answers a read within the dial timeout, else an error wrapping
// ErrSessionLost or ErrUnreachable. A worker whose own session was lost exits before
// the launcher's session notices (the keepalives run on their own schedules), so the
// launcher asks before it counts such a failure against the worker.
func (a *Agent) Check(ctx context.Context) error {
	a.mu.Lock()
	sess := a.sess
	a.mu.Unlock()
	select {
	case <-sess.Done():
		return fmt.Errorf("rdzv: agent %s: %w: lease %x", a.cfg.agentID, ErrSessionLost, sess.Lease())
	default:
	}
	bctx, stop := bound(ctx, sess)
	defer stop()
	rctx, cancel := context.WithTimeout(bctx, min(a.cfg.dialTimeout, a.cfg.requestTimeout))
	defer cancel()
	_, err := a.cli.Get(rctx, a.keys.round(), clientv3.WithCountOnly())
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && errors.Is(context.Cause(rctx), ErrSessionLost):
		return fmt.Errorf("rdzv: agent %s: %w", a.cfg.agentID, context.Cause(rctx))
	case ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded):
		return dialError(a.cfg, err)
	}
	return a.fail(rctx, "check etcd", err)
}

// Publish stores value under key for the current round; every participant
// of the round can Lookup it. The value lives as long as this agent's
// session.
func (a *Agent) Publish(ctx context.Context, key string, value []byte) error {
	s, err := a.currentScope()
	if err != nil {
		return err
	}
	return s.publish(ctx, key, value)
}

// Lookup returns the value published under key in the current round,
// waiting for it (up to the wait timeout) if nobody has published it yet.
func (a *Agent) Lookup(ctx context.Context, key string) ([]byte, error) {
	s, err := a.currentScope()
	if err != nil {
		return nil, err
	}
	return s.lookup(ctx, key)
}

// Barrier returns once n agents of the current round have entered the
// barrier called name (up to the wait timeout). A name may be used many
// times; the k-th use by one agent meets the k-th use by the others.
func (a *Agent) Barrier(ctx context.Context, name string, n int) error {
	s, err := a.currentScope()
	if err != nil {
		return err
	}
	return s.barrier(ctx, name, n)
}

// Close revokes the session's lease, so that the other agents see this one
// leave at once, and closes the client. It is safe to call more than once.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	err := a.closeSession(a.sess)
	return errors.Join(err, a.cli.Close())
}

func (a *Agent) currentScope() (*scope, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.closed:
		return nil, ErrClosed
	case a.scope == nil:
		return nil, ErrNoRound
	}
	return a.scope, nil
}

// session returns a live session, replacing one whose lease was lost.
func (a *Agent) session(ctx context.Context) (*session, *Round, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, nil, ErrClosed
	}
	select {
	case <-a.sess.Done():
		sess, err := a.renewSession(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("rdzv: agent %s: session lost: %w", a.cfg.agentID, err)
		}
		a.sess = sess
	default:
	}
	return a.sess, a.round, nil
}

func (a *Agent) setRound(r *Round, sess *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.round = r
	a.scope = &scope{
		conn: a.conn, sess: sess, round: r.Number, group: "nodes",
		self: a.cfg.agentID, expected: r.IDs(), gens: map[string]int{},
	}
}
