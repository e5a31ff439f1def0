package rdzv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Join takes part in the job's current round and returns once its membership
// is frozen with this agent in it.
//
// A round freezes, in one transaction that creates /rounds/<n>/frozen only if
// it does not exist yet, as soon as max nodes have joined, or when at least
// min have joined and the last-call timeout has passed since this agent saw
// the min-th join. An agent that arrives after the freeze leaves a "waiting"
// key (which the members' Watch reports when the round has room) and joins
// the next round. Calling Join again after a round ends first moves the job
// to the next round (a compare-and-swap on the round number), so the
// launcher just calls Join whenever Watch fires.
//
// If the session is lost while joining (etcd went away), Join starts over
// with a new session, which etcd must grant within the dial timeout.
func (a *Agent) Join(ctx context.Context) (*Round, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.joinTimeout)
	defer cancel()
	for {
		r, err := a.join(ctx)
		if err == nil || !errors.Is(err, ErrSessionLost) || ctx.Err() != nil {
			return r, err
		}
	}
}

func (a *Agent) join(ctx context.Context) (*Round, error) {
	sess, prev, err := a.session(ctx)
	if err != nil {
		return nil, err
	}
	ctx, stop := bound(ctx, sess)
	defer stop()
	n, err := a.startRound(ctx, prev)
	if err != nil {
		return nil, err
	}
	for {
		r, next, err := a.tryRound(ctx, sess, n)
		if err != nil {
			return nil, err
		}
		if r != nil {
			a.setRound(r, sess)
			return r, nil
		}
		n = next
	}
}

// startRound returns the round to join: the current one, or the next one if
// the current one is the round this agent was in before.
func (a *Agent) startRound(ctx context.Context, prev *Round) (int64, error) {
	rctx, cancel := a.request(ctx)
	defer cancel()
	k := a.keys.round()
	resp, err := a.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, formatRound(0))).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return 0, a.fail(rctx, "read round number", err)
	}
	n := int64(0)
	if !resp.Succeeded {
		if n, err = parseRound(resp.Responses[0].GetResponseRange().Kvs[0].Value); err != nil {
			return 0, err
		}
	}
	if prev == nil || n != prev.Number {
		return n, nil
	}
	n, err = a.advance(ctx, prev.Number)
	if err == nil {
		// Best effort: our key of the finished round only clutters it now.
		_, _ = a.cli.Delete(rctx, a.keys.node(prev.Number, a.cfg.agentID))
	}
	return n, err
}

// advance moves the job from round `from` to from+1 unless someone already
// did, and returns the round number now current.
func (a *Agent) advance(ctx context.Context, from int64) (int64, error) {
	rctx, cancel := a.request(ctx)
	defer cancel()
	k := a.keys.round()
	resp, err := a.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.Value(k), "=", formatRound(from))).
		Then(clientv3.OpPut(k, formatRound(from+1))).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return 0, a.fail(rctx, fmt.Sprintf("advance round %d", from), err)
	}
	if resp.Succeeded {
		return from + 1, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return 0, fmt.Errorf("%w: round key %s vanished", ErrCorrupt, k)
	}
	return parseRound(kvs[0].Value)
}

// tryRound drives this agent through round n until it is a member of the
// frozen round (returns it) or the job moves on (returns the next number).
func (a *Agent) tryRound(ctx context.Context, sess *session, n int64) (*Round, int64, error) {
	k := a.keys
	relevant := func(key string) bool {
		return key == k.round() || key == k.frozen(n) || strings.HasPrefix(key, k.nodes(n))
	}
	var minSince time.Time // when this agent first saw min nodes joined
	for {
		s, err := a.snapshot(ctx, n)
		if err != nil {
			return nil, 0, a.joinError(ctx, n, nil, err)
		}
		if s.round != n {
			return nil, s.round, nil
		}
		if s.frozen != nil {
			if r, ok := roundFor(a.keys.job(), s.frozen, s.frozenRev, a.cfg.agentID, int64(sess.Lease())); ok {
				return r, 0, nil
			}
			next, err := a.waitNextRound(ctx, sess, n, s)
			return nil, next, a.joinError(ctx, n, s, err)
		}
		own, registered := s.nodes[a.cfg.agentID]
		if !registered {
			if err := a.register(ctx, sess, n); err != nil {
				return nil, 0, a.joinError(ctx, n, s, err)
			}
			continue
		}
		var timer *time.Timer
		if own.Lease == int64(sess.Lease()) { // else: wait for an old incarnation's key to expire
			count := len(s.nodes)
			switch {
			case count >= a.cfg.maxNodes:
				if err := a.freeze(ctx, n, s); err != nil {
					return nil, 0, a.joinError(ctx, n, s, err)
				}
				continue
			case count >= a.cfg.minNodes:
				if minSince.IsZero() {
					minSince = time.Now()
				}
				left := a.cfg.lastCall - time.Since(minSince)
				if left <= 0 {
					if err := a.freeze(ctx, n, s); err != nil {
						return nil, 0, a.joinError(ctx, n, s, err)
					}
					continue
				}
				timer = time.NewTimer(left)
			default:
				minSince = time.Time{}
			}
		}
		err = a.waitChange(ctx, sess, s.rev, timerC(timer), relevant)
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return nil, 0, a.joinError(ctx, n, s, err)
		}
	}
}

