package rdzv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
)

// reconnectBackoff paces the client's reconnection attempts after etcd went
// away. gRPC's default backs off up to 2 minutes (4 s after four failures),
// so an etcd back after a few seconds would be noticed too late to save a
// lease or a rejoin; one attempt a second costs nothing.
var reconnectBackoff = backoff.Config{
	BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second,
}

// conn is what agents and workers share: a client, a session (lease with
// keepalive) and the request timeout.
type conn struct {
	cfg  config
	keys keys
	cli  *clientv3.Client
}

// dial connects to etcd and checks, within the dial timeout, that an
// endpoint answers: clientv3.New alone does not wait for a connection.
func dial(ctx context.Context, job string, cfg config) (*conn, error) {
	if err := checkName("job id", job); err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.endpoints,
		DialTimeout: cfg.dialTimeout,
		TLS:         tc,
		Username:    cfg.username,
		Password:    cfg.password,
		Logger:      cfg.logger,
		// A member that went silent (its link down, its host frozen) leaves a
		// connection that looks open; without pings, a watch on it would wait for
		// ever. etcd refuses pings more often than every 5 s by default.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// Reconnect promptly; a connection attempt may take the dial timeout.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: reconnectBackoff, MinConnectTimeout: cfg.dialTimeout,
		})},
	})
	if err != nil {
		return nil, dialError(cfg, err)
	}
	withRetries(cli, cfg.ttl)
	c := &conn{cfg: cfg, keys: newKeys(job), cli: cli}
	pctx, cancel := context.WithTimeout(ctx, cfg.dialTimeout)
	defer cancel()
	// Reading the job's round key checks reachability, TLS, credentials and
	// the permission on the job prefix at once.
	if _, err := cli.Get(pctx, c.keys.round(), clientv3.WithCountOnly()); err != nil {
		cli.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("rdzv: connect to etcd at %v: %w", cfg.endpoints, err)
		}
		return nil, connectError(cfg, err)
	}
	return c, nil
}

// dialError tells rejected credentials from an etcd that does not answer.
func dialError(cfg config, err error) error {
	if errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrPermissionDenied) ||
		errors.Is(err, rpctypes.ErrUserEmpty) || errors.Is(err, rpctypes.ErrInvalidAuthToken) {
		return fmt.Errorf("%w at %v (user %q): %w", ErrAuth, cfg.endpoints, cfg.username, err)
	}
	return fmt.Errorf("%w at %v: no answer within %v: %w", ErrUnreachable, cfg.endpoints, cfg.dialTimeout, err)
}

// connectError is dialError for a first connection, saying what a direct look at the
// endpoints found (see diagnose): a first connection that fails is most often a
// configuration mistake, which the user can fix once named.
func connectError(cfg config, err error) error {
	err = dialError(cfg, err)
	if errors.Is(err, ErrUnreachable) {
		if why := diagnose(cfg); why != "" {
			return fmt.Errorf("%w (%s)", err, why)
		}
	}
	return err
}

// newSession grants a lease within the request timeout and keeps it alive
// until the session is closed or the lease is lost (see session): Done fires
// between TTL minus one keepalive interval and the TTL after etcd stops
// answering.
func (c *conn) newSession(ctx context.Context) (*session, error) {
	rctx, cancel := c.request(ctx)
	defer cancel()
	s, err := c.grantSession(rctx)
	if err != nil {
		return nil, c.fail(rctx, "grant lease", err)
	}
	return s, nil
}

// renewSession replaces a session whose lease was lost. etcd has just gone
// unanswered for about a TTL, so it gets the dial timeout to answer again,
// as when connecting: a short outage (a leader election, a restarted etcd)
// passes within it, and an etcd that is gone is reported as unreachable
// without waiting a full request timeout more.
func (c *conn) renewSession(ctx context.Context) (*session, error) {
	rctx, cancel := context.WithTimeout(ctx, min(c.cfg.dialTimeout, c.cfg.requestTimeout))
	defer cancel()
	s, err := c.grantSession(rctx)
	switch {
	case err == nil:
		return s, nil
	case ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("rdzv: new lease: %w", dialError(c.cfg, err))
	}
	return nil, c.fail(rctx, "new lease", err)
}

// grantSession grants a lease under rctx and starts its keepalive (which
// outlives rctx).
func (c *conn) grantSession(rctx context.Context) (*session, error) {
	sent := time.Now()
	lease, err := c.cli.Grant(rctx, c.cfg.ttlSeconds())
	if err != nil {
		return nil, err
	}
	return keepAlive(c.cli, lease.ID, time.Duration(lease.TTL)*time.Second, sent), nil
}

