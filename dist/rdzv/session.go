package rdzv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// session is a lease this process keeps alive, and the end of it: Done closes when the
// lease is lost (etcd says it is gone, or no keepalive sent in the last TTL has been
// answered) or when the session is orphaned.
//
// It replaces the etcd client's keepalive (concurrency.Session), whose cadence leaves
// little room on a loaded machine: that client sends the next keepalive a third of the
// TTL after an answer, looks every 0.5 s whether one is due, and gives up a TTL after
// the last answer, so with a 3 s TTL an answer 1.5 s late (a process starved of CPU for
// that long, on either side) ends the session while etcd is healthy. Here a keepalive
// goes out every keepaliveInterval(TTL) (0.5 s at 3 s) whether or not the previous ones
// were answered, so a stall of up to TTL minus one interval is survived (2.5 s at 3 s),
// and the lease counts as alive until the TTL after the sending of the newest answered
// keepalive: etcd renewed it when that request arrived, no earlier, so the session is
// never taken for alive when the lease may be gone.
type session struct {
	cli      *clientv3.Client
	id       clientv3.LeaseID
	interval time.Duration
	ctx      context.Context
	cancel   context.CancelCauseFunc
	answers  atomic.Int64 // keepalives answered (tests wait on it)

	mu    sync.Mutex
	until time.Time // the lease lives at least until then
}

// errOrphaned ends a session that stopped its keepalives on purpose.
var errOrphaned = errors.New("rdzv: session closed")

// keepaliveInterval is the time between keepalives for a lease of the given TTL: a
// sixth of it, between 0.25 s and 2 s.
func keepaliveInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/6, 250*time.Millisecond), 2*time.Second)
}

// keepAlive starts the keepalives of lease id, granted with ttl by a request sent at sent.
func keepAlive(cli *clientv3.Client, id clientv3.LeaseID, ttl time.Duration, sent time.Time) *session {
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &session{cli: cli, id: id, interval: keepaliveInterval(ttl), ctx: ctx, cancel: cancel, until: sent.Add(ttl)}
	go s.run()
	return s
}

// Lease is the session's lease.
func (s *session) Lease() clientv3.LeaseID { return s.id }

// Done is closed when the lease is lost or the session orphaned.
func (s *session) Done() <-chan struct{} { return s.ctx.Done() }

// Ctx is cancelled when Done closes; its cause says why.
func (s *session) Ctx() context.Context { return s.ctx }

// Orphan stops the keepalives without revoking the lease.
func (s *session) Orphan() { s.cancel(errOrphaned) }

func (s *session) aliveUntil() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.until
}

// run sends a keepalive every interval, each in its own goroutine so that one waiting
// for a stalled etcd does not hold back the next, until the lease is lost or orphaned.
func (s *session) run() {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		until := s.aliveUntil()
		if !time.Now().Before(until) {
			s.cancel(fmt.Errorf("%w: lease %x: no keepalive answered for the TTL", ErrSessionLost, s.id))
			return
		}
		go s.ping()
		deadline := time.NewTimer(time.Until(until))
		select {
		case <-s.ctx.Done():
			deadline.Stop()
			return
		case <-tick.C:
		case <-deadline.C:
		}
		deadline.Stop()
	}
}

// ping sends one keepalive and records its answer: the lease lives until the TTL etcd
// answers after the request was sent, or is gone when etcd no longer knows it.
func (s *session) ping() {
	sent := time.Now()
	ctx, cancel := context.WithDeadline(s.ctx, s.aliveUntil())
	defer cancel()
	resp, err := s.cli.KeepAliveOnce(ctx, s.id)
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		s.cancel(fmt.Errorf("%w: lease %x expired or was revoked", ErrSessionLost, s.id))
	case err == nil && resp.TTL > 0:
		s.answers.Add(1)
		s.mu.Lock()
		if u := sent.Add(time.Duration(resp.TTL) * time.Second); u.After(s.until) {
			s.until = u
		}
		s.mu.Unlock()
	}
}