// register adds this agent to round n under its lease, unless the round
// moved on, froze, or has a key with this agent's id already.
func (a *Agent) register(ctx context.Context, sess *session, n int64) error {
	rctx, cancel := a.request(ctx)
	defer cancel()
	rec, err := json.Marshal(Member{
		ID: a.cfg.agentID, Hostname: a.cfg.hostname, Addr: a.cfg.addr,
		Nproc: a.cfg.nproc, Lease: int64(sess.Lease()),
	})
	if err != nil {
		return err
	}
	k := a.keys
	node := k.node(n, a.cfg.agentID)
	_, err = a.cli.Txn(rctx).If(
		clientv3.Compare(clientv3.Value(k.round()), "=", formatRound(n)),
		clientv3.Compare(clientv3.CreateRevision(k.frozen(n)), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(node), "=", 0),
	).Then(clientv3.OpPut(node, string(rec), clientv3.WithLease(sess.Lease()))).Commit()
	if err != nil {
		return a.fail(rctx, fmt.Sprintf("register %s in round %d", a.cfg.agentID, n), err)
	}
	return nil
}

// freeze writes the frozen membership of round n from snapshot s, provided
// no node joined since s was read and nobody froze the round first. The
// caller re-reads the state either way.
func (a *Agent) freeze(ctx context.Context, n int64, s *snapshot) error {
	members := make([]Member, 0, len(s.nodes))
	for _, m := range s.nodes {
		members = append(members, m)
	}
	if len(members) > a.cfg.maxNodes {
		// More registered at once than the round takes: the first to join
		// are in, the others wait for the next round as spares.
		sort.Slice(members, func(i, j int) bool { return s.joinRev[members[i].ID] < s.joinRev[members[j].ID] })
		members = members[:a.cfg.maxNodes]
	}
	world := assignRanks(members)
	rec, err := json.Marshal(frozenRecord{
		Round: n, Members: members, WorldSize: world,
		MinNodes: a.cfg.minNodes, MaxNodes: a.cfg.maxNodes,
	})
	if err != nil {
		return err
	}
	rctx, cancel := a.request(ctx)
	defer cancel()
	k := a.keys
	_, err = a.cli.Txn(rctx).If(
		clientv3.Compare(clientv3.Value(k.round()), "=", formatRound(n)),
		clientv3.Compare(clientv3.CreateRevision(k.frozen(n)), "=", 0),
		clientv3.Compare(clientv3.ModRevision(k.nodes(n)), "<", s.rev+1).WithPrefix(),
	).Then(clientv3.OpPut(k.frozen(n), string(rec))).Commit()
	if err != nil {
		return a.fail(rctx, fmt.Sprintf("freeze round %d", n), err)
	}
	return nil
}

// waitNextRound is the late joiner's wait: it announces itself under
// /rounds/<n>/waiting/ and returns the next round number once round n ends.
// If a member of round n is gone, the round cannot go on, so it ends it
// itself; this also revives a job whose agents all died.
func (a *Agent) waitNextRound(ctx context.Context, sess *session, n int64, s *snapshot) (int64, error) {
	rec, err := json.Marshal(Member{ID: a.cfg.agentID, Hostname: a.cfg.hostname, Addr: a.cfg.addr,
		Nproc: a.cfg.nproc, Lease: int64(sess.Lease())})
	if err != nil {
		return 0, err
	}
	waiter := a.keys.waiter(n, a.cfg.agentID)
	rctx, cancel := a.request(ctx)
	_, err = a.cli.Put(rctx, waiter, string(rec), clientv3.WithLease(sess.Lease()))
	if err != nil {
		err = a.fail(rctx, fmt.Sprintf("announce %s waiting for round %d", a.cfg.agentID, n+1), err)
	}
	cancel()
	if err != nil {
		return 0, err
	}
	defer func() {
		select {
		case <-sess.Done():
			return // the key went with the lease
		default:
		}
		// Best effort, and no reason to wait long for an etcd that went away.
		timeout := min(a.cfg.requestTimeout, a.cfg.dialTimeout)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		_, _ = a.cli.Delete(dctx, waiter)
		cancel()
	}()
	k := a.keys
	relevant := func(key string) bool { return key == k.round() || strings.HasPrefix(key, k.nodes(n)) }
	for {
		if s.round != n {
			return s.round, nil
		}
		if lost := missingMembers(s.frozen.Members, s.nodes); len(lost) > 0 {
			return a.advance(ctx, n)
		}
		if err := a.waitChange(ctx, sess, s.rev, nil, relevant); err != nil {
			return 0, err
		}
		if s, err = a.snapshot(ctx, n); err != nil {
			return 0, err
		}
	}
}

// missingMembers lists the members whose node key (with their lease) is gone.
func missingMembers(members []Member, nodes map[string]Member) []string {
	var lost []string
	for _, m := range members {
		if cur, ok := nodes[m.ID]; !ok || cur.Lease != m.Lease {
			lost = append(lost, m.ID)
		}
	}
	return lost
}

// joinError turns a failed wait into an error that names the job, the round
// and who had joined.
func (a *Agent) joinError(ctx context.Context, n int64, s *snapshot, err error) error {
	if err == nil {
		return nil
	}
	state := ""
	if s != nil {
		ids := make([]string, 0, len(s.nodes))
		for id := range s.nodes {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		state = fmt.Sprintf(" (%d joined, min %d, max %d: %v)", len(ids), a.cfg.minNodes, a.cfg.maxNodes, ids)
	}
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrTimeout) {
		err = fmt.Errorf("no frozen round before the deadline (join timeout %v): %w", a.cfg.joinTimeout, ErrTimeout)
	}
	return fmt.Errorf("rdzv: agent %s joining round %d of job %s%s: %w",
		a.cfg.agentID, n, a.keys.job(), state, err)
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}
