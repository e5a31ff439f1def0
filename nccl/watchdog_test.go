package nccl

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeWork stands for a collective in flight on a GPU: the one mock the
// package allows. It finishes after doneAfter queries or at doneAt, and can
// be told to fail.
type fakeWork struct {
	mu        sync.Mutex
	doneAfter int       // finish on this query (0: never, unless doneAt)
	doneAt    time.Time // finish once this time has passed (zero: unused)
	queryErr  error     // returned by Query
	asyncErr  error     // returned by AsyncError
	abortErr  error     // returned by Abort
	queries   int
	aborts    int
}

func (f *fakeWork) Query() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries++
	if f.queryErr != nil {
		return false, f.queryErr
	}
	if f.doneAfter > 0 && f.queries >= f.doneAfter {
		return true, nil
	}
	return !f.doneAt.IsZero() && time.Now().After(f.doneAt), nil
}

func (f *fakeWork) AsyncError() error { f.mu.Lock(); defer f.mu.Unlock(); return f.asyncErr }

func (f *fakeWork) Abort() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborts++
	return f.abortErr
}

func (f *fakeWork) abortCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.aborts }

// slack bounds how late the watchdog may react on a busy 2-core machine.
const slack = 300 * time.Millisecond

func TestWatchdogLetsTimelyCollectiveFinish(t *testing.T) {
	w := &Watchdog{Rank: 0, Timeout: 2 * time.Second}
	polled := &fakeWork{doneAfter: 5}
	if err := w.Wait(context.Background(), "allreduce", polled); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if polled.queries != 5 || polled.abortCount() != 0 {
		t.Errorf("queries %d aborts %d; want 5 queries, no abort", polled.queries, polled.aborts)
	}
	timed := &fakeWork{doneAt: time.Now().Add(30 * time.Millisecond)}
	if err := w.Wait(context.Background(), "allreduce", timed); err != nil || timed.abortCount() != 0 {
		t.Fatalf("a collective finishing after 30ms of a 2s budget: err %v, aborts %d", err, timed.aborts)
	}
}

func TestWatchdogAbortsOnTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	w := &Watchdog{Rank: 3, Timeout: timeout}
	hung := &fakeWork{}
	start := time.Now()
	err := w.Wait(context.Background(), "allreduce", hung)
	took := time.Since(start)

	var ae *AbortError
	if !errors.As(err, &ae) || !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrAborted) {
		t.Fatalf("Wait = %v, want an AbortError wrapping ErrTimeout and ErrAborted", err)
	}
	if hung.abortCount() != 1 {
		t.Errorf("aborts = %d, want 1", hung.aborts)
	}
	if took < timeout || took > timeout+slack {
		t.Errorf("returned after %v, want within [%v, %v]", took, timeout, timeout+slack)
	}
	if ae.Op != "allreduce" || ae.Rank != 3 || ae.Elapsed < timeout {
		t.Errorf("error fields %+v", ae)
	}
	for _, want := range []string{"allreduce on rank 3 aborted after", "timed out", "limit 50ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

func TestWatchdogAbortsWhenContextIsCancelled(t *testing.T) {
	errSessionLost := errors.New("etcd session lost")
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &Watchdog{Rank: 1} // no timeout: only the context can end the wait
	hung := &fakeWork{}
	const after = 40 * time.Millisecond
	time.AfterFunc(after, func() { cancel(errSessionLost) })
	start := time.Now()
	err := w.Wait(ctx, "broadcast", hung)
	took := time.Since(start)
	if !errors.Is(err, errSessionLost) || !errors.Is(err, ErrAborted) || errors.Is(err, ErrTimeout) {
		t.Fatalf("Wait = %v, want the session-lost cause, aborted, not a timeout", err)
	}
	if hung.abortCount() != 1 || took < after || took > after+slack {
		t.Errorf("aborts %d after %v; want 1 abort soon after %v", hung.aborts, took, after)
	}
	if !strings.Contains(err.Error(), "broadcast on rank 1") {
		t.Errorf("message %q does not name the collective and rank", err)
	}
}

func TestWatchdogNeverAbortsFinishedWork(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := &fakeWork{doneAfter: 1}
	if err := (&Watchdog{Timeout: time.Nanosecond}).Wait(ctx, "allgather", done); err != nil {
		t.Fatalf("finished work with a cancelled context: %v", err)
	}
	if done.abortCount() != 0 {
		t.Error("finished work was aborted")
	}
}

func TestWatchdogAbortsOnAsyncError(t *testing.T) {
	broken := &fakeWork{asyncErr: RemoteError}
	err := (&Watchdog{Rank: 2, Timeout: time.Minute}).Wait(context.Background(), "reducescatter", broken)
	if !errors.Is(err, RemoteError) || !errors.Is(err, ErrAborted) || broken.abortCount() != 1 {
		t.Fatalf("Wait = %v (aborts %d), want RemoteError and one abort", err, broken.aborts)
	}
	if !strings.Contains(err.Error(), "communicator failed") {
		t.Errorf("message %q", err)
	}
}

func TestWatchdogAbortsOnStreamError(t *testing.T) {
	failed := &fakeWork{queryErr: CudaError(700)}
	err := (&Watchdog{Timeout: time.Minute}).Wait(context.Background(), "allreduce", failed)
	var ce CudaError
	if !errors.As(err, &ce) || ce != 700 || failed.abortCount() != 1 {
		t.Fatalf("Wait = %v (aborts %d), want cudaError 700 and one abort", err, failed.aborts)
	}
}

func TestWatchdogReportsFailedAbortButNotDoubleAbort(t *testing.T) {
	stuck := &fakeWork{abortErr: SystemError}
	err := (&Watchdog{Timeout: time.Millisecond}).Wait(context.Background(), "allreduce", stuck)
	var ae *AbortError
	if !errors.As(err, &ae) || !errors.Is(ae.AbortErr, SystemError) || !strings.Contains(err.Error(), "abort failed") {
		t.Fatalf("Wait = %v, want the abort's own failure reported", err)
	}
	already := &fakeWork{abortErr: ErrClosed}
	err = (&Watchdog{Timeout: time.Millisecond}).Wait(context.Background(), "allreduce", already)
	if !errors.As(err, &ae) || ae.AbortErr != nil {
		t.Fatalf("Wait = %v: a communicator already closed is not an abort failure", err)
	}
}
