package rdzv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

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
	})
	if err != nil {
		return nil, dialError(cfg, err)
	}
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
		return nil, dialError(cfg, err)
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

// newSession grants a lease within the request timeout and keeps it alive
// until the session is closed or the lease is lost.
func (c *conn) newSession(ctx context.Context) (*concurrency.Session, error) {
	rctx, cancel := c.request(ctx)
	defer cancel()
	lease, err := c.cli.Grant(rctx, c.cfg.ttlSeconds())
	if err != nil {
		return nil, c.fail(rctx, "grant lease", err)
	}
	// The session's own context must outlive this call: keepalives run in it.
	s, err := concurrency.NewSession(c.cli, concurrency.WithLease(lease.ID),
		concurrency.WithTTL(int(c.cfg.ttlSeconds())))
	if err != nil {
		return nil, fmt.Errorf("rdzv: keep lease %x alive: %w", lease.ID, err)
	}
	return s, nil
}

// closeSession stops the keepalive and revokes the lease, so that peers see
// this participant's keys disappear at once instead of after the TTL. A lease
// already lost needs no revoking (and etcd may be gone).
func (c *conn) closeSession(s *concurrency.Session) error {
	if s == nil {
		return nil
	}
	select {
	case <-s.Done():
		return nil
	default:
	}
	s.Orphan()
	timeout := min(c.cfg.requestTimeout, c.cfg.ttl)
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

// fail wraps the error of a request made under ctx, marking timeouts with
// ErrTimeout and naming the endpoints.
func (c *conn) fail(ctx context.Context, op string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("rdzv: %s at %v: no answer: %w: %w", op, c.cfg.endpoints, ErrTimeout, err)
	}
	return fmt.Errorf("rdzv: %s at %v: %w", op, c.cfg.endpoints, err)
}

// waitChange blocks until an event on a key for which relevant is true is
// seen at a revision above rev, timer fires, or ctx, the session or the
// watch ends.
func (c *conn) waitChange(ctx context.Context, sess *concurrency.Session, rev int64,
	timer <-chan time.Time, relevant func(key string) bool) error {
	return c.watchUntil(ctx, sess, c.keys.root, true, rev, timer, func(ev *clientv3.Event) bool {
		return relevant(string(ev.Kv.Key))
	})
}

// watchUntil watches key (or the prefix) from rev+1 until done returns true
// for an event (nil), timer fires (nil), or ctx, the session or the watch
// ends (error). It opens its own watch and always cancels it.
func (c *conn) watchUntil(ctx context.Context, sess *concurrency.Session, key string, prefix bool,
	rev int64, timer <-chan time.Time, done func(*clientv3.Event) bool) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRev(rev + 1)}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	wch := c.cli.Watch(wctx, key, opts...)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.Done():
			return fmt.Errorf("%w: lease %x", ErrSessionLost, sess.Lease())
		case <-timer:
			return nil
		case wr, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("rdzv: watch %s closed", key)
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("rdzv: watch %s: %w", key, err)
			}
			for _, ev := range wr.Events {
				if done(ev) {
					return nil
				}
			}
		}
	}
}
