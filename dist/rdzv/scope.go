package rdzv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// scope holds what Publish, Lookup and Barrier need: one round, one
// participant (an agent or a worker) and its session.
type scope struct {
	*conn
	sess     *session
	round    int64
	group    string   // "nodes" or "ranks": barriers of agents and workers never meet
	self     string   // this participant's name in barriers
	expected []string // all participants, to name the missing ones

	mu   sync.Mutex
	gens map[string]int // uses of each barrier name so far
}

// alive fails once the participant's session is lost: its keys are gone, so
// the round cannot go on for it.
func (s *scope) alive(op string) error {
	select {
	case <-s.sess.Done():
		return fmt.Errorf("rdzv: %s in round %d: %w: lease %x", op, s.round, ErrSessionLost, s.sess.Lease())
	default:
		return nil
	}
}

func (s *scope) publish(ctx context.Context, key string, value []byte) error {
	if err := checkName("key", key); err != nil {
		return err
	}
	if err := s.alive("publish " + key); err != nil {
		return err
	}
	ctx, stop := bound(ctx, s.sess)
	defer stop()
	rctx, cancel := s.request(ctx)
	defer cancel()
	_, err := s.cli.Put(rctx, s.keys.kv(s.round, key), string(value), clientv3.WithLease(s.sess.Lease()))
	if err != nil {
		return s.fail(rctx, fmt.Sprintf("publish %q in round %d", key, s.round), err)
	}
	return nil
}

func (s *scope) lookup(ctx context.Context, key string) ([]byte, error) {
	if err := checkName("key", key); err != nil {
		return nil, err
	}
	if err := s.alive("lookup " + key); err != nil {
		return nil, err
	}
	ctx, stop := bound(ctx, s.sess)
	defer stop()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.waitTimeout)
	defer cancel()
	what := fmt.Sprintf("lookup %q in round %d", key, s.round)
	full := s.keys.kv(s.round, key)
	rctx, rcancel := s.request(ctx)
	resp, err := s.cli.Get(rctx, full)
	if err != nil {
		err = s.fail(rctx, what, err)
	}
	rcancel()
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) > 0 {
		return resp.Kvs[0].Value, nil
	}
	var value []byte
	err = s.watchUntil(ctx, s.sess, full, false, resp.Header.Revision, nil, func(ev *clientv3.Event) bool {
		if ev.Type == mvccpb.PUT {
			value = ev.Kv.Value
			return true
		}
		return false
	})
	if err != nil {
		return nil, waitError(what, "nobody published it", start, err)
	}
	return value, nil
}

func (s *scope) barrier(ctx context.Context, name string, n int) error {
	if err := checkName("barrier name", name); err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("%w: barrier %q for %d participants", ErrConfig, name, n)
	}
	if err := s.alive("barrier " + name); err != nil {
		return err
	}
	ctx, stop := bound(ctx, s.sess)
	defer stop()
	s.mu.Lock()
	gen := s.gens[name]
	s.gens[name] = gen + 1
	s.mu.Unlock()

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.waitTimeout)
	defer cancel()
	what := fmt.Sprintf("barrier %q (use %d) in round %d", name, gen, s.round)
	dir := s.keys.barrier(s.round, s.group, name, gen)
	rctx, rcancel := s.request(ctx)
	defer rcancel()
	put, err := s.cli.Put(rctx, dir+s.self, "", clientv3.WithLease(s.sess.Lease()))
	if err != nil {
		return s.fail(rctx, what, err)
	}
	// Read at the put's revision and watch from there: a participant that saw the
	// barrier complete and left (its key deleted) between our put and our read
	// would otherwise be missed, and we would wait for it until the timeout.
	putRev := put.Header.Revision
	resp, err := s.cli.Get(rctx, dir, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(putRev))
	if err != nil {
		return s.fail(rctx, what, err)
	}
	arrived := map[string]bool{}
	for _, kv := range resp.Kvs {
		arrived[strings.TrimPrefix(string(kv.Key), dir)] = true
	}
	if len(arrived) < n {
		err = s.watchUntil(ctx, s.sess, dir, true, putRev, nil, func(ev *clientv3.Event) bool {
			who := strings.TrimPrefix(string(ev.Kv.Key), dir)
			if ev.Type == mvccpb.PUT {
				arrived[who] = true
			} else {
				delete(arrived, who) // its lease ended: it is gone
			}
			return len(arrived) >= n
		})
		if err != nil {
			return waitError(what, s.missing(arrived, n), start, err)
		}
	}
	if gen > 0 {
		// Everyone has passed use gen-1 (they all entered use gen), so our
		// key of it is garbage now.
		dctx, dcancel := s.request(ctx)
		_, _ = s.cli.Delete(dctx, s.keys.barrier(s.round, s.group, name, gen-1)+s.self)
		dcancel()
	}
	return nil
}

// missing describes who has not entered a barrier of n participants.
func (s *scope) missing(arrived map[string]bool, n int) string {
	in := make([]string, 0, len(arrived))
	for who := range arrived {
		in = append(in, who)
	}
	sort.Strings(in)
	if n != len(s.expected) {
		return fmt.Sprintf("%d of %d arrived: %v", len(in), n, in)
	}
	var out []string
	for _, who := range s.expected {
		if !slices.Contains(in, who) {
			out = append(out, who)
		}
	}
	return fmt.Sprintf("%d of %d arrived, missing %v", len(in), n, out)
}

// waitError explains a failed wait; a deadline becomes ErrTimeout.
func waitError(what, state string, start time.Time, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("rdzv: %s: timed out after %v (%s): %w",
			what, time.Since(start).Round(time.Millisecond), state, ErrTimeout)
	}
	return fmt.Errorf("rdzv: %s (%s): %w", what, state, err)
}
