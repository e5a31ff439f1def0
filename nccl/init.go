package nccl

import (
	"context"
	"fmt"
	"os"
	"time"
)

// nonBlockingVersion is the first NCCL with ncclCommInitRankConfig and
// non-blocking communicators (2.14.0).
const nonBlockingVersion = 21400

// EnvBlocking, set to 1, makes CommInit create a blocking communicator even
// where the library has non-blocking ones (the watchdog goroutine then does
// every abort).
const EnvBlocking = "LRTRAIN_NCCL_BLOCKING"

// NonBlocking reports whether the loaded NCCL can make non-blocking
// communicators: version >= 2.14 and ncclCommInitRankConfig present.
func NonBlocking() bool {
	v, err := GetVersion()
	if err != nil || v < nonBlockingVersion {
		return false
	}
	var ok bool
	_ = with(func(s *symbols) error { ok = s.commInitRankConfig != nil; return nil })
	return ok
}

// CommInit joins communicator id as rank of nranks on the device current on
// the calling OS thread, like CommInitRank, but bounded by timeout (0: by
// ctx only).
//
// Where the library has them (NonBlocking), the communicator is
// non-blocking: ncclCommInitRankConfig with an ncclConfig_t initialised as
// NCCL_CONFIG_INITIALIZER does for the loaded version (size, NCCL_API_MAGIC,
// the version code, every other field left undefined) and blocking = 0.
// Init then returns at once, ncclInProgress or not, and CommInit polls
// ncclCommGetAsyncError until it leaves ncclInProgress; on the timeout or
// ctx's end it calls ncclCommAbort and returns an *AbortError, so that this
// wait ends within timeout plus one poll interval (2 ms) and the abort's own
// duration. Collectives on such a communicator may return ncclInProgress;
// Watchdog.Run settles them.
//
// Otherwise (NCCL < 2.14, or LRTRAIN_NCCL_BLOCKING=1) it is ncclCommInitRank,
// which cannot be interrupted: no handle exists until it returns. Callers
// bound it by running CommInit on a goroutine they can abandon and freeing
// what it returns late (dist/collective/ncclpg does).
func CommInit(ctx context.Context, nranks int, id UniqueID, rank int, timeout time.Duration) (*Comm, error) {
	if !NonBlocking() || os.Getenv(EnvBlocking) == "1" {
		return CommInitRank(nranks, id, rank)
	}
	if nranks < 1 || rank < 0 || rank >= nranks {
		return nil, fmt.Errorf("nccl: comm init: rank %d of %d: %w", rank, nranks, InvalidArgument)
	}
	version, err := GetVersion()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var h uintptr
	var code int32
	if err := with(func(s *symbols) error {
		h, code = cCommInitRankConfig(s.commInitRankConfig, nranks, id, rank, version, false)
		return nil
	}); err != nil {
		return nil, err
	}
	if Result(code) != Success && Result(code) != InProgress {
		c := &Comm{h: h, rank: rank, nranks: nranks}
		if h != 0 {
			_ = c.Abort() // a failed init leaves a handle to free
		}
		return nil, fmt.Errorf("nccl: comm init rank %d of %d (non-blocking): %w", rank, nranks, Result(code))
	}
	c := &Comm{h: h, rank: rank, nranks: nranks, nonBlocking: true}
	w := Watchdog{Rank: rank, Timeout: timeout}
	if err := w.settle(ctx, "comm init", c.Pending(0), start, w.deadline(start)); err != nil {
		return nil, err
	}
	return c, nil
}

// NonBlocking reports whether c was made non-blocking.
func (c *Comm) NonBlocking() bool { return c.nonBlocking }

// settled reports whether the communicator's last operation has completed:
// ncclCommGetAsyncError answers ncclSuccess (true), ncclInProgress (false)
// or a failure (the error).
func (c *Comm) settled() (bool, error) {
	h, err := c.handle()
	if err != nil {
		return false, err
	}
	var async int
	var code int32
	if err := with(func(s *symbols) error { async, code = cCallPtrIntOut(s.commGetAsyncError, h); return nil }); err != nil {
		return false, err
	}
	if err := resultErr(code); err != nil {
		return false, fmt.Errorf("nccl: get async error (rank %d): %w", c.rank, err)
	}
	switch r := Result(async); r {
	case Success:
		return true, nil
	case InProgress:
		return false, nil
	default:
		return false, r
	}
}

// Settler is what a Pending offers when its communicator is non-blocking:
// whether the last call that answered ncclInProgress has completed.
type Settler interface {
	Settled() (bool, error)
}

func (w streamWork) Settled() (bool, error) { return w.c.settled() }

// configLayout is the ncclConfig_t prefix the trampoline fills: its size
// and the offsets of magic, version and blocking.
func configLayout() (size, magic, version, blocking int) { return cConfigLayout() }
