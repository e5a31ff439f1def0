package collective

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A small TCP key-value store for groups formed without etcd (standalone
// runs, tests, benchmarks): one process runs a StoreServer, every rank
// dials it with DialStore. Each request is one connection carrying one
// frame: op byte ('P' publish, 'L' lookup), key and value as
// length-prefixed strings; the answer is a status byte and one
// length-prefixed string (the value, or the error).

const (
	opPublish  = 'P'
	opLookup   = 'L'
	maxFrame   = 1 << 20 // keys and values are addresses: bytes, not megabytes
	statusOK   = 0
	statusFail = 1
)

// StoreServer serves a TCPStore. Keep it running until every rank's gloo.New
// has returned (a Barrier on the new group tells rank 0 so).
type StoreServer struct {
	ln   net.Listener
	done chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	kv    map[string][]byte
	ready map[string]chan struct{} // closed when the key is published
	conns map[net.Conn]struct{}
}

// ServeStore listens on addr ("127.0.0.1:0" picks a free port) and serves
// in the background.
func ServeStore(addr string) (*StoreServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: listen on %s: %w", ErrStore, addr, err)
	}
	s := &StoreServer{ln: ln, done: make(chan struct{}), kv: map[string][]byte{},
		ready: map[string]chan struct{}{}, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the address the server listens on, for DialStore.
func (s *StoreServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server, fails the lookups still waiting and returns once
// every connection is closed.
func (s *StoreServer) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *StoreServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *StoreServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	op, err := r.ReadByte()
	if err != nil {
		return
	}
	key, err := readString(r)
	if err != nil {
		return
	}
	switch op {
	case opPublish:
		val, err := readString(r)
		if err != nil {
			return
		}
		s.publish(string(key), val)
		writeFrame(c, statusOK, nil)
	case opLookup:
		// The client sends nothing more; a read returning means it left.
		gone := make(chan struct{})
		go func() { io.Copy(io.Discard, r); close(gone) }()
		val, err := s.wait(string(key), gone)
		if err != nil {
			writeFrame(c, statusFail, []byte(err.Error()))
			return
		}
		writeFrame(c, statusOK, val)
	default:
		writeFrame(c, statusFail, fmt.Appendf(nil, "unknown op %q", op))
	}
}

func (s *StoreServer) publish(key string, val []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[key] = val
	if ch, ok := s.ready[key]; ok {
		close(ch)
		delete(s.ready, key)
	}
}

func (s *StoreServer) wait(key string, gone <-chan struct{}) ([]byte, error) {
	s.mu.Lock()
	if v, ok := s.kv[key]; ok {
		s.mu.Unlock()
		return v, nil
	}
	ch, ok := s.ready[key]
	if !ok {
		ch = make(chan struct{})
		s.ready[key] = ch
	}
	s.mu.Unlock()
	select {
	case <-ch:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.kv[key], nil
	case <-gone:
		return nil, errors.New("client left")
	case <-s.done:
		return nil, errors.New("store server closed")
	}
}

// TCPStore is a Store served by a StoreServer.
type TCPStore struct{ addr string }

// DialStore checks that the server at addr answers, retrying until timeout
// (the server may start a moment after the ranks), and returns the Store.
func DialStore(ctx context.Context, addr string, timeout time.Duration) (*TCPStore, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return &TCPStore{addr: addr}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: store %s unreachable after %s: %w",
				ErrStore, addr, time.Since(start).Round(time.Millisecond), err)
		case <-time.After(delay):
		}
	}
}

// Addr is the server's address.
func (t *TCPStore) Addr() string { return t.addr }

// Publish stores value under key.
func (t *TCPStore) Publish(ctx context.Context, key string, value []byte) error {
	_, err := t.request(ctx, opPublish, key, value)
	return err
}

// Lookup waits until key is published and returns its value.
func (t *TCPStore) Lookup(ctx context.Context, key string) ([]byte, error) {
	return t.request(ctx, opLookup, key, nil)
}

func (t *TCPStore) request(ctx context.Context, op byte, key string, value []byte) ([]byte, error) {
	verb := map[byte]string{opPublish: "publish", opLookup: "lookup"}[op]
	fail := func(err error) ([]byte, error) {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s %q at %s: %w", ErrStore, verb, key, t.addr, err)
	}
	if len(key) > maxFrame || len(value) > maxFrame {
		return fail(errors.New("key or value too large"))
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	frame := append([]byte{op}, lenPrefixed(key)...)
	if op == opPublish {
		frame = append(frame, lenPrefixed(string(value))...)
	}
	if _, err := c.Write(frame); err != nil {
		return fail(err)
	}
	r := bufio.NewReader(c)
	status, err := r.ReadByte()
	if err != nil {
		return fail(err)
	}
	body, err := readString(r)
	if err != nil {
		return fail(err)
	}
	if status != statusOK {
		return fail(fmt.Errorf("server: %s", body))
	}
	return body, nil
}

func lenPrefixed(s string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(s)))
	return append(b, s...)
}

func writeFrame(w io.Writer, status byte, body []byte) {
	w.Write(append([]byte{status}, lenPrefixed(string(body))...))
}

func readString(r *bufio.Reader) ([]byte, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}
