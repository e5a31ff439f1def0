package testkit

import (
	"fmt"
	"os"
	"runtime"
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
