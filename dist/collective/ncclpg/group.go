package ncclpg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/nccl"
)

// ErrDevice is wrapped by errors of CUDA or NCCL calls that failed outright
// (a copy, an allocation, an enqueue), as opposed to a collective that hung
// or lost a peer. The group is broken afterwards.
var ErrDevice = errors.New("ncclpg: device call failed")

// avgVersion is the first NCCL version with ncclAvg (2.10.0).
const avgVersion = 21000

// Config describes one rank of an NCCL group.
type Config struct {
	// Rank is this process's rank, 0 <= Rank < Size.
	Rank int
	// Size is the number of ranks, at least 1.
	Size int
	// Device is the CUDA device this rank drives.
	Device int
	// Store carries the unique id from rank 0 to the others (hex, under
	// "nccl.<Name>.unique_id"). It may be nil when Size is 1.
	Store collective.Store
	// Name separates groups that share a store. Default collective.DefaultName.
	Name string
	// Timeout bounds the setup and each collective (a context deadline may
	// shorten either). Default collective.DefaultTimeout.
	Timeout time.Duration
	// AbortOn, when closed, aborts the group: pass the rendezvous worker's
	// Done() so that a lost etcd session fails the collectives at once.
	AbortOn <-chan struct{}
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = collective.DefaultName
	}
	if c.Timeout == 0 {
		c.Timeout = collective.DefaultTimeout
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Size < 1:
		return fmt.Errorf("%w: world size %d, need at least 1", collective.ErrConfig, c.Size)
	case c.Rank < 0 || c.Rank >= c.Size:
		return fmt.Errorf("%w: rank %d out of range for world size %d", collective.ErrConfig, c.Rank, c.Size)
	case c.Device < 0:
		return fmt.Errorf("%w: negative CUDA device %d", collective.ErrConfig, c.Device)
	case c.Store == nil && c.Size > 1:
		return fmt.Errorf("%w: no store for world size %d", collective.ErrConfig, c.Size)
	case c.Timeout < 0:
		return fmt.Errorf("%w: negative timeout %s", collective.ErrConfig, c.Timeout)
	case strings.ContainsFunc(c.Name, func(r rune) bool { return r == '/' || r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: group name %q contains '/' or a control character", collective.ErrConfig, c.Name)
	}
	return nil
}

func (c Config) idKey() string { return "nccl." + c.Name + ".unique_id" }

// Group is a collective.ProcessGroup over one NCCL communicator. All CUDA
// and NCCL calls of a group run on one goroutine locked to its OS thread,
// on which cfg.Device was made current, so callers need not lock theirs.
type Group struct {
	cfg    Config
	reqs   chan func() // run by the worker, in order
	hasAvg bool
	// grace bounds how long a caller waits for the worker past a call's own
	// limit (NCCL returning once aborted); default abortGrace.
	grace time.Duration
	// wedged is set when the worker overran a call's limit: it is stuck in
	// NCCL and is never sent anything again.
	wedged atomic.Bool
	health health // the idle communicator's watcher

	life *collective.Lifecycle // one call at a time, breaking, Abort, Close

	// Owned by the worker goroutine.
	comm   *nccl.Comm
	stream nccl.Stream
	stage  [2]staging
	events [2]nccl.Event // the stream-ordered calls' "ready" and "done", made on first use
}

// Group has every optional collective.
var (
	_ collective.Group           = (*Group)(nil)
	_ collective.AllReducer      = (*Group)(nil)
	_ collective.ReduceScatterer = (*Group)(nil)
	_ collective.Barrierer       = (*Group)(nil)
	_ collective.RawAllReducer   = (*Group)(nil)
	_ collective.RawAllGatherer  = (*Group)(nil)

	_ collective.StreamOrderedAllReducer      = (*Group)(nil)
	_ collective.StreamOrderedAllGatherer     = (*Group)(nil)
	_ collective.StreamOrderedReduceScatterer = (*Group)(nil)
)

// New loads NCCL (nccl.Init), exchanges the unique id through cfg.Store
// (rank 0 makes and publishes it, the others wait for it) and joins the
// communicator on cfg.Device. It fails within cfg.Timeout (or ctx's
// deadline) when a rank never arrives. Without libnccl it returns the nccl
// package's *nccl.LoadError (errors.Is nccl.ErrLibraryNotFound).
func New(ctx context.Context, cfg Config) (*Group, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	desc := fmt.Sprintf("ncclpg: connect rank %d of %d (device %d, timeout %s)", cfg.Rank, cfg.Size, cfg.Device, cfg.Timeout)
	if err := nccl.Init(); err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	version, err := nccl.GetVersion()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDevice, desc, err)
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	id, err := exchangeID(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}

	// The watchdog watches life.Aborted() and aborts the communicator itself.
	g := &Group{cfg: cfg, reqs: make(chan func()), hasAvg: version >= avgVersion, grace: abortGrace,
		life: collective.NewLifecycle("ncclpg", cfg.Rank, cfg.Size, nil)}
	go g.work()
	var initErr error
	joined := g.submit(func() { initErr = g.join(cctx, id) })
	select {
	case <-joined:
	case <-cctx.Done():
		// A non-blocking init aborts itself on cctx; a blocking one
		// (NCCL < 2.14) cannot be interrupted: free whatever it makes once
		// it returns.
		go func() { <-joined; g.shutdown() }()
		sentinel := collective.ErrAborted
		if errors.Is(cctx.Err(), context.DeadlineExceeded) {
			sentinel = collective.ErrTimeout
		}
		return nil, fmt.Errorf("%w: %s: waiting for every rank to join the communicator: %w", sentinel, desc, cctx.Err())
	}
	if initErr != nil {
		g.shutdown()
		sentinel := ErrDevice
		var ae *nccl.AbortError
		if errors.As(initErr, &ae) { // a non-blocking init aborted at the deadline or on ctx
			sentinel = collective.ErrAborted
			if errors.Is(initErr, nccl.ErrTimeout) || errors.Is(initErr, context.DeadlineExceeded) {
				sentinel = collective.ErrTimeout
			}
		}
		return nil, fmt.Errorf("%w: %s: %w", sentinel, desc, initErr)
	}
	g.life.Watch(cfg.AbortOn)
	g.health = health{stop: make(chan struct{}), done: make(chan struct{})}
	go g.watchHealth()
	return g, nil
}

