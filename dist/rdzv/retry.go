package rdzv

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An etcd cluster stays available while a majority of its members is, but one client
// request can still fail on the member it happened to reach: that member may be cut
// off (the request waits in silence), have lost its leader ("no leader"), or see the
// leader change under a read ("leader changed"). The client spreads requests over the
// members round-robin, so the same request sent again usually reaches another member.
// retrier does that: each attempt gets a share of the caller's deadline (first
// attemptTimeout, doubling), and an attempt that fails for one of these reasons is
// sent again after a short pause until one succeeds, another error comes back, or the
// caller's deadline passes (then the last attempt's error is returned).
//
// Sending again is safe for every request this package makes: puts and deletes write
// the same value twice, and every transaction is written so that its second
// application finds its condition false and reads what the first one wrote (see
// startRound, advance, register, freeze).
type retrier struct {
	attemptTimeout time.Duration
}

// attemptTimeoutFor is the first attempt's share for a lease of the given TTL: a third
// of it, between 0.5 s and 2 s. A member that answers at all answers in milliseconds,
// and an attempt stuck on an unreachable one must end well within the TTL so that the
// retry still counts for the lease.
func attemptTimeoutFor(ttl time.Duration) time.Duration {
	return min(max(ttl/3, 500*time.Millisecond), 2*time.Second)
}

// transient reports whether err may be a problem of the member the request reached
// rather than of the request or the cluster.
func transient(err error) bool {
	switch {
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrLeaderChanged),
		errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost), errors.Is(err, rpctypes.ErrTimeoutWaitAppliedIndex),
		errors.Is(err, rpctypes.ErrTooManyRequests), errors.Is(err, rpctypes.ErrNotCapable):
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// do runs op until it succeeds or fails for good (see retrier).
func do[T any](r retrier, ctx context.Context, op func(context.Context) (T, error)) (T, error) {
	timeout, pause := r.attemptTimeout, 50*time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, timeout)
		v, err := op(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !transient(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(pause):
		}
		timeout, pause = 2*timeout, min(2*pause, 500*time.Millisecond)
	}
}

// retryKV sends every key-value request through a retrier.
type retryKV struct {
	clientv3.KV
	r retrier
}

func (k retryKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	return do(k.r, ctx, func(ctx context.Context) (*clientv3.PutResponse, error) { return k.KV.Put(ctx, key, val, opts...) })
}

func (k retryKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return do(k.r, ctx, func(ctx context.Context) (*clientv3.GetResponse, error) { return k.KV.Get(ctx, key, opts...) })
}

func (k retryKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	return do(k.r, ctx, func(ctx context.Context) (*clientv3.DeleteResponse, error) { return k.KV.Delete(ctx, key, opts...) })
}

func (k retryKV) Do(ctx context.Context, op clientv3.Op) (clientv3.OpResponse, error) {
	return do(k.r, ctx, func(ctx context.Context) (clientv3.OpResponse, error) { return k.KV.Do(ctx, op) })
}

func (k retryKV) Txn(ctx context.Context) clientv3.Txn { return &retryTxn{kv: k, ctx: ctx} }

// retryTxn records a transaction and commits it through the retrier, building it
// anew for each attempt.
type retryTxn struct {
	kv               retryKV
	ctx              context.Context
	cmps             []clientv3.Cmp
	thenOps, elseOps []clientv3.Op
}

func (t *retryTxn) If(cs ...clientv3.Cmp) clientv3.Txn { t.cmps = append(t.cmps, cs...); return t }
func (t *retryTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.thenOps = append(t.thenOps, ops...)
	return t
}
func (t *retryTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.elseOps = append(t.elseOps, ops...)
	return t
}

func (t *retryTxn) Commit() (*clientv3.TxnResponse, error) {
	return do(t.kv.r, t.ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return t.kv.KV.Txn(ctx).If(t.cmps...).Then(t.thenOps...).Else(t.elseOps...).Commit()
	})
}

// retryLease sends lease grants and revocations through a retrier. A grant whose
// answer was lost leaves an unused lease behind, which expires after its TTL.
type retryLease struct {
	clientv3.Lease
	r retrier
}

func (l retryLease) Grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error) {
	return do(l.r, ctx, func(ctx context.Context) (*clientv3.LeaseGrantResponse, error) { return l.Lease.Grant(ctx, ttl) })
}

func (l retryLease) Revoke(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error) {
	return do(l.r, ctx, func(ctx context.Context) (*clientv3.LeaseRevokeResponse, error) { return l.Lease.Revoke(ctx, id) })
}

// withRetries makes cli's key-value and lease requests retry (see retrier).
func withRetries(cli *clientv3.Client, ttl time.Duration) {
	r := retrier{attemptTimeout: attemptTimeoutFor(ttl)}
	cli.KV = retryKV{KV: cli.KV, r: r}
	cli.Lease = retryLease{Lease: cli.Lease, r: r}
}
