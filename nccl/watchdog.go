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

// Watchdog bounds each collective: Run its enqueue and wait together, Wait
// the wait alone. When the collective does not finish within Timeout, when
// the context is cancelled (the rendezvous cancels it when this rank's etcd
// session is lost), when the stream fails, or when the communicator reports
// an asynchronous error, it aborts the communicator and returns an
// *AbortError, so that no rank waits forever.
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
	return w.wait(ctx, op, p, start, w.deadline(start))
}

// Run enqueues a collective and waits for it, all under one deadline
// (Timeout from the start of Run) and ctx. enqueue runs on the calling
// goroutine, whose OS thread has the device current. A separate goroutine
// watches the deadline and ctx while enqueue runs: a blocking NCCL call
// that does not return in time (a peer died before the collective could
// launch) is ended by calling p.Abort from that goroutine, as PyTorch's
// watchdog thread does, and Run returns an *AbortError as soon as the call
// returns. When enqueue answers ncclInProgress (a non-blocking
// communicator) and p is a Settler, Run polls until the call settles, then
// waits for the stream as Wait does. So Run ends within Timeout, plus one
// poll interval (MaxPoll), plus the time NCCL takes to return from a call
// once its communicator is aborted. An enqueue that fails outright returns
// its error unchanged, without an abort.
func (w *Watchdog) Run(ctx context.Context, op string, p Pending, enqueue func() error) error {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nccl: %s on rank %d not started: %w", op, w.Rank, context.Cause(ctx))
	}
	deadline := w.deadline(start)
	type fired struct{ reason, abortErr error }
	enqueued := make(chan struct{})
	result := make(chan *fired, 1)
	go func() {
		expired, stop := after(deadline)
		defer stop()
		var f *fired
		select {
		case <-enqueued:
		case <-ctx.Done():
			f = &fired{reason: context.Cause(ctx)}
		case <-expired:
			f = &fired{reason: w.timeoutErr()}
		}
		if f != nil {
			f.abortErr = p.Abort()
		}
		result <- f
	}()
	err := enqueue()
	close(enqueued)
	if f := <-result; f != nil {
		reason := fmt.Errorf("%w; aborted while enqueueing", f.reason)
		if err != nil {
			reason = fmt.Errorf("%w; aborted while enqueueing, which returned: %v", f.reason, err)
		}
		return w.abortError(op, start, reason, f.abortErr)
	}
	if err != nil && !errors.Is(err, InProgress) {
		return err
	}
	if err != nil {
		if err := w.settle(ctx, op, p, start, deadline); err != nil {
			return err
		}
	}
	return w.wait(ctx, op, p, start, deadline)
}

// settle polls a Settler until the call that answered ncclInProgress has
// completed, aborting on the deadline, ctx's end or a failure.
func (w *Watchdog) settle(ctx context.Context, op string, p Pending, start, deadline time.Time) error {
	s, ok := p.(Settler)
	if !ok {
		return nil
	}
	return w.poll(ctx, op, p, start, deadline, func() (bool, error) {
		done, err := s.Settled()
		if err != nil {
			return false, fmt.Errorf("communicator failed: %w", err)
		}
		return done, nil
	})
}

func (w *Watchdog) wait(ctx context.Context, op string, p Pending, start, deadline time.Time) error {
	return w.poll(ctx, op, p, start, deadline, func() (bool, error) {
		done, err := p.Query()
		if err != nil {
			return false, fmt.Errorf("stream failed: %w", err)
		}
		if done {
			return true, nil
		}
		if err := p.AsyncError(); err != nil {
			return false, fmt.Errorf("communicator failed: %w", err)
		}
		return false, nil
	})
}

// poll calls check, with a growing interval, until it reports done (nil) or
// fails, the deadline passes or ctx ends (an *AbortError after p.Abort).
func (w *Watchdog) poll(ctx context.Context, op string, p Pending, start, deadline time.Time,
	check func() (bool, error)) error {
	expired, stop := after(deadline)
	defer stop()
	maxPoll := w.MaxPoll
	if maxPoll <= 0 {
		maxPoll = 2 * time.Millisecond
	}
	tick := time.NewTimer(maxPoll) // re-armed before every select
	defer tick.Stop()
	delay := minPoll
	for {
		done, err := check()
		if err != nil {
			return w.abortError(op, start, err, p.Abort())
		}
		if done {
			return nil
		}
		tick.Reset(delay)
		select {
		case <-ctx.Done():
			return w.abortError(op, start, context.Cause(ctx), p.Abort())
		case <-expired:
			return w.abortError(op, start, w.timeoutErr(), p.Abort())
		case <-tick.C:
		}
		delay = min(2*delay, maxPoll)
	}
}

func (w *Watchdog) timeoutErr() error { return fmt.Errorf("%w (limit %v)", ErrTimeout, w.Timeout) }

// deadline is start + Timeout, or the zero time when there is no timeout.
func (w *Watchdog) deadline(start time.Time) time.Time {
	if w.Timeout <= 0 {
		return time.Time{}
	}
	return start.Add(w.Timeout)
}

// after fires at deadline; a nil channel (never) for the zero time.
func after(deadline time.Time) (<-chan time.Time, func()) {
	if deadline.IsZero() {
		return nil, func() {}
	}
	t := time.NewTimer(time.Until(deadline))
	return t.C, func() { t.Stop() }
}

func (w *Watchdog) abortError(op string, start time.Time, reason, abortErr error) error {
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
