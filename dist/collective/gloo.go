package collective

import (
	"context"
	"fmt"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// Gloo is the CPU ProcessGroup: a full mesh of TCP connections made by
// Gloo (libgloo), one per peer.
type Gloo struct {
	cfg  Config
	done chan struct{} // closed by Close; ends the AbortOn watcher

	opMu sync.Mutex // held for the whole of a collective, and by Close while freeing

	mu       sync.Mutex // guards the fields below and nat's lifetime for abort
	nat      *native
	inFlight string // the op running, "" when idle
	broken   error  // the first failure; every later op fails with it
	aborted  string // why the group was aborted, "" if it was not
	closed   bool
	once     sync.Once
}

var _ ProcessGroup = (*Gloo)(nil)
var _ RawAllReducer = (*Gloo)(nil)

// NewGloo connects rank cfg.Rank to the other cfg.Size-1 ranks, which call
// NewGloo with the same Size, Name and Store at about the same time. It
// returns once every pair of ranks is connected, or fails within
// cfg.Timeout (or ctx's deadline) with an error naming what it waited for.
func NewGloo(ctx context.Context, cfg Config) (*Gloo, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		cfg.Store = &memStore{}
	}
	desc := fmt.Sprintf("connect rank %d of %d (%s, timeout %s)", cfg.Rank, cfg.Size, cfg.endpoint(), cfg.Timeout)
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	host, err := listenAddress(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, desc, err)
	}
	bridge := &storeBridge{store: cfg.Store, ctx: cctx, prefix: "gloo." + cfg.Name + "."}
	h := cgo.NewHandle(bridge)
	defer h.Delete()

	nat, st := nativeNew(cfg.Rank, cfg.Size, host, cfg.Interface, millis(cfg.Timeout), h)
	if st.code != codeOK {
		if sentinel, err := bridge.firstErr(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", sentinel, desc, err)
		}
		return nil, fmt.Errorf("%w: %s: %s", sentinelOf(st.code, ErrConfig), desc, st.msg)
	}
	g := &Gloo{cfg: cfg, nat: nat, done: make(chan struct{})}
	if cfg.AbortOn != nil {
		go g.watch(cfg.AbortOn)
	}
	return g, nil
}

// Rank is this process's rank.
func (g *Gloo) Rank() int { return g.cfg.Rank }

// Size is the number of ranks.
func (g *Gloo) Size() int { return g.cfg.Size }

// Timeout is the bound on each collective.
func (g *Gloo) Timeout() time.Duration { return g.cfg.Timeout }

// Abort fails the collective in flight (within milliseconds) and every later
// one; the peers' connections to this rank are reset, so their collectives
// fail too. Safe from any goroutine.
func (g *Gloo) Abort() { g.abort("Abort called") }

// Close releases the group. With a collective in flight it aborts it first;
// an idle group is closed gracefully, so data already sent still reaches
// the peers.
func (g *Gloo) Close() error {
	g.once.Do(func() {
		g.mu.Lock()
		g.closed = true
		busy := g.inFlight
		g.mu.Unlock()
		close(g.done)
		if busy != "" {
			g.abort("closed during " + busy)
		}
		g.opMu.Lock()
		defer g.opMu.Unlock()
		g.mu.Lock()
		defer g.mu.Unlock()
		g.nat.free()
		g.nat = nil
	})
	return nil
}

func (g *Gloo) watch(abortOn <-chan struct{}) {
	select {
	case <-abortOn:
		g.abort("abort signal (AbortOn) fired")
	case <-g.done:
	}
}

// abort records reason as the group's failure (unless it already failed)
// and fails every connection.
func (g *Gloo) abort(reason string) {
	g.breakWith(fmt.Errorf("%w: rank %d of %d: %s", ErrAborted, g.cfg.Rank, g.cfg.Size, reason), reason)
}

// breakWith records err as the group's first failure and fails every
// connection, so that peers blocked on this rank fail now rather than at
// their timeout. abortReason is "" for failures that are not aborts.
func (g *Gloo) breakWith(err error, abortReason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.broken == nil {
		g.broken, g.aborted = err, abortReason
	}
	if g.nat != nil {
		g.nat.abort()
	}
}

// call describes one collective for do.
type call struct {
	op    string
	count int // elements per rank
	dt    DType
	run   func(n *native, timeoutMs int64) nativeStatus
}

// do runs c: it checks the group, bounds the call by the timeout and ctx,
// aborts on ctx's cancellation, and breaks the group on any failure.
func (g *Gloo) do(ctx context.Context, c call) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("collective: %s on rank %d: %w", c.op, g.cfg.Rank, err)
	}
	g.opMu.Lock()
	defer g.opMu.Unlock()
	timeout := g.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return fmt.Errorf("collective: %s on rank %d: %w", c.op, g.cfg.Rank, context.DeadlineExceeded)
	}
	if err := g.begin(c.op); err != nil {
		return err
	}
	defer g.end()

	stop := context.AfterFunc(ctx, func() {
		g.abort(fmt.Sprintf("context of %s ended: %v", c.op, context.Cause(ctx)))
	})
	st := c.run(g.nat, millis(timeout))
	stop()
	if st.code == codeOK {
		return nil
	}
	return g.failure(ctx, c, timeout, st)
}

// failure builds the error of a failed collective and breaks the group.
func (g *Gloo) failure(ctx context.Context, c call, timeout time.Duration, st nativeStatus) error {
	desc := fmt.Sprintf("%s on rank %d of %d (%d %s, timeout %s)",
		c.op, g.cfg.Rank, g.cfg.Size, c.count, c.dt, timeout.Round(time.Millisecond))
	g.mu.Lock()
	aborted := g.aborted
	g.mu.Unlock()
	var err error
	if aborted != "" {
		// Gloo's message only says the connections were closed.
		err = fmt.Errorf("%w: %s: %s", ErrAborted, desc, aborted)
	} else {
		err = fmt.Errorf("%w: %s: %s", sentinelOf(st.code, ErrPeerLost), desc, st.msg)
		g.breakWith(err, "")
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

// begin marks op in flight, or says why the group cannot run it.
func (g *Gloo) begin(op string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return fmt.Errorf("%w: %s on rank %d", ErrClosed, op, g.cfg.Rank)
	case g.broken != nil:
		return fmt.Errorf("%w: %s on rank %d: %w", ErrBroken, op, g.cfg.Rank, g.broken)
	}
	g.inFlight = op
	return nil
}

func (g *Gloo) end() {
	g.mu.Lock()
	g.inFlight = ""
	g.mu.Unlock()
}

// sentinelOf maps a shim status code to a sentinel; def covers the rest.
func sentinelOf(code int, def error) error {
	switch code {
	case codeTimeout:
		return ErrTimeout
	case codeIO:
		return ErrPeerLost
	case codeInvalid:
		return ErrConfig
	}
	return def
}

// millis rounds d up to whole milliseconds, at least 1.
func millis(d time.Duration) int64 {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	return max(ms, 1)
}

// ptr is the address of s's first element, nil for an empty slice.
func ptr[T any](s []T) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(&s[0])
}
