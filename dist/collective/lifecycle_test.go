package collective_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// backend stands for a group's native side: a call blocks until it is interrupted (or
// released by the test), and the interrupts and releases are counted.
type backend struct {
	interrupts atomic.Int32
	releases   atomic.Int32
	released   atomic.Bool
	wake       chan struct{}
}

func newBackend() *backend { return &backend{wake: make(chan struct{}, 16)} }

func (b *backend) interrupt() {
	if b.released.Load() {
		panic("interrupt after release")
	}
	b.interrupts.Add(1)
	b.wake <- struct{}{}
}

func (b *backend) release() error {
	b.released.Store(true)
	b.releases.Add(1)
	return errors.New("released")
}

// call runs one collective through l the way a backend's do does: Begin, block until
// woken, End with a failure (a woken call was interrupted). started is closed once the
// call is in flight.
func call(ctx context.Context, l *collective.Lifecycle, b *backend, started chan<- struct{}) error {
	if err := l.Begin(ctx, "allreduce"); err != nil {
		return err
	}
	close(started)
	<-b.wake
	err := errors.New("connections reset")
	l.End(err)
	return err
}

func inFlight(t *testing.T, l *collective.Lifecycle, b *backend) <-chan error {
	t.Helper()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- call(context.Background(), l, b, started) }()
	<-started
	return done
}

func TestLifecycleAbortInterruptsAndBreaks(t *testing.T) {
	b := newBackend()
	l := collective.NewLifecycle("test", 1, 3, b.interrupt)
	done := inFlight(t, l, b)
	l.Abort("Abort called")
	if err := <-done; err == nil {
		t.Fatal("the call in flight was not failed")
	}
	if b.interrupts.Load() < 1 || l.Aborted().Err() == nil || l.AbortReason() != "Abort called" {
		t.Fatalf("interrupts %d, aborted ctx %v, reason %q", b.interrupts.Load(), l.Aborted().Err(), l.AbortReason())
	}
	cause := context.Cause(l.Aborted())
	if !errors.Is(cause, collective.ErrAborted) || !strings.Contains(cause.Error(), "rank 1 of 3: Abort called") {
		t.Errorf("cause %v", cause)
	}
	err := l.Begin(context.Background(), "barrier")
	if !errors.Is(err, collective.ErrBroken) || !errors.Is(err, collective.ErrAborted) ||
		!strings.Contains(err.Error(), "barrier on rank 1") {
		t.Errorf("later call: %v, want broken by the abort", err)
	}
}

func TestLifecycleFirstFailureIsKept(t *testing.T) {
	b := newBackend()
	l := collective.NewLifecycle("test", 0, 2, b.interrupt)
	first := errors.New("peer 1 lost")
	if err := l.Begin(context.Background(), "allgather"); err != nil {
		t.Fatal(err)
	}
	l.End(first)
	if b.interrupts.Load() != 1 {
		t.Errorf("a failure interrupted the backend %d times, want 1 (peers must see it)", b.interrupts.Load())
	}
	<-b.wake
	l.Abort("later")
	<-b.wake
	if l.Broken() != first || l.AbortReason() != "" {
		t.Errorf("broken %v, abort reason %q: the first failure must stay", l.Broken(), l.AbortReason())
	}
	if err := l.Begin(context.Background(), "broadcast"); !errors.Is(err, first) || !errors.Is(err, collective.ErrBroken) {
		t.Errorf("later call: %v", err)
	}
}

func TestLifecycleDoneContextDoesNotBreak(t *testing.T) {
	l := collective.NewLifecycle("test", 0, 2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Begin(ctx, "allreduce")
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "test: allreduce on rank 0") {
		t.Fatalf("Begin with a done context: %v", err)
	}
	if err := l.Begin(context.Background(), "allreduce"); err != nil {
		t.Fatalf("a refused call broke the group: %v", err)
	}
	l.End(nil)
	if l.Broken() != nil {
		t.Fatal(l.Broken())
	}
}

func TestLifecycleCloseAbortsInFlightThenReleasesOnce(t *testing.T) {
	b := newBackend()
	l := collective.NewLifecycle("test", 0, 2, b.interrupt)
	done := inFlight(t, l, b)
	err := l.Close(b.release)
	if err == nil || err.Error() != "released" {
		t.Fatalf("Close = %v, want the release's error", err)
	}
	if callErr := <-done; callErr == nil {
		t.Fatal("the call in flight was not failed")
	}
	if !strings.Contains(l.AbortReason(), "closed during allreduce") {
		t.Errorf("abort reason %q", l.AbortReason())
	}
	l.Abort("after close") // must not reach the released backend (it panics)
	if again := l.Close(b.release); again != err || b.releases.Load() != 1 {
		t.Errorf("second Close = %v, releases %d", again, b.releases.Load())
	}
	if err := l.Begin(context.Background(), "barrier"); !errors.Is(err, collective.ErrClosed) {
		t.Errorf("call after Close: %v", err)
	}
}

// An idle group closes without an abort (Gloo then closes its connections gracefully).
func TestLifecycleIdleCloseDoesNotAbort(t *testing.T) {
	b := newBackend()
	l := collective.NewLifecycle("test", 0, 2, b.interrupt)
	l.Close(b.release)
	if b.interrupts.Load() != 0 || l.Aborted().Err() != nil || l.Broken() != nil {
		t.Errorf("interrupts %d, aborted %v, broken %v", b.interrupts.Load(), l.Aborted().Err(), l.Broken())
	}
}

func TestLifecycleWatchAbortsOnSignal(t *testing.T) {
	b := newBackend()
	l := collective.NewLifecycle("test", 2, 4, b.interrupt)
	abortOn := make(chan struct{})
	l.Watch(abortOn)
	done := inFlight(t, l, b)
	close(abortOn)
	<-done
	<-l.Aborted().Done()
	if l.AbortReason() != "abort signal (AbortOn) fired" {
		t.Errorf("reason %q", l.AbortReason())
	}
}

// Calls run one at a time: however many goroutines call, at most one is between Begin
// and End.
func TestLifecycleSerialisesCalls(t *testing.T) {
	l := collective.NewLifecycle("test", 0, 1, nil)
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if err := l.Begin(context.Background(), "allreduce"); err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				runtime.Gosched()
				inside.Add(-1)
				l.End(nil)
			}
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d calls were in flight at once", most.Load())
	}
}
