package testkit

import (
	"fmt"
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