// exchangeID makes (rank 0) or fetches (the others) the communicator id.
func exchangeID(ctx context.Context, cfg Config) (nccl.UniqueID, error) {
	if cfg.Rank == 0 {
		id, err := nccl.GetUniqueID()
		if err != nil {
			return id, fmt.Errorf("%w: %w", ErrDevice, err)
		}
		if cfg.Size > 1 {
			if err := cfg.Store.Publish(ctx, cfg.idKey(), []byte(id.String())); err != nil {
				return id, fmt.Errorf("%w: publish the unique id (key %q): %w", storeSentinel(ctx, err), cfg.idKey(), err)
			}
		}
		return id, nil
	}
	v, err := cfg.Store.Lookup(ctx, cfg.idKey())
	if err != nil {
		return nccl.UniqueID{}, fmt.Errorf("%w: wait for rank 0's unique id (key %q): %w", storeSentinel(ctx, err), cfg.idKey(), err)
	}
	id, err := nccl.ParseUniqueID(string(v))
	if err != nil {
		return id, fmt.Errorf("%w: unique id under key %q: %w", collective.ErrStore, cfg.idKey(), err)
	}
	return id, nil
}

func storeSentinel(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return collective.ErrTimeout
	case ctx.Err() != nil:
		return collective.ErrAborted
	}
	return collective.ErrStore
}

// join runs on the worker: device, communicator, stream.
func (g *Group) join(ctx context.Context, id nccl.UniqueID) error {
	if err := nccl.SetDevice(g.cfg.Device); err != nil {
		return err
	}
	comm, err := nccl.CommInit(ctx, g.cfg.Size, id, g.cfg.Rank, g.cfg.Timeout)
	if err != nil {
		return err
	}
	g.comm = comm
	if g.stream, err = nccl.StreamCreate(); err != nil {
		return err
	}
	return nil
}

// Rank is this process's rank.
func (g *Group) Rank() int { return g.cfg.Rank }

// Size is the number of ranks.
func (g *Group) Size() int { return g.cfg.Size }

// Device is the CUDA device of the communicator.
func (g *Group) Device() int { return g.cfg.Device }

// Timeout is the bound on each collective.
func (g *Group) Timeout() time.Duration { return g.cfg.Timeout }

// Abort fails the collective in flight (the watchdog calls ncclCommAbort
// within milliseconds) and every later one. Safe from any goroutine; it
// does not block.
func (g *Group) Abort() { g.life.Abort("Abort called") }

// Close aborts a collective in flight, if any, then frees the
// communicator, the stream and the staging buffers. It never blocks for
// long: the call in flight ends within milliseconds of its abort (at most
// its timeout plus abortGrace when NCCL does not return), and the release
// is given Timeout plus abortGrace before the device thread is abandoned.
// Later calls return the same error.
func (g *Group) Close() error {
	return g.life.Close(func() error {
		g.stopHealth()
		if err := g.shutdown(); err != nil {
			return fmt.Errorf("ncclpg: close rank %d: %w", g.cfg.Rank, err)
		}
		return nil
	})
}
