package rdzv

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// snapshot is the state of one round read at one revision.
type snapshot struct {
	rev       int64
	round     int64             // the job's current round number
	frozen    *frozenRecord     // nil while round n is open
	frozenRev int64             // revision that created the frozen key
	nodes     map[string]Member // round n's node keys, by agent id
	joinRev   map[string]int64  // revision that created each node key
}

// snapshot reads the job's round number and round n's frozen record and
// node keys in one transaction, so they are consistent with each other.
func (c *conn) snapshot(ctx context.Context, n int64) (*snapshot, error) {
	rctx, cancel := c.request(ctx)
	defer cancel()
	k := c.keys
	resp, err := c.cli.Txn(rctx).Then(
		clientv3.OpGet(k.round()),
		clientv3.OpGet(k.frozen(n)),
		clientv3.OpGet(k.nodes(n), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, c.fail(rctx, fmt.Sprintf("read round %d", n), err)
	}
	s := &snapshot{rev: resp.Header.Revision, nodes: map[string]Member{}, joinRev: map[string]int64{}}
	roundKvs := resp.Responses[0].GetResponseRange().Kvs
	if len(roundKvs) == 0 {
		return nil, fmt.Errorf("%w: round key %s missing (job state deleted?)", ErrCorrupt, k.round())
	}
	if s.round, err = parseRound(roundKvs[0].Value); err != nil {
		return nil, err
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		if s.frozen, err = decodeFrozen(string(kvs[0].Key), kvs[0].Value); err != nil {
			return nil, err
		}
		s.frozenRev = kvs[0].CreateRevision
	}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		key := string(kv.Key)
		m, err := decodeMember(key, kv.Value)
		if err != nil {
			return nil, err
		}
		if id := strings.TrimPrefix(key, k.nodes(n)); id != m.ID {
			return nil, fmt.Errorf("%w: member record %s names agent %q", ErrCorrupt, key, m.ID)
		}
		s.nodes[m.ID] = m
		s.joinRev[m.ID] = kv.CreateRevision
	}
	return s, nil
}
