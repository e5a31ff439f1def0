package collective

import (
	"context"
	"errors"
	"fmt"
	"unsafe"
)

// Sentinel errors; match them with errors.Is. Errors of collectives wrap
// them with the op, the rank, the group size, the element count and the
// timeout in force.
var (
	// ErrConfig: a Config field or an argument is invalid (world size 0,
	// rank out of range, mismatched buffer lengths, unknown op).
	ErrConfig = errors.New("collective: invalid configuration")
	// ErrStore: the store could not be reached or failed while the ranks
	// exchanged their addresses.
	ErrStore = errors.New("collective: store failed")
	// ErrTimeout: a collective, or the connection setup, ran past its
	// timeout: a peer is hung, dead or never arrived.
	ErrTimeout = errors.New("collective: timeout")
	// ErrPeerLost: a connection to a peer failed (the peer died, or failed
	// its own collective and closed its connections).
	ErrPeerLost = errors.New("collective: peer lost")
	// ErrAborted: Abort was called, the context was cancelled, or the
	// Config's AbortOn channel fired.
	ErrAborted = errors.New("collective: aborted")
	// ErrBroken: an earlier collective failed, so the group is unusable; the
	// error also wraps that first failure.
	ErrBroken = errors.New("collective: group broken by an earlier failure")
	// ErrClosed: the group was closed.
	ErrClosed = errors.New("collective: group closed")
)

// ProcessGroup is a fixed set of ranks that run collectives together: the
// calls the trainer makes (rank and size, float64 all-reduce of gradients and
// metrics, all-gather of backbone shards, broadcast of the initial adapters).
// Backends offer more through the optional interfaces below, which callers
// reach by type assertion; a group whose owner must close it is a Group.
//
// Every rank must issue the same collectives in the same order with the
// same lengths (and the same op and root). Calls on one group are
// serialised; a group runs one collective at a time. Any failure (a peer
// died, a timeout, Abort, a cancelled context) breaks the group for good:
// later calls fail at once with ErrBroken, and the caller forms a new group.
type ProcessGroup interface {
	Rank() int
	Size() int
	// AllReduceFloat64 reduces buf across all ranks with op, in place.
	AllReduceFloat64(ctx context.Context, buf []float64, op ReduceOp) error
	// AllGather concatenates send from every rank, in rank order, into recv
	// (len(recv) == Size()*len(send)).
	AllGather(ctx context.Context, send, recv []float32) error
	// Broadcast copies root's buf into every other rank's buf, byte for
	// byte: any element type goes through it (see BroadcastSlice).
	Broadcast(ctx context.Context, buf []byte, root int) error
}

// Group is a ProcessGroup as the code that formed it holds it: it can abort
// and must close it. Gloo and NCCL groups are Groups.
type Group interface {
	ProcessGroup
	// Abort fails the collective in flight, if any, and every later one;
	// it never blocks for long and may be called from any goroutine.
	Abort()
	// Close aborts anything in flight and releases the group.
	Close() error
}

// AllReducer is implemented by groups that all-reduce float32 slices.
type AllReducer interface {
	// AllReduce reduces buf across all ranks with op, in place.
	AllReduce(ctx context.Context, buf []float32, op ReduceOp) error
}

// ReduceScatterer is implemented by groups with a reduce-scatter.
type ReduceScatterer interface {
	// ReduceScatter reduces send (Size() blocks of len(recv)) across ranks
	// with op and leaves block Rank() of the result in recv.
	ReduceScatter(ctx context.Context, send, recv []float32, op ReduceOp) error
}

// Barrierer is implemented by groups with a barrier.
type Barrierer interface {
	// Barrier returns once every rank has entered it.
	Barrier(ctx context.Context) error
}

// RawAllReducer is implemented by groups that reduce memory Go does not own
// (a libtorch tensor's data, for example) without copying it. ptr must
// point to n elements of dt and stay valid until the call returns.
type RawAllReducer interface {
	AllReduceRaw(ctx context.Context, ptr unsafe.Pointer, n int, dt DType, op ReduceOp) error
}

// StreamOrderedAllReducer is a RawAllReducer on CUDA memory (ncclpg) that
// orders its collective on the device by events instead of asking the
// caller to synchronise first. AllReduceRawOrdered reduces like
// AllReduceRaw, but the kernels writing ptr may still be running: the
// collective waits, on the device, for the work enqueued on stream (a
// cudaStream_t; 0 is the legacy default stream, where libtorch runs its
// kernels) before the call, and the work enqueued on stream after the call
// returns waits for the collective. The implementation documents what the
// host itself still waits for.
type StreamOrderedAllReducer interface {
	RawAllReducer
	AllReduceRawOrdered(ctx context.Context, ptr unsafe.Pointer, n int, dt DType, op ReduceOp, stream uintptr) error
}

