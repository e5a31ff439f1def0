package collective

import "context"

// Store is the key-value store through which the ranks of a group exchange
// their addresses while they connect. Lookup waits until the key is
// published (or ctx ends). *rdzv.Worker implements it with etcd; TCPStore
// implements it with a small server run by one process.
type Store interface {
	Publish(ctx context.Context, key string, value []byte) error
	Lookup(ctx context.Context, key string) ([]byte, error)
}
