package testkit

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// pollEvery is how often WaitFor checks its condition: often enough that a wait
// ends within a few hundredths of a second of its event, rarely enough that the
// polling costs nothing next to the processes under test.
const pollEvery = 20 * time.Millisecond

// WaitFor polls cond until it holds and fails the test (t.Fatalf, naming what)
// when it still does not hold after limit. The limit is only a failure bound: a
// test that passes never waits for it, so it can be generous.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Poll(limit, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Poll polls cond until it holds, and returns an error when it still does not hold
// after limit; for code that runs outside a test's goroutine, or in a child
// process, where t.Fatalf may not be called.
func Poll(limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", limit)
		}
		time.Sleep(pollEvery) // the poll interval; the event, not the time, ends the wait
	}
	return nil
}

// ShortReason is the message of a test's skip under -short: what makes the test
// long (multi-process, etcd, e2e, a long numeric comparison) and that it runs
// without -short.
func ShortReason(what string) string {
	return what + "; runs without -short"
}

// Within runs f on a goroutine and returns how long it took and its error, failing
// the test (t.Fatalf, naming what) when f has not returned after limit: for calls
// that must end by themselves (a timeout, an abort) and would otherwise hang the test.
// Like WaitFor's, the limit only fails a test; a call that ends never waits for it.
func Within(t testing.TB, limit time.Duration, what string, f func() error) (time.Duration, error) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-timer.C:
		t.Fatalf("%s still running after %v", what, limit)
		return 0, nil
	}
}

// NoGoroutinesLeft fails the test (with every goroutine's stack) when, limit after
// the call, more than before+slack goroutines still run: before is
// runtime.NumGoroutine() at the test's start, slack the few process-wide goroutines a
// library starts once (gRPC, etcd). It returns as soon as the count is back.
func NoGoroutinesLeft(t testing.TB, before, slack int, limit time.Duration) {
	t.Helper()
	if Poll(limit, func() bool { return runtime.NumGoroutine() <= before+slack }) != nil {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines: %d before, %d after %v\n%s", before, runtime.NumGoroutine(), limit, buf[:n])
	}
}

// DirNames is the names of dir's entries, sorted (os.ReadDir's order), failing the test
// when dir cannot be read.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("testkit: list %s: %v", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// RefusingAddr is a loopback TCP address ("127.0.0.1:port") at which nothing listens
// and nothing else can, for as long as the test runs: a connection to it is refused
// at once (ECONNREFUSED), the case of a peer, a store or an etcd endpoint that is down.
//
// It is held by a socket that is bound but never listens. The usual way, a listener
// on port 0 closed again right away, leaves the port free, and a process on the same
// machine (another package's test binary under go test ./..., an outgoing connection
// given that port as its local one) may take it before the test dials, which then
// reaches something instead of being refused: a flaky test. A bound socket keeps the
// port (the kernel gives it neither to another bind nor to a connect's local port)
// and is closed when the test ends.
func RefusingAddr(t testing.TB) string {
	t.Helper()
	addr, closeFn, err := refusingAddr()
	if err != nil {
		t.Fatalf("testkit: reserve a refusing loopback port: %v", err)
	}
	t.Cleanup(closeFn)
	return addr
}

// refusingAddr binds a TCP socket to 127.0.0.1 on a port the kernel picks, without
// listening, and returns its address and what closes it.
func refusingAddr() (string, func(), error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("socket: %w", err)
	}
	closeFn := func() { _ = syscall.Close(fd) }
	// No SO_REUSEADDR: with it, another socket without listening could share the port.
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		closeFn()
		return "", nil, fmt.Errorf("bind 127.0.0.1:0: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		closeFn()
		return "", nil, fmt.Errorf("getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		closeFn()
		return "", nil, fmt.Errorf("getsockname: %T, want an IPv4 address", sa)
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(in4.Port)), closeFn, nil
}