// closeSession stops the keepalive and revokes the lease, so that peers see
// this participant's keys disappear at once instead of after the TTL. The
// revoke is only a courtesy: a lease already lost needs none, and when the
// client is not connected to etcd (it went away) or etcd does not answer
// within the dial timeout, the lease is left to expire within the TTL, so
// that a process stopping because etcd is gone is not held up by it.
func (c *conn) closeSession(s *session) error {
	if s == nil {
		return nil
	}
	select {
	case <-s.Done():
		return nil
	default:
	}
	s.Orphan()
	if st := c.cli.ActiveConnection().GetState(); st != connectivity.Ready {
		return fmt.Errorf("rdzv: revoke lease %x: not connected to etcd at %v (%v); it expires within %v: %w",
			s.Lease(), c.cfg.endpoints, st, c.cfg.ttl, ErrUnreachable)
	}
	timeout := min(c.cfg.requestTimeout, c.cfg.dialTimeout, c.cfg.ttl)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := c.cli.Revoke(ctx, s.Lease()); err != nil {
		return c.fail(ctx, fmt.Sprintf("revoke lease %x", s.Lease()), err)
	}
	return nil
}

// request derives the context of one etcd request.
func (c *conn) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.requestTimeout)
}

// bound derives from ctx a context that ends, with a cause wrapping
// ErrSessionLost, when sess is lost (or closed): the participant's keys are
// gone then, and when etcd itself went away a request would otherwise wait
// out the whole request timeout.
func bound(ctx context.Context, sess *session) (context.Context, context.CancelFunc) {
	bctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(sess.Ctx(), func() {
		cancel(fmt.Errorf("%w: lease %x", ErrSessionLost, sess.Lease()))
	})
	return bctx, func() { stop(); cancel(context.Canceled) }
}

// ctxError is why ctx ended: the lost session when bound ended it.
func ctxError(ctx context.Context) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrSessionLost) {
		return cause
	}
	return ctx.Err()
}

// fail wraps the error of a request made under ctx, marking timeouts with
// ErrTimeout and naming the endpoints.
func (c *conn) fail(ctx context.Context, op string, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrSessionLost) {
		return fmt.Errorf("rdzv: %s at %v: %w", op, c.cfg.endpoints, cause)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("rdzv: %s at %v: no answer: %w: %w", op, c.cfg.endpoints, ErrTimeout, err)
	}
	return fmt.Errorf("rdzv: %s at %v: %w", op, c.cfg.endpoints, err)
}

// waitChange blocks until an event on a key for which relevant is true is
// seen at a revision above rev, timer fires, or ctx, the session or the
// watch ends.
func (c *conn) waitChange(ctx context.Context, sess *session, rev int64,
	timer <-chan time.Time, relevant func(key string) bool) error {
	return c.watchUntil(ctx, sess, c.keys.root, true, rev, timer, func(ev *clientv3.Event) bool {
		return relevant(string(ev.Kv.Key))
	})
}

// watchUntil watches key (or the prefix) from rev+1 until done returns true
// for an event (nil), timer fires (nil), or ctx, the session or the watch
// ends (error). It opens its own watches and always cancels them.
//
// A watch fails when the member serving it loses its leader ("no leader": it
// may be the minority side of a partition) or its connection: the watch is
// then opened again from the revision after the last event seen, so nothing
// is missed, and most likely on another member (see openWatch). Only a
// compacted revision, the session or ctx ending, or the timer end the wait.
func (c *conn) watchUntil(ctx context.Context, sess *session, key string, prefix bool,
	rev int64, timer <-chan time.Time, done func(*clientv3.Event) bool) error {
	next, pause := rev+1, 100*time.Millisecond
	for {
		final, err := c.watchOnce(ctx, sess, key, prefix, &next, timer, done)
		if final {
			return err
		}
		select {
		case <-ctx.Done():
			return ctxError(ctx)
		case <-sess.Done():
			return fmt.Errorf("%w: lease %x", ErrSessionLost, sess.Lease())
		case <-timer:
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// watchSeq numbers the watches this process opens (see openWatch).
var watchSeq atomic.Uint64

// watchOnce runs one watch from *next, advancing *next past each event seen. It
// reports whether its result is final; a watch that failed in a way another
// member may not (see watchUntil) is not.
func (c *conn) watchOnce(ctx context.Context, sess *session, key string, prefix bool,
	next *int64, timer <-chan time.Time, done func(*clientv3.Event) bool) (final bool, err error) {
	// Each watch gets its own gRPC stream (the client shares one stream among
	// watches with the same metadata, and one stuck on a silent member would
	// take them all with it), and a new stream is balanced to the next member.
	wctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(clientv3.WithRequireLeader(ctx),
		"lrtrain-watch", strconv.FormatUint(watchSeq.Add(1), 10)))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRev(*next)}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	wch := c.cli.Watch(wctx, key, opts...)
	for {
		select {
		case <-ctx.Done():
			return true, ctxError(ctx)
		case <-sess.Done():
			return true, fmt.Errorf("%w: lease %x", ErrSessionLost, sess.Lease())
		case <-timer:
			return true, nil
		case wr, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return true, ctxError(ctx)
				}
				return false, fmt.Errorf("rdzv: watch %s closed", key)
			}
			if err := wr.Err(); err != nil {
				return errors.Is(err, rpctypes.ErrCompacted), fmt.Errorf("rdzv: watch %s: %w", key, err)
			}
			for _, ev := range wr.Events {
				*next = max(*next, ev.Kv.ModRevision+1)
				if done(ev) {
					return true, nil
				}
			}
		}
	}
}
