// Package rdzv is lrtrain's rendezvous: node agents meet through etcd's v3
// API (sessions, leases, transactions, watches), agree on a round's
// membership and ranks, publish round-scoped values for the collectives and
// meet at barriers. torchrun's etcd backends need etcd's removed v2 API;
// this package does not.
//
// # Rounds
//
// Each node's launcher creates an Agent and calls Join. Every agent holds a
// session (a lease with its own keepalive, WithTTL) and registers under
// it in the job's current round; the round freezes in one transaction when
// max nodes have joined, or when at least min have joined and the last call
// (WithLastCall) has passed. Node ranks follow the sorted agent ids; global
// ranks are node-major with per-node nproc (see Round). All keys live under
// /lrtrain/<job>/ (see keys.go for the layout).
//
// The launcher then starts its workers and waits on Watch, which fires once,
// for the first of: a member lost (its key deleted when its lease expired or
// was revoked), a late node waiting while the round has room (scale-up), the
// round closed by another agent, this agent's session lost, or a watch
// error. On any of them the launcher stops its workers and calls Join again;
// Join moves the job to the next round with a compare-and-swap, so all
// agents follow. Counting restarts is the launcher's business.
//
//	a, err := rdzv.NewAgent(ctx, job, rdzv.WithEndpoints(ep), rdzv.WithNodes(2, 4), rdzv.WithNproc(8))
//	defer a.Close()
//	for {
//		round, err := a.Join(ctx)
//		// start round.LocalWorldSize() workers with ranks round.GlobalRank(local)
//		ev := <-a.Watch(ctx)
//		// stop the workers; give up after max restarts
//	}
//
// # Values and barriers
//
// Publish and Lookup store and fetch round-scoped values (an NCCL unique id,
// the CPU backend's address); Lookup waits with a watch. Barrier meets n
// participants with keys and a watch, no polling. Workers do the same with a
// Worker (OpenWorker), which has its own session.
//
// # Failures
//
// Every wait has a timeout and fails with an error wrapping ErrTimeout that
// names what was waited for: the barrier, the round and the missing members,
// or who had joined. An unreachable etcd fails NewAgent within the dial
// timeout with ErrUnreachable and the endpoints. If etcd goes away,
// keepalives (one every TTL/6, 0.25 to 2 s, sent whether or not the previous
// ones were answered) go unanswered and the lease is declared lost once the
// TTL has passed since the sending of the newest answered one (between TTL
// minus one interval and the TTL after etcd stopped; a stall of etcd or of
// this process shorter than that costs nothing): Watch fires SessionLost, waits fail with
// ErrSessionLost and a Worker's Done closes. The next Join gives etcd the
// dial timeout to answer a new lease grant (the client retries the
// connection every second, so an etcd restarted or re-elected by then is
// found) and otherwise fails with ErrUnreachable. Close revokes the lease so
// that peers notice at once, but does not wait for an unreachable etcd: the
// lease then expires by itself.
//
// # An etcd cluster losing a member
//
// A cluster of three or five members stays available while a majority is up,
// but one request can still land on the member that is cut off, has no
// leader, or saw the leader change. Every key-value and lease request is
// therefore sent again on such a failure (a member without a leader, a
// leader change, a request unanswered within its share of the deadline),
// each attempt with twice the time of the one before, until one succeeds or
// the caller's deadline passes; the client balances requests round-robin, so
// the next attempt goes to another member. Every write this package makes is
// safe to apply twice (puts write the same value; each transaction, applied a
// second time, finds its condition false and reads what the first wrote).
// Watches require a leader and each has its own stream: one that fails
// ("no leader", or its member's connection dropped) is opened again from the
// revision after the last event it delivered, so nothing is missed, and only
// the session, the caller's context or a compacted revision end a wait. The
// client pings each connection every 10 s and drops it after 3 s of silence,
// so a watch on a member that went silent moves to another within 13 s.
// dist/multinode tests these against a real three-member cluster over TLS:
// a follower and the leader each cut off for longer than the TTL, training
// unaffected. A first connection that fails says why when a direct look can
// tell (a server that wants TLS, a refused or unknown certificate, nothing
// listening).
package rdzv
