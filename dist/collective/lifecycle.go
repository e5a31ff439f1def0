package collective

import (
	"context"
	"fmt"
	"sync"
)

// Lifecycle is the state every backend's group keeps around its collectives, written
// once for all of them (Gloo, NCCL):
//
//   - one collective at a time: Begin waits for the previous call's End;
//   - the first failure breaks the group for good: later calls fail at once with
//     ErrBroken, which wraps that failure;
//   - Abort, from any goroutine, breaks the group, interrupts the backend's call in
//     flight and cancels the Aborted context; Watch does the same when a channel (the
//     rendezvous session's Done) closes;
//   - Close aborts a call in flight, waits for it to end, then releases the backend
//     exactly once; later calls fail with ErrClosed.
//
// The backend supplies an interrupt function (Gloo resets its connections) that is
// called on Abort and on every failed call, but never after the release began, so it may
// use what the release frees. A backend that waits through its own watchdog instead
// (NCCL) passes nil and watches Aborted.
type Lifecycle struct {
	prefix     string // of errors that are not collective sentinels: "collective", "ncclpg"
	rank, size int
	interrupt  func()
	done       chan struct{} // closed by Close; ends the Watch goroutine
	aborted    context.Context
	cancel     context.CancelCauseFunc

	opMu sync.Mutex // held from Begin to End, and by Close while releasing

	mu          sync.Mutex // guards the fields below
	inFlight    string     // the op running, "" when idle
	broken      error      // the first failure
	abortReason string     // why the group was aborted, if the first failure was an abort
	closed      bool
	released    bool // Close has started releasing the backend: no more interrupts
	once        sync.Once
	closeErr    error
}

// NewLifecycle is the lifecycle of rank of a group of size. prefix starts the errors of
// calls refused before they run (a context already done); interrupt may be nil.
func NewLifecycle(prefix string, rank, size int, interrupt func()) *Lifecycle {
	l := &Lifecycle{prefix: prefix, rank: rank, size: size, interrupt: interrupt, done: make(chan struct{})}
	l.aborted, l.cancel = context.WithCancelCause(context.Background())
	return l
}

// Watch aborts the group when abortOn closes (until Close). A nil channel is ignored.
func (l *Lifecycle) Watch(abortOn <-chan struct{}) {
	if abortOn == nil {
		return
	}
	go func() {
		select {
		case <-abortOn:
			l.Abort("abort signal (AbortOn) fired")
		case <-l.done:
		}
	}()
}

// Abort records reason as the group's failure (unless it already failed), interrupts the
// backend and cancels Aborted. It never blocks for long; safe from any goroutine.
func (l *Lifecycle) Abort(reason string) {
	err := fmt.Errorf("%w: rank %d of %d: %s", ErrAborted, l.rank, l.size, reason)
	l.mu.Lock()
	if l.broken == nil {
		l.broken, l.abortReason = err, reason
	}
	l.interruptLocked()
	l.mu.Unlock()
	l.cancel(err)
}

// Aborted is cancelled, with the abort's error as its cause, once Abort has been called.
func (l *Lifecycle) Aborted() context.Context { return l.aborted }

// AbortReason is Abort's reason when the group's first failure was an abort, else "".
func (l *Lifecycle) AbortReason() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.abortReason
}

// Broken is the group's first failure, nil while it is healthy.
func (l *Lifecycle) Broken() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.broken
}

// Begin marks op in flight: it fails at once when ctx is done, else waits for the call
// in flight, if any, and fails when the group is closed or broken. Every Begin that
// returns nil must be followed by End.
func (l *Lifecycle) Begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s on rank %d: %w", l.prefix, op, l.rank, err)
	}
	l.opMu.Lock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	switch {
	case l.closed:
		err = fmt.Errorf("%w: %s on rank %d", ErrClosed, op, l.rank)
	case l.broken != nil:
		err = fmt.Errorf("%w: %s on rank %d: %w", ErrBroken, op, l.rank, l.broken)
	}
	if err != nil {
		l.opMu.Unlock()
		return err
	}
	l.inFlight = op
	return nil
}

// End ends the call Begin started. A non-nil err is the call's failure: it breaks the
// group (the first failure is kept) and interrupts the backend, so that peers blocked on
// this rank fail now rather than at their timeout.
func (l *Lifecycle) End(err error) {
	l.mu.Lock()
	l.inFlight = ""
	if err != nil {
		if l.broken == nil {
			l.broken = err
		}
		l.interruptLocked()
	}
	l.mu.Unlock()
	l.opMu.Unlock()
}

// Close marks the group closed, aborts the call in flight if there is one, waits for it
// to end and runs release once (nil is allowed); later calls return release's error.
func (l *Lifecycle) Close(release func() error) error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		busy := l.inFlight
		l.mu.Unlock()
		close(l.done)
		if busy != "" {
			l.Abort("closed during " + busy)
		}
		l.opMu.Lock()
		defer l.opMu.Unlock()
		l.mu.Lock()
		l.released = true
		l.mu.Unlock()
		if release != nil {
			l.closeErr = release()
		}
	})
	return l.closeErr
}

func (l *Lifecycle) interruptLocked() {
	if l.interrupt != nil && !l.released {
		l.interrupt()
	}
}
