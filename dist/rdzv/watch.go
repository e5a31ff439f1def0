package rdzv

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// EventKind says why a round ended (or why watching it did).
type EventKind int

const (
	// MemberLost: a member's node key was deleted (its lease expired or was
	// revoked, or it had already left when the round froze).
	MemberLost EventKind = iota + 1
	// NodeWaiting: a late node waits for the next round and this round has
	// fewer than its maximum number of nodes (elastic scale-up).
	NodeWaiting
	// RoundClosed: some agent moved the job to the next round.
	RoundClosed
	// SessionLost: this agent's own lease is gone (Err is ErrSessionLost).
	SessionLost
	// WatchFailed: etcd reported an error (Err says which).
	WatchFailed
	// Canceled: the context given to Watch ended (Err is its error).
	Canceled
)

func (k EventKind) String() string {
	switch k {
	case MemberLost:
		return "member lost"
	case NodeWaiting:
		return "node waiting"
	case RoundClosed:
		return "round closed"
	case SessionLost:
		return "session lost"
	case WatchFailed:
		return "watch failed"
	case Canceled:
		return "canceled"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is the first reason a round ended, as Watch reports it.
type Event struct {
	Kind  EventKind
	Round int64
	// Agent is the member that was lost or the node that is waiting.
	Agent string
	Err   error
}

func (e Event) String() string {
	s := fmt.Sprintf("rdzv: round %d: %s", e.Round, e.Kind)
	if e.Agent != "" {
		s += " (" + e.Agent + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Watch watches the current round and delivers exactly one Event on the
// returned channel, then closes it: the first of a member lost, a node
// waiting while the round has room, the round moved on by another agent,
// this agent's session lost, a watch error, or ctx ending. The launcher
// reacts to any of them the same way: stop the workers and Join again.
//
// When etcd itself goes away, the session is declared lost once the lease's
// TTL passes without a keepalive answer, so Watch fires within about one TTL.
func (a *Agent) Watch(ctx context.Context) <-chan Event {
	ch := make(chan Event, 1)
	a.mu.Lock()
	r, s := a.round, a.scope
	a.mu.Unlock()
	if r == nil {
		ch <- Event{Kind: WatchFailed, Err: ErrNoRound}
		close(ch)
		return ch
	}
	go func() {
		defer close(ch)
		ch <- a.watchRound(ctx, r, s.sess)
	}()
	return ch
}

func (a *Agent) watchRound(ctx context.Context, r *Round, sess *session) Event {
	ev := Event{Round: r.Number}
	fail := func(err error) Event {
		switch {
		case errors.Is(err, ErrSessionLost):
			ev.Kind = SessionLost
		case ctx.Err() != nil:
			ev.Kind = Canceled
		default:
			ev.Kind = WatchFailed
		}
		ev.Err = err
		return ev
	}
	// Members that left between the snapshot the round was frozen from and
	// the freeze itself are caught here; later departures by the watch.
	if lost, err := a.lostAtFreeze(ctx, r, sess); err != nil {
		return fail(err)
	} else if lost != "" {
		ev.Kind, ev.Agent = MemberLost, lost
		return ev
	}
	k := a.keys
	members := map[string]bool{}
	for _, m := range r.Members {
		members[k.node(r.Number, m.ID)] = true
	}
	err := a.watchUntil(ctx, sess, k.root, true, r.FrozenRevision, nil, func(e *clientv3.Event) bool {
		key := string(e.Kv.Key)
		switch {
		case key == k.round() && e.Type == mvccpb.PUT && string(e.Kv.Value) != formatRound(r.Number):
			ev.Kind = RoundClosed
		case members[key] && e.Type == mvccpb.DELETE:
			ev.Kind, ev.Agent = MemberLost, strings.TrimPrefix(key, k.nodes(r.Number))
		case strings.HasPrefix(key, k.waiting(r.Number)) && e.Type == mvccpb.PUT && r.NumNodes < r.MaxNodes:
			ev.Kind, ev.Agent = NodeWaiting, strings.TrimPrefix(key, k.waiting(r.Number))
		}
		return ev.Kind != 0
	})
	if err != nil {
		return fail(err)
	}
	return ev
}

// lostAtFreeze returns a member whose node key did not exist, with its
// lease, at the revision that froze the round ("" if all did).
func (a *Agent) lostAtFreeze(ctx context.Context, r *Round, sess *session) (string, error) {
	ctx, stop := bound(ctx, sess)
	defer stop()
	rctx, cancel := a.request(ctx)
	defer cancel()
	resp, err := a.cli.Get(rctx, a.keys.nodes(r.Number), clientv3.WithPrefix(), clientv3.WithRev(r.FrozenRevision))
	if err != nil {
		return "", a.fail(rctx, fmt.Sprintf("read members of round %d", r.Number), err)
	}
	nodes := map[string]Member{}
	for _, kv := range resp.Kvs {
		m, err := decodeMember(string(kv.Key), kv.Value)
		if err != nil {
			return "", err
		}
		nodes[m.ID] = m
	}
	if lost := missingMembers(r.Members, nodes); len(lost) > 0 {
		return lost[0], nil
	}
	return "", nil
}
