package nccl

import (
	"encoding/hex"
	"fmt"
	"sync"
	"unsafe"
)

// UniqueID is ncclUniqueId: 128 opaque bytes made by one rank with
// GetUniqueID and shared with the others (the rendezvous stores it in etcd).
type UniqueID [128]byte

// String returns the id as hex, the form it takes in etcd.
func (id UniqueID) String() string { return hex.EncodeToString(id[:]) }

// ParseUniqueID decodes the hex form written by String.
func ParseUniqueID(s string) (UniqueID, error) {
	var id UniqueID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("nccl: unique id must be %d hex-encoded bytes, got %d chars: %w",
			len(id), len(s), InvalidArgument)
	}
	copy(id[:], b)
	return id, nil
}

// GetVersion returns NCCL's version code, e.g. 22105 for 2.21.5.
func GetVersion() (int, error) {
	var v int
	var code int32
	if err := with(func(s *symbols) error { v, code = cCallIntOut(s.getVersion); return nil }); err != nil {
		return 0, err
	}
	if err := resultErr(code); err != nil {
		return 0, fmt.Errorf("nccl: get version: %w", err)
	}
	return v, nil
}

// VersionString renders a version code as "major.minor.patch", using the
// encoding NCCL switched to at 2.9 (major*10000+minor*100+patch) and the
// older one (major*1000+minor*100+patch) below it.
func VersionString(code int) string {
	if code >= 20900 {
		return fmt.Sprintf("%d.%d.%d", code/10000, code%10000/100, code%100)
	}
	return fmt.Sprintf("%d.%d.%d", code/1000, code%1000/100, code%100)
}

// GetUniqueID makes a new communicator id. Call it on one rank only.
func GetUniqueID() (UniqueID, error) {
	var id UniqueID
	var code int32
	if err := with(func(s *symbols) error { id, code = cGetUniqueID(s.getUniqueID); return nil }); err != nil {
		return id, err
	}
	if err := resultErr(code); err != nil {
		return id, fmt.Errorf("nccl: get unique id: %w", err)
	}
	return id, nil
}

// Comm is an NCCL communicator (ncclComm_t). Collectives on it are
// asynchronous: they are enqueued on a CUDA stream and return at once; wait
// for them with WaitStream or a Watchdog, never with a bare
// cudaStreamSynchronize, so that a dead peer cannot hang this rank.
type Comm struct {
	mu     sync.Mutex
	h      uintptr // ncclComm_t; 0 once destroyed or aborted
	rank   int
	nranks int
	// nonBlocking: made by CommInit with blocking = 0; calls may answer
	// ncclInProgress.
	nonBlocking bool
}

