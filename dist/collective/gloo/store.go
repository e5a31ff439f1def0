package gloo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// storeBridge is what the shim's store callbacks reach: the Store, the
// context of New and the first error, which Gloo only sees as a failed
// call.
type storeBridge struct {
	store  collective.Store
	ctx    context.Context
	prefix string

	mu       sync.Mutex
	err      error
	sentinel error
}

func (b *storeBridge) set(key string, value []byte) error {
	err := b.store.Publish(b.ctx, b.prefix+key, value)
	return b.fail("publish", key, err)
}

func (b *storeBridge) get(key string) ([]byte, error) {
	v, err := b.store.Lookup(b.ctx, b.prefix+key)
	return v, b.fail("wait for", key, err)
}

// fail records the first error with the key translated into what Gloo
// waits for: "<r>" holds rank r's addresses, "rank_<r>" its hostname.
func (b *storeBridge) fail(verb, key string, err error) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf("key %q", b.prefix+key)
	if r, e := strconv.Atoi(strings.TrimPrefix(key, "rank_")); e == nil {
		what = fmt.Sprintf("rank %d's address (key %q)", r, b.prefix+key)
	}
	sentinel := collective.ErrStore
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(b.ctx.Err(), context.DeadlineExceeded):
		sentinel = collective.ErrTimeout
	case b.ctx.Err() != nil:
		sentinel = collective.ErrAborted
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = fmt.Errorf("%s %s: %w", verb, what, err)
		b.sentinel = sentinel
	}
	return b.err
}

// firstErr is the first failure and the sentinel that classifies it.
func (b *storeBridge) firstErr() (sentinel, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sentinel, b.err
}

// memStore is the store of a single-rank group, which only talks to itself.
type memStore struct {
	mu sync.Mutex
	kv map[string][]byte
}

func (m *memStore) Publish(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kv == nil {
		m.kv = map[string][]byte{}
	}
	m.kv[key] = append([]byte(nil), value...)
	return nil
}

func (m *memStore) Lookup(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kv[key]
	if !ok {
		return nil, fmt.Errorf("%w: key %q not published (single-rank store)", collective.ErrStore, key)
	}
	return v, nil
}
