package gloo

import (
	"context"
	"fmt"
	"runtime/cgo"
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// DefaultSharedMemory is the Config.SharedMemory lrtrain's workers ask for:
// each rank's window, in bytes. 4 MiB moves large collectives as fast as 16
// MiB does (BenchmarkBlockCollectives), and the files of 4 ranks with two
// groups each fit a container's default 64 MiB /dev/shm.
const DefaultSharedMemory = 4 << 20

// minWindow is the smallest Config.SharedMemory New accepts.
const minWindow = 4096

// Group is the CPU process group: a full mesh of TCP connections made by
// Gloo (libgloo), one per peer.
type Group struct {
	cfg  collective.Config
	life *collective.Lifecycle
	nat  *native // freed by Close; the lifecycle never interrupts it after that
	shm  *shm    // the shared-memory transport; nil when off or not possible
	// noShm says why a group asked for shared memory runs on TCP alone.
	noShm string
}

// Group has every optional collective.
var (
	_ collective.Group           = (*Group)(nil)
	_ collective.AllReducer      = (*Group)(nil)
	_ collective.ReduceScatterer = (*Group)(nil)
	_ collective.Barrierer       = (*Group)(nil)
	_ collective.RawAllReducer   = (*Group)(nil)
	_ collective.RawAllGatherer  = (*Group)(nil)
)

// New connects rank cfg.Rank to the other cfg.Size-1 ranks, which call
// New with the same Size, Name and Store at about the same time. It
// returns once every pair of ranks is connected, or fails within
// cfg.Timeout (or ctx's deadline) with an error naming what it waited for.
func New(ctx context.Context, cfg collective.Config) (*Group, error) {
	cfg = cfg.WithDefaults()
	if w := cfg.SharedMemory; w > 0 && cfg.Size > 1 && (w < minWindow || w < int64(8*cfg.Size)) {
		return nil, fmt.Errorf("%w: rank %d of %d: a shared-memory window of %d bytes, want at least %d",
			collective.ErrConfig, cfg.Rank, cfg.Size, w, max(minWindow, 8*cfg.Size))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		cfg.Store = &memStore{}
	}
	desc := fmt.Sprintf("connect rank %d of %d (%s, timeout %s)", cfg.Rank, cfg.Size, cfg.Endpoint(), cfg.Timeout)
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	host, err := cfg.ListenAddress(cctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", collective.ErrConfig, desc, err)
	}
	bridge := &storeBridge{store: cfg.Store, ctx: cctx, prefix: "gloo." + cfg.Name + "."}
	h := cgo.NewHandle(bridge)
	defer h.Delete()

	nat, st := nativeNew(cfg.Rank, cfg.Size, host, cfg.Interface, millis(cfg.Timeout), h)
	if st.code != codeOK {
		if sentinel, err := bridge.firstErr(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", sentinel, desc, err)
		}
		return nil, fmt.Errorf("%w: %s: %s", sentinelOf(st.code, collective.ErrConfig), desc, st.msg)
	}
	g := &Group{cfg: cfg, nat: nat}
	if cfg.SharedMemory > 0 && cfg.Size > 1 {
		if g.shm, g.noShm, err = setupShm(cctx, cfg, nat, millis(cfg.Timeout)); err != nil {
			nat.free()
			return nil, fmt.Errorf("%s: %w", desc, err)
		}
	}
	g.life = collective.NewLifecycle("collective", cfg.Rank, cfg.Size, func() {
		g.nat.abort()
		if g.shm != nil {
			g.shm.abort()
		}
	})
	g.life.Watch(cfg.AbortOn)
	return g, nil
}

// Rank is this process's rank.
func (g *Group) Rank() int { return g.cfg.Rank }

// Size is the number of ranks.
func (g *Group) Size() int { return g.cfg.Size }

// Transport says how the collectives move data: "tcp", "shared memory
// (windows of N bytes)", or "tcp (shared memory: <why not>)" when
// Config.SharedMemory asked for it and the ranks could not use it.
func (g *Group) Transport() string {
	switch {
	case g.shm != nil:
		return fmt.Sprintf("shared memory (windows of %d bytes)", g.shm.window)
	case g.noShm != "":
		return "tcp (shared memory: " + g.noShm + ")"
	}
	return "tcp"
}

// SharedMemory reports whether the collectives run through shared memory
// (Transport says more).
func (g *Group) SharedMemory() bool { return g.shm != nil }

// Timeout is the bound on each collective.
func (g *Group) Timeout() time.Duration { return g.cfg.Timeout }

// Abort fails the collective in flight (within milliseconds) and every later
// one; the peers' connections to this rank are reset, so their collectives
// fail too. Safe from any goroutine.
func (g *Group) Abort() { g.life.Abort("Abort called") }

// Close releases the group. With a collective in flight it aborts it first;
// an idle group is closed gracefully, so data already sent still reaches
// the peers.
func (g *Group) Close() error {
	return g.life.Close(func() error {
		g.nat.free()
		g.nat = nil
		if g.shm != nil {
			g.shm.release()
		}
		return nil
	})
}

// call describes one collective for do.
type call struct {
	op    string
	count int // elements per rank
	dt    collective.DType
	run   func(n *native, timeoutMs int64) nativeStatus
}

// do runs c: it checks the group, bounds the call by the timeout and ctx,
// aborts on ctx's cancellation, and breaks the group on any failure.
func (g *Group) do(ctx context.Context, c call) error {
	if err := g.life.Begin(ctx, c.op); err != nil {
		return err
	}
	timeout := g.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		g.life.End(nil)
		return fmt.Errorf("collective: %s on rank %d: %w", c.op, g.cfg.Rank, context.DeadlineExceeded)
	}
	stop := context.AfterFunc(ctx, func() {
		g.life.Abort(fmt.Sprintf("context of %s ended: %v", c.op, context.Cause(ctx)))
	})
	st := c.run(g.nat, millis(timeout))
	stop()
	var err error
	if st.code != codeOK {
		err = g.failure(ctx, c, timeout, st)
	}
	g.life.End(err)
	return err
}

// failure builds the error of a failed collective (End then breaks the group).
func (g *Group) failure(ctx context.Context, c call, timeout time.Duration, st nativeStatus) error {
	desc := fmt.Sprintf("%s on rank %d of %d (%d %s, timeout %s)",
		c.op, g.cfg.Rank, g.cfg.Size, c.count, c.dt, timeout.Round(time.Millisecond))
	var err error
	if aborted := g.life.AbortReason(); aborted != "" {
		// Gloo's message only says the connections were closed.
		err = fmt.Errorf("%w: %s: %s", collective.ErrAborted, desc, aborted)
	} else {
		err = fmt.Errorf("%w: %s: %s", sentinelOf(st.code, collective.ErrPeerLost), desc, st.msg)
	}
	// The context's deadline may have passed before its timer marked it done
	// (a loaded machine runs the timer late): a call its deadline cut short
	// says so either way.
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	} else if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		err = fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
	}
	return err
}

// sentinelOf maps a shim status code to a sentinel; def covers the rest.
func sentinelOf(code int, def error) error {
	switch code {
	case codeTimeout:
		return collective.ErrTimeout
	case codeIO:
		return collective.ErrPeerLost
	case codeInvalid:
		return collective.ErrConfig
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