// RawAllGatherer is implemented by groups that all-gather memory Go does not
// own (tensors' data: host memory for Gloo, device memory on the group's
// device for NCCL) without copying it. send points to n elements of dt, recv
// to Size()·n, filled in rank order; Uint8 moves any element type byte for
// byte. Both must stay valid until the call returns. send may be this rank's
// own block of recv (recv + Rank()·n elements): the gather is then in place,
// as NCCL defines it; any other overlap is an error of the caller's.
type RawAllGatherer interface {
	AllGatherRaw(ctx context.Context, send, recv unsafe.Pointer, n int, dt DType) error
}

// RawReduceScatterer is implemented by groups that reduce-scatter memory Go
// does not own (host memory for Gloo, device memory on the group's device for
// NCCL) without copying it: send points to Size()·n elements of dt (block k is
// rank k's share), recv to n, which receive block Rank() of the reduction with
// op. dt must be Float32 or Float64; both must stay valid until the call
// returns. recv may be this rank's own block of send (send + Rank()·n
// elements): the reduction is then in place, as NCCL defines it; any other
// overlap is an error of the caller's.
type RawReduceScatterer interface {
	ReduceScatterRaw(ctx context.Context, send, recv unsafe.Pointer, n int, dt DType, op ReduceOp) error
}

// StreamOrderedAllGatherer is a RawAllGatherer on CUDA memory (ncclpg) ordered
// against stream on the device as StreamOrderedAllReducer is: the all-gather
// starts after the work enqueued on stream before the call (the kernels writing
// send, or still reading recv), and the work enqueued on stream after the call
// returns starts after it.
type StreamOrderedAllGatherer interface {
	RawAllGatherer
	AllGatherRawOrdered(ctx context.Context, send, recv unsafe.Pointer, n int, dt DType, stream uintptr) error
}

// StreamOrderedReduceScatterer is a RawReduceScatterer on CUDA memory (ncclpg)
// ordered against stream on the device as StreamOrderedAllReducer is.
type StreamOrderedReduceScatterer interface {
	RawReduceScatterer
	ReduceScatterRawOrdered(ctx context.Context, send, recv unsafe.Pointer, n int, dt DType, op ReduceOp, stream uintptr) error
}

// DefaultStream is the CUDA stream libtorch runs a process's kernels on when
// nothing sets a current stream (lrtrain never does): the legacy default
// stream, cudaStream_t 0. The stream-ordered collectives order against it.
const DefaultStream uintptr = 0

// Store is the key-value store through which the ranks of a group exchange
// their addresses while they connect. Lookup waits until the key is
// published (or ctx ends). *rdzv.Worker implements it with etcd; TCPStore
// implements it with a small server run by one process.
type Store interface {
	Publish(ctx context.Context, key string, value []byte) error
	Lookup(ctx context.Context, key string) ([]byte, error)
}

// ReduceOp is the reduction of AllReduce and ReduceScatter.
type ReduceOp int

// Reductions. Avg is Sum divided by the group size.
const (
	Sum ReduceOp = iota
	Avg
	Max
	Min
)

func (op ReduceOp) String() string {
	switch op {
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	case Max:
		return "max"
	case Min:
		return "min"
	}
	return fmt.Sprintf("ReduceOp(%d)", int(op))
}

// Valid reports whether op is one of the reductions above.
func (op ReduceOp) Valid() bool { return op >= Sum && op <= Min }

// DType is an element type of the raw interface.
type DType int

// Element types. Uint8 (bytes) is moved, never reduced.
const (
	Float32 DType = iota
	Float64
	Uint8
)

func (dt DType) String() string {
	switch dt {
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case Uint8:
		return "uint8"
	}
	return fmt.Sprintf("DType(%d)", int(dt))
}

// Size is the element size in bytes.
func (dt DType) Size() int {
	switch dt {
	case Float64:
		return 8
	case Uint8:
		return 1
	}
	return 4
}

// Reducible reports whether dt can be reduced (Float32, Float64).
func (dt DType) Reducible() bool { return dt == Float32 || dt == Float64 }

// Element is a fixed-size element type that BroadcastSlice can move.
type Element interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~float32 | ~float64
}

// BroadcastSlice copies root's buf into every other rank's buf through g's byte
// Broadcast: the values arrive bit for bit (negative zeros and NaN payloads included),
// whatever their type. Every rank passes a slice of the same length and type.
func BroadcastSlice[T Element](ctx context.Context, g ProcessGroup, buf []T, root int) error {
	return g.Broadcast(ctx, Bytes(buf), root)
}

// Bytes is buf's memory as bytes (nil for an empty slice); it aliases buf.
func Bytes[T Element](buf []T) []byte {
	if len(buf) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*int(unsafe.Sizeof(zero)))
}