// CommInitRank joins communicator id as rank of nranks, on the CUDA device
// that is current on the calling OS thread (lock the goroutine with
// runtime.LockOSThread and call SetDevice first). It blocks until all ranks
// have joined; bound that wait in the rendezvous.
func CommInitRank(nranks int, id UniqueID, rank int) (*Comm, error) {
	if nranks < 1 || rank < 0 || rank >= nranks {
		return nil, fmt.Errorf("nccl: comm init: rank %d of %d: %w", rank, nranks, InvalidArgument)
	}
	var h uintptr
	var code int32
	if err := with(func(s *symbols) error {
		h, code = cCommInitRank(s.commInitRank, nranks, id, rank)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := resultErr(code); err != nil {
		return nil, fmt.Errorf("nccl: comm init rank %d of %d: %w", rank, nranks, err)
	}
	return &Comm{h: h, rank: rank, nranks: nranks}, nil
}

// Rank is the rank given to CommInitRank.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of ranks given to CommInitRank.
func (c *Comm) Size() int { return c.nranks }

// handle returns the live ncclComm_t or ErrClosed.
func (c *Comm) handle() (uintptr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == 0 {
		return 0, ErrClosed
	}
	return c.h, nil
}

// take detaches the handle so that exactly one of Destroy/Abort frees it.
func (c *Comm) take() (uintptr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.h
	if h == 0 {
		return 0, ErrClosed
	}
	c.h = 0
	return h, nil
}

// Destroy waits for pending work and frees the communicator.
func (c *Comm) Destroy() error {
	return c.release("destroy", func(s *symbols) unsafe.Pointer { return s.commDestroy })
}

// Abort frees the communicator without waiting for its pending work, which
// is cancelled on the GPU, so that the stream drains. On a non-blocking
// communicator Abort and Destroy may answer ncclInProgress: NCCL finishes
// the release in the background, and they return nil. Call it from the
// goroutine that enqueues collectives, or from another one while that
// goroutine is blocked inside an NCCL call (Watchdog.Run does, as PyTorch's
// watchdog thread does: the abort makes the call return); later calls
// return ErrClosed.
func (c *Comm) Abort() error {
	return c.release("abort", func(s *symbols) unsafe.Pointer { return s.commAbort })
}

func (c *Comm) release(what string, pick func(*symbols) unsafe.Pointer) error {
	h, err := c.take()
	if err != nil {
		return fmt.Errorf("nccl: comm %s (rank %d): %w", what, c.rank, err)
	}
	var code int32
	if err := with(func(s *symbols) error { code = cCallPtr(pick(s), h); return nil }); err != nil {
		return err
	}
	if c.nonBlocking && Result(code) == InProgress {
		return nil // released in the background; the handle is gone
	}
	if err := resultErr(code); err != nil {
		return fmt.Errorf("nccl: comm %s (rank %d): %w", what, c.rank, err)
	}
	return nil
}

// AsyncError returns the communicator's asynchronous error
// (ncclCommGetAsyncError): nil while healthy or still in progress, a
// Result when a network or remote failure broke it, ErrClosed once freed.
func (c *Comm) AsyncError() error {
	h, err := c.handle()
	if err != nil {
		return err
	}
	var async int
	var code int32
	if err := with(func(s *symbols) error { async, code = cCallPtrIntOut(s.commGetAsyncError, h); return nil }); err != nil {
		return err
	}
	if err := resultErr(code); err != nil {
		return fmt.Errorf("nccl: get async error (rank %d): %w", c.rank, err)
	}
	if r := Result(async); r != Success && r != InProgress {
		return r
	}
	return nil
}

// Count is ncclCommCount: the number of ranks.
func (c *Comm) Count() (int, error) {
	return c.query("count", func(s *symbols) unsafe.Pointer { return s.commCount })
}

// CuDevice is ncclCommCuDevice: the CUDA device the communicator uses.
func (c *Comm) CuDevice() (int, error) {
	return c.query("cu device", func(s *symbols) unsafe.Pointer { return s.commCuDevice })
}

// UserRank is ncclCommUserRank: this rank as NCCL sees it.
func (c *Comm) UserRank() (int, error) {
	return c.query("user rank", func(s *symbols) unsafe.Pointer { return s.commUserRank })
}

func (c *Comm) query(what string, pick func(*symbols) unsafe.Pointer) (int, error) {
	h, err := c.handle()
	if err != nil {
		return 0, fmt.Errorf("nccl: comm %s: %w", what, err)
	}
	var v int
	var code int32
	if err := with(func(s *symbols) error { v, code = cCallPtrIntOut(pick(s), h); return nil }); err != nil {
		return 0, err
	}
	if err := resultErr(code); err != nil {
		return 0, fmt.Errorf("nccl: comm %s (rank %d): %w", what, c.rank, err)
	}
	return v, nil
}

// LastError is ncclGetLastError (NCCL >= 2.13): a human-readable note on
// the last failure, or "" when the library lacks it.
func (c *Comm) LastError() string {
	c.mu.Lock()
	h := c.h
	c.mu.Unlock()
	var text string
	_ = with(func(s *symbols) error {
		if s.getLastError != nil {
			text = cLastError(s.getLastError, h)
		}
		return nil
	})
	return text
}

// GroupStart opens a group of collectives that NCCL launches together at
// GroupEnd (needed when one thread drives several communicators).
func GroupStart() error {
	return group("start", func(s *symbols) unsafe.Pointer { return s.groupStart })
}

// GroupEnd closes the group opened by GroupStart and launches it.
func GroupEnd() error { return group("end", func(s *symbols) unsafe.Pointer { return s.groupEnd }) }

func group(what string, pick func(*symbols) unsafe.Pointer) error {
	var code int32
	if err := with(func(s *symbols) error { code = cCallVoid(pick(s)); return nil }); err != nil {
		return err
	}
	if err := resultErr(code); err != nil {
		return fmt.Errorf("nccl: group %s: %w", what, err)
	}
	return nil
}
