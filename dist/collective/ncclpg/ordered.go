package ncclpg

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/nccl"
)

// The raw all-reduce ordered by CUDA events, as PyTorch's ProcessGroupNCCL
// orders its collectives: the group's stream waits, on the device, for an
// event recorded on the caller's stream, and the caller's stream waits for
// an event recorded on the group's stream after the collective. Nothing
// synchronises the whole device.

// AllReduceRawOrdered is AllReduceRaw for data still being written by
// kernels on stream (a cudaStream_t on the group's device; 0, the legacy
// default stream, is where libtorch runs its kernels). It implements
// collective.StreamOrderedAllReducer.
//
// Ordered by events, on the device: the collective starts only after the
// work enqueued on stream before the call (event "ready", recorded on
// stream, waited for by the group's stream), and the work enqueued on
// stream after the call returns starts only after the collective (event
// "done", recorded on the group's stream after it, waited for by stream).
// Other streams are not drained, and the host does not wait for stream.
//
// What the host still waits for: the group's stream to finish, bounded by
// Config.Timeout and the context as for every collective of the group (the
// nccl package's Watchdog). That wait is what turns a dead peer into an
// aborted communicator and an error instead of a hang, so it stays; since
// the group's stream now starts behind stream's pending kernels, the bound
// covers their tail too (the backward pass that produced the gradients).
// The done event makes the order after the collective hold on the device by
// itself, not only through that host wait. Abort and Close are unchanged:
// the wait is polled and aborted like any other.
//
// The group's stream is a blocking stream (cudaStreamCreate), which CUDA
// also orders implicitly against the legacy default stream; the events make
// the order explicit, so that it holds for any caller stream, per-thread or
// non-blocking ones included.
func (g *Group) AllReduceRawOrdered(ctx context.Context, ptr unsafe.Pointer, n int, dt collective.DType,
	op collective.ReduceOp, stream uintptr) error {
	const name = "allreduce (raw, stream-ordered)"
	ndt, red, err := g.rawArgs(name, ptr, n, dt, op)
	if err != nil || n == 0 {
		return g.precheck(ctx, name, err)
	}
	p := nccl.DevicePtr(ptr)
	return g.ordered(ctx, name, n, ndt, stream, func(s nccl.Stream) error {
		return g.comm.AllReduce(p, p, n, ndt, red, s)
	})
}

// AllGatherRawOrdered is AllGatherRaw for send still being written, and recv
// still being read, by kernels on stream: the all-gather starts after the work
// enqueued on stream before the call, and the work enqueued on stream after
// the call returns starts after it, by the same two events as
// AllReduceRawOrdered (and with the same host wait for the group's stream). It
// implements collective.StreamOrderedAllGatherer.
func (g *Group) AllGatherRawOrdered(ctx context.Context, send, recv unsafe.Pointer, n int, dt collective.DType, stream uintptr) error {
	const name = "allgather (raw, stream-ordered)"
	ndt, err := g.gatherArgs(name, send, recv, n, dt)
	if err != nil || n == 0 {
		return g.precheck(ctx, name, err)
	}
	s, r := nccl.DevicePtr(send), nccl.DevicePtr(recv)
	return g.ordered(ctx, name, n, ndt, stream, func(st nccl.Stream) error {
		return g.comm.AllGather(s, r, n, ndt, st)
	})
}

// ReduceScatterRawOrdered is ReduceScatterRaw ordered against stream by the
// same two events as AllReduceRawOrdered (and with the same host wait for the
// group's stream). It implements collective.StreamOrderedReduceScatterer.
func (g *Group) ReduceScatterRawOrdered(ctx context.Context, send, recv unsafe.Pointer, n int, dt collective.DType,
	op collective.ReduceOp, stream uintptr) error {
	const name = "reducescatter (raw, stream-ordered)"
	ndt, red, err := g.scatterArgs(name, send, recv, n, dt, op)
	if err != nil || n == 0 {
		return g.precheck(ctx, name, err)
	}
	s, r := nccl.DevicePtr(send), nccl.DevicePtr(recv)
	return g.ordered(ctx, name, n, ndt, stream, func(st nccl.Stream) error {
		return g.comm.ReduceScatter(s, r, n, ndt, red, st)
	})
}

// ordered runs the collective launch enqueues between the two events: the
// group's stream waits for "ready", recorded on the caller's stream, before
// launch; the caller's stream waits for "done", recorded on the group's stream
// after it.
func (g *Group) ordered(ctx context.Context, name string, n int, ndt nccl.DataType, stream uintptr,
	launch func(nccl.Stream) error) error {
	caller := nccl.Stream(stream)
	return g.do(ctx, name, n, ndt, func(s nccl.Stream) error {
		if err := g.ensureEvents(); err != nil {
			return err
		}
		if err := nccl.OrderAfter(s, caller, g.events[0]); err != nil {
			return err
		}
		return launch(s)
	}, func() error {
		// After the watchdog's wait, so that a non-blocking communicator's
		// collective has settled and is on the stream before "done" is
		// recorded behind it.
		return nccl.OrderAfter(caller, g.stream, g.events[1])
	})
}

// ensureEvents makes the group's two events ("ready", "done") on first use,
// on the worker, where the group's device is current. shutdown frees them.
func (g *Group) ensureEvents() error {
	for i := range g.events {
		if g.events[i] != 0 {
			continue
		}
		e, err := nccl.EventCreate()
		if err != nil {
			return err
		}
		g.events[i] = e
	}
	return nil
}

// freeEvents destroys the events, on the worker.
func (g *Group) freeEvents() error {
	var errs []error
	for i, e := range g.events {
		if e != 0 {
			g.events[i] = 0
			errs = append(errs, nccl.EventDestroy(e))
		}
	}
	return errors.Join(errs...)
}

// rawArgs checks the arguments of a raw all-reduce and maps them to NCCL's.
// Avg with NCCL older than 2.10 is rejected, since scaling would need a
// kernel.
func (g *Group) rawArgs(name string, ptr unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp) (nccl.DataType, nccl.RedOp, error) {
	ndt, ok := dataType(dt)
	if !ok || !dt.Reducible() {
		return 0, 0, fmt.Errorf("%w: %s on rank %d: data type %v", collective.ErrConfig, name, g.cfg.Rank, dt)
	}
	if n < 0 || (n > 0 && ptr == nil) {
		return 0, 0, fmt.Errorf("%w: %s on rank %d: %d elements at %p", collective.ErrConfig, name, g.cfg.Rank, n, ptr)
	}
	red, scale, err := g.redOp(name, op)
	if err == nil && scale != 1 {
		err = fmt.Errorf("%w: %s on rank %d: avg needs NCCL >= 2.10", collective.ErrConfig, name, g.cfg.Rank)
	}
	return ndt, red, err
}
