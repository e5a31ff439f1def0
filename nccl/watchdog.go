package nccl

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Pending is what the watchdog needs from an in-flight collective: the
// three calls that a GPU answers. (*Comm).Pending adapts a communicator and
// a stream; tests substitute a fake.
type Pending interface {
	// Query reports whether the work has finished (cudaStreamQuery).
	Query() (done bool, err error)
	// AsyncError is non-nil once the communicator has failed
	// (ncclCommGetAsyncError).
	AsyncError() error
	// Abort tears the communicator down so that nothing waits on it any
	// more (ncclCommAbort).
	Abort() error
}

// Pending returns the work enqueued so far on stream s for this
// communicator, for a Watchdog to wait on.
func (c *Comm) Pending(s Stream) Pending { return streamWork{c: c, s: s} }

type streamWork struct {
	c *Comm
	s Stream
}

func (w streamWork) Query() (bool, error) { return StreamQuery(w.s) }
func (w streamWork) AsyncError() error    { return w.c.AsyncError() }
func (w streamWork) Abort() error         { return w.c.Abort() }

// Watchdog bounds the wait for each collective. When the collective does
// not finish within Timeout, when the context is cancelled (the rendezvous
// cancels it when this rank's etcd session is lost), when the stream fails,
// or when the communicator reports an asynchronous error, it aborts the
// communicator and returns an *AbortError, so that no rank waits forever.
type Watchdog struct {
	// Rank names this rank in errors.
	Rank int
	// Timeout bounds one collective; 0 means no bound other than the context.
	Timeout time.Duration
	// MaxPoll caps the polling interval, which starts small and doubles
	// (default 2ms).
	MaxPoll time.Duration
}

const minPoll = 20 * time.Microsecond

// AbortError says which collective the watchdog aborted, on which rank,
// after how long, and why. It wraps ErrAborted, the reason (ErrTimeout,
// the context's cause, a stream error or the async Result) and the abort's
// own error, if any.
type AbortError struct {
	Op       string
	Rank     int
	Elapsed  time.Duration
	Reason   error
	AbortErr error
}

func (e *AbortError) Error() string {
	msg := fmt.Sprintf("nccl: %s on rank %d aborted after %v: %v",
		e.Op, e.Rank, e.Elapsed.Round(time.Millisecond), e.Reason)
	if e.AbortErr != nil {
		msg += fmt.Sprintf(" (abort failed: %v)", e.AbortErr)
	}
	return msg
}

// Unwrap exposes ErrAborted, the reason and the abort error to errors.Is/As.
func (e *AbortError) Unwrap() []error {
	errs := []error{ErrAborted, e.Reason}
	if e.AbortErr != nil {
		errs = append(errs, e.AbortErr)
	}
	return errs
}

// Wait polls p until it finishes (returning nil) or must be aborted
// (returning an *AbortError after calling p.Abort exactly once). op names
// the collective in the error. Work that is already complete is never
// aborted, even if ctx is already done.
func (w *Watchdog) Wait(ctx context.Context, op string, p Pending) error {
	start := time.Now()
	var expired <-chan time.Time
	if w.Timeout > 0 {
		t := time.NewTimer(w.Timeout)
		defer t.Stop()
		expired = t.C
	}
	maxPoll := w.MaxPoll
	if maxPoll <= 0 {
		maxPoll = 2 * time.Millisecond
	}
	poll := time.NewTimer(maxPoll) // re-armed before every select
	defer poll.Stop()
	delay := minPoll
	for {
		done, err := p.Query()
		if err != nil {
			return w.abort(op, start, p, fmt.Errorf("stream failed: %w", err))
		}
		if done {
			return nil
		}
		if err := p.AsyncError(); err != nil {
			return w.abort(op, start, p, fmt.Errorf("communicator failed: %w", err))
		}
		poll.Reset(delay)
		select {
		case <-ctx.Done():
			return w.abort(op, start, p, context.Cause(ctx))
		case <-expired:
			return w.abort(op, start, p, fmt.Errorf("%w (limit %v)", ErrTimeout, w.Timeout))
		case <-poll.C:
		}
		delay = min(2*delay, maxPoll)
	}
}

func (w *Watchdog) abort(op string, start time.Time, p Pending, reason error) error {
	abortErr := p.Abort()
	if errors.Is(abortErr, ErrClosed) {
		abortErr = nil // someone else aborted it first; the goal is met
	}
	return &AbortError{Op: op, Rank: w.Rank, Elapsed: time.Since(start), Reason: reason, AbortErr: abortErr}
}

// WaitStream waits for the work enqueued on stream s for communicator c,
// aborting c after timeout (0: no timeout) or when ctx is done. It polls
// cudaStreamQuery and ncclCommGetAsyncError.
func WaitStream(ctx context.Context, c *Comm, s Stream, timeout time.Duration) error {
	w := Watchdog{Rank: c.Rank(), Timeout: timeout}
	return w.Wait(ctx, "stream wait", c.Pending(s))
}
