package rdzv

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Worker is a training process's handle on the round its launcher joined:
// it publishes and looks up round-scoped values (the NCCL unique id, the CPU
// backend's address) and meets the other workers at barriers. It has its own
// session, whose Done tells the worker to abort its collectives.
//
// Workers are named "rank-<r>" in barriers, so a timed-out barrier of all
// worldSize workers names the missing ranks.
type Worker struct {
	*conn
	scope *scope
	once  sync.Once
	err   error
}

// OpenWorker connects worker `rank` of `worldSize` to round `round` of job.
// It fails with ErrRoundClosed if the job has already moved past that round.
func OpenWorker(ctx context.Context, job string, round int64, rank, worldSize int, opts ...Option) (*Worker, error) {
	if worldSize < 1 || rank < 0 || rank >= worldSize {
		return nil, fmt.Errorf("%w: rank %d of world size %d", ErrConfig, rank, worldSize)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	c, err := dial(ctx, job, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.checkRound(ctx, round); err != nil {
		c.cli.Close()
		return nil, err
	}
	sess, err := c.newSession(ctx)
	if err != nil {
		c.cli.Close()
		return nil, err
	}
	expected := make([]string, worldSize)
	for r := range expected {
		expected[r] = rankName(r)
	}
	return &Worker{conn: c, scope: &scope{
		conn: c, sess: sess, round: round, group: "ranks",
		self: rankName(rank), expected: expected, gens: map[string]int{},
	}}, nil
}

func rankName(rank int) string { return fmt.Sprintf("rank-%d", rank) }

// checkRound fails unless round is the job's current round.
func (c *conn) checkRound(ctx context.Context, round int64) error {
	rctx, cancel := c.request(ctx)
	defer cancel()
	resp, err := c.cli.Get(rctx, c.keys.round())
	if err != nil {
		return c.fail(rctx, "read round number", err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("%w: job %s has no round yet (want %d)", ErrRoundClosed, c.keys.job(), round)
	}
	cur, err := parseRound(resp.Kvs[0].Value)
	if err != nil {
		return err
	}
	if cur != round {
		return fmt.Errorf("%w: job %s is at round %d, not %d", ErrRoundClosed, c.keys.job(), cur, round)
	}
	return nil
}

// Publish stores value under key for the round (see Agent.Publish).
func (w *Worker) Publish(ctx context.Context, key string, value []byte) error {
	return w.scope.publish(ctx, key, value)
}

// Lookup waits for the value published under key in the round.
func (w *Worker) Lookup(ctx context.Context, key string) ([]byte, error) {
	return w.scope.lookup(ctx, key)
}

// Barrier returns once n workers of the round have entered barrier name.
func (w *Worker) Barrier(ctx context.Context, name string, n int) error {
	return w.scope.barrier(ctx, name, n)
}

// Done is closed when the worker's session is lost: its lease expired or was
// revoked, or etcd went unanswered for the TTL (see Agent.Done).
func (w *Worker) Done() <-chan struct{} { return w.scope.sess.Done() }

// Close revokes the worker's lease and closes its client. It waits at most
// the dial timeout for etcd to confirm, and not at all when the client is
// disconnected: the lease then expires within the TTL.
func (w *Worker) Close() error {
	w.once.Do(func() {
		w.err = errors.Join(w.closeSession(w.scope.sess), w.cli.Close())
	})
	return w.err
}
