package ncclpg

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/nccl"
)

// staging is a device buffer that grows to the largest request seen.
type staging struct {
	ptr nccl.DevicePtr
	cap int // bytes
}

func (s *staging) ensure(bytes int) (nccl.DevicePtr, error) {
	if bytes <= s.cap {
		return s.ptr, nil
	}
	if err := s.free(); err != nil {
		return 0, err
	}
	p, err := nccl.Malloc(bytes)
	if err != nil {
		return 0, err
	}
	s.ptr, s.cap = p, bytes
	return p, nil
}

func (s *staging) free() error {
	if s.ptr == 0 {
		return nil
	}
	p := s.ptr
	s.ptr, s.cap = 0, 0
	return nccl.Free(p)
}

// AllReduce reduces buf across all ranks with op, in place, through a
// device staging buffer (two host/device copies per call).
func (g *Group) AllReduce(ctx context.Context, buf []float32, op collective.ReduceOp) error {
	return allReduceHost(ctx, g, buf, op)
}

// AllReduceFloat64 is AllReduce for float64.
func (g *Group) AllReduceFloat64(ctx context.Context, buf []float64, op collective.ReduceOp) error {
	return allReduceHost(ctx, g, buf, op)
}

func allReduceHost[T float32 | float64](ctx context.Context, g *Group, buf []T, op collective.ReduceOp) error {
	dt := nccl.DataTypeOf[T]()
	red, scale, err := g.redOp("allreduce", op)
	if err != nil || len(buf) == 0 {
		return g.precheck(ctx, "allreduce", err)
	}
	return g.do(ctx, "allreduce", len(buf), dt, func(s nccl.Stream) error {
		a, err := g.stage[0].ensure(len(buf) * dt.Size())
		if err != nil {
			return err
		}
		if err := nccl.CopyToDevice(a, buf); err != nil {
			return err
		}
		return g.comm.AllReduce(a, a, len(buf), dt, red, s)
	}, func() error {
		if err := nccl.CopyFromDevice(buf, g.stage[0].ptr); err != nil {
			return err
		}
		scaleBy(buf, scale)
		return nil
	})
}

// AllGather concatenates send from every rank, in rank order, into recv.
func (g *Group) AllGather(ctx context.Context, send, recv []float32) error {
	if len(recv) != g.cfg.Size*len(send) {
		return fmt.Errorf("%w: allgather on rank %d: len(recv) %d != size %d × len(send) %d",
			collective.ErrConfig, g.cfg.Rank, len(recv), g.cfg.Size, len(send))
	}
	if len(send) == 0 {
		return g.precheck(ctx, "allgather", nil)
	}
	return g.do(ctx, "allgather", len(send), nccl.Float32, func(s nccl.Stream) error {
		a, b, err := g.pair(len(send)*4, len(recv)*4)
		if err != nil {
			return err
		}
		if err := nccl.CopyToDevice(a, send); err != nil {
			return err
		}
		return g.comm.AllGather(a, b, len(send), nccl.Float32, s)
	}, func() error { return nccl.CopyFromDevice(recv, g.stage[1].ptr) })
}

// Broadcast copies root's buf into every other rank's buf, byte for byte
// (ncclBroadcast of uint8 through a device staging buffer;
// collective.BroadcastSlice moves any element type).
func (g *Group) Broadcast(ctx context.Context, buf []byte, root int) error {
	if root < 0 || root >= g.cfg.Size {
		return fmt.Errorf("%w: broadcast on rank %d: root %d out of range for world size %d",
			collective.ErrConfig, g.cfg.Rank, root, g.cfg.Size)
	}
	if len(buf) == 0 {
		return g.precheck(ctx, "broadcast", nil)
	}
	return g.do(ctx, "broadcast", len(buf), nccl.Uint8, func(s nccl.Stream) error {
		a, err := g.stage[0].ensure(len(buf))
		if err != nil {
			return err
		}
		if g.cfg.Rank == root {
			if err := nccl.CopyToDevice(a, buf); err != nil {
				return err
			}
		}
		return g.comm.Broadcast(a, a, len(buf), nccl.Uint8, root, s)
	}, func() error { return nccl.CopyFromDevice(buf, g.stage[0].ptr) })
}

// ReduceScatter reduces send (Size() blocks of len(recv)) across ranks
// with op and leaves block Rank() of the result in recv.
func (g *Group) ReduceScatter(ctx context.Context, send, recv []float32, op collective.ReduceOp) error {
	if len(send) != g.cfg.Size*len(recv) {
		return fmt.Errorf("%w: reducescatter on rank %d: len(send) %d != size %d × len(recv) %d",
			collective.ErrConfig, g.cfg.Rank, len(send), g.cfg.Size, len(recv))
	}
	red, scale, err := g.redOp("reducescatter", op)
	if err != nil || len(recv) == 0 {
		return g.precheck(ctx, "reducescatter", err)
	}
	return g.do(ctx, "reducescatter", len(recv), nccl.Float32, func(s nccl.Stream) error {
		a, b, err := g.pair(len(send)*4, len(recv)*4)
		if err != nil {
			return err
		}
		if err := nccl.CopyToDevice(a, send); err != nil {
			return err
		}
		return g.comm.ReduceScatter(a, b, len(recv), nccl.Float32, red, s)
	}, func() error {
		if err := nccl.CopyFromDevice(recv, g.stage[1].ptr); err != nil {
			return err
		}
		scaleBy(recv, scale)
		return nil
	})
}

// Barrier returns once every rank has entered it: a one-element all-reduce.
func (g *Group) Barrier(ctx context.Context) error {
	one := []float32{1}
	return g.do(ctx, "barrier", 1, nccl.Float32, func(s nccl.Stream) error {
		a, err := g.stage[0].ensure(4)
		if err != nil {
			return err
		}
		if err := nccl.CopyToDevice(a, one); err != nil {
			return err
		}
		return g.comm.AllReduce(a, a, 1, nccl.Float32, nccl.Sum, s)
	}, nil)
}

// AllReduceRaw reduces n elements of dt at ptr in place, with no copies:
// ptr must be CUDA device memory on the group's device (a CUDA tensor's
// data pointer). The collective runs on the group's own stream, so the
// caller must have finished writing the data (synchronise the stream that
// produced it) before the call; the data is reduced when it returns.
// AllReduceRawOrdered orders the collective by events instead, which is the
// path the trainer uses for gradients on GPU ranks. Avg with NCCL older
// than 2.10 is rejected with collective.ErrConfig, since scaling would need
// a kernel.
func (g *Group) AllReduceRaw(ctx context.Context, ptr unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp) error {
	ndt, red, err := g.rawArgs("allreduce (raw)", ptr, n, dt, op)
	if err != nil || n == 0 {
		return g.precheck(ctx, "allreduce (raw)", err)
	}
	p := nccl.DevicePtr(ptr)
	return g.do(ctx, "allreduce (raw)", n, ndt, func(s nccl.Stream) error {
		return g.comm.AllReduce(p, p, n, ndt, red, s)
	}, nil)
}

// AllGatherRaw concatenates n elements of dt at send from every rank, in
// rank order, into the Size()·n elements at recv, with no copies: both must
// be CUDA device memory on the group's device (CUDA tensors' data). As with
// AllReduceRaw the caller must have finished writing send, and recv is
// filled when the call returns. Uint8 moves any element type.
func (g *Group) AllGatherRaw(ctx context.Context, send, recv unsafe.Pointer, n int, dt collective.DType) error {
	const name = "allgather (raw)"
	ndt, err := g.gatherArgs(name, send, recv, n, dt)
	if err != nil || n == 0 {
		return g.precheck(ctx, name, err)
	}
	s, r := nccl.DevicePtr(send), nccl.DevicePtr(recv)
	return g.do(ctx, name, n, ndt, func(st nccl.Stream) error {
		return g.comm.AllGather(s, r, n, ndt, st)
	}, nil)
}

// ReduceScatterRaw reduces Size()·n elements of dt at send across ranks with
// op and leaves block Rank() of the result in the n elements at recv, with no
// copies: both must be CUDA device memory on the group's device. As with
// AllReduceRaw the caller must have finished writing send, and recv is filled
// when the call returns.
func (g *Group) ReduceScatterRaw(ctx context.Context, send, recv unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp) error {
	const name = "reducescatter (raw)"
	ndt, red, err := g.scatterArgs(name, send, recv, n, dt, op)
	if err != nil || n == 0 {
		return g.precheck(ctx, name, err)
	}
	s, r := nccl.DevicePtr(send), nccl.DevicePtr(recv)
	return g.do(ctx, name, n, ndt, func(st nccl.Stream) error {
		return g.comm.ReduceScatter(s, r, n, ndt, red, st)
	}, nil)
}

// gatherArgs checks the arguments of a raw all-gather and maps dt to NCCL's.
func (g *Group) gatherArgs(name string, send, recv unsafe.Pointer, n int, dt collective.DType) (nccl.DataType, error) {
	ndt, ok := dataType(dt)
	if !ok || n < 0 || (n > 0 && (send == nil || recv == nil)) {
		return 0, fmt.Errorf("%w: %s on rank %d: %d elements of %v at %p into %p",
			collective.ErrConfig, name, g.cfg.Rank, n, dt, send, recv)
	}
	return ndt, nil
}

// scatterArgs checks the arguments of a raw reduce-scatter and maps them to NCCL's.
func (g *Group) scatterArgs(name string, send, recv unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp) (nccl.DataType, nccl.RedOp, error) {
	ndt, red, err := g.rawArgs(name, send, n, dt, op)
	if err == nil && n > 0 && recv == nil {
		err = fmt.Errorf("%w: %s on rank %d: %d elements into a nil pointer", collective.ErrConfig, name, g.cfg.Rank, n)
	}
	return ndt, red, err
}

// dataType maps dt to NCCL's.
func dataType(dt collective.DType) (nccl.DataType, bool) {
	switch dt {
	case collective.Float32:
		return nccl.Float32, true
	case collective.Float64:
		return nccl.Float64, true
	case collective.Uint8:
		return nccl.Uint8, true
	}
	return 0, false
}

// redOp maps op to NCCL's; scale is 1/Size when Avg is done as Sum on an
// NCCL without ncclAvg, else 1.
func (g *Group) redOp(name string, op collective.ReduceOp) (nccl.RedOp, float64, error) {
	switch op {
	case collective.Sum:
		return nccl.Sum, 1, nil
	case collective.Max:
		return nccl.Max, 1, nil
	case collective.Min:
		return nccl.Min, 1, nil
	case collective.Avg:
		if g.hasAvg {
			return nccl.Avg, 1, nil
		}
		return nccl.Sum, 1 / float64(g.cfg.Size), nil
	}
	return 0, 0, fmt.Errorf("%w: %s on rank %d: unknown op %v", collective.ErrConfig, name, g.cfg.Rank, op)
}

func scaleBy[T float32 | float64](v []T, s float64) {
	if s == 1 {
		return
	}
	for i := range v {
		v[i] = T(float64(v[i]) * s)
	}
}

// pair sizes both staging buffers.
func (g *Group) pair(aBytes, bBytes int) (a, b nccl.DevicePtr, err error) {
	if a, err = g.stage[0].ensure(aBytes); err != nil {
		return 0, 0, err
	}
	b, err = g.stage[1].ensure(bBytes)
	return a, b, err
}

// precheck returns err, or the group's state for a call that has nothing
// to send (every rank skips it alike).
func (g *Group) precheck(ctx context.Context, op string, err error) error {
	if err != nil {
		return err
	}
	if err := g.life.Begin(ctx, op); err != nil {
		return err
	}
	g.life.End(nil)
	return nil
}

// do runs one collective on the worker under the nccl package's
// Watchdog.Run: enqueue (copies in and the NCCL call, which a separate
// goroutine aborts if it blocks past the timeout), the wait, then finish
// (copies out, or ordering the caller's stream after the collective). The
// caller waits for the worker at most Timeout + grace. A failure breaks the
// group.
func (g *Group) do(ctx context.Context, op string, count int, dt nccl.DataType,
	enqueue func(nccl.Stream) error, finish func() error) error {
	if err := g.life.Begin(ctx, op); err != nil {
		return err
	}
	aborted := g.life.Aborted()
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(aborted, func() { cancel(context.Cause(aborted)) })
	defer stop()

	start := time.Now()
	errc := make(chan error, 1)
	err := g.exec(g.cfg.Timeout+g.grace, func() {
		w := nccl.Watchdog{Rank: g.cfg.Rank, Timeout: g.cfg.Timeout}
		err := w.Run(wctx, op, g.comm.Pending(g.stream), func() error { return enqueue(g.stream) })
		var ae *nccl.AbortError
		switch {
		case err != nil && (errors.As(err, &ae) || wctx.Err() != nil):
			// Aborted, or not started because the call was cancelled.
		case err != nil:
			err = fmt.Errorf("%w: enqueue: %w", ErrDevice, err)
		case finish != nil:
			if err = finish(); err != nil {
				err = fmt.Errorf("%w: after the collective: %w", ErrDevice, err)
			}
		}
		errc <- err
	})
	if err == nil {
		err = <-errc
	}
	if err != nil {
		err = g.failure(ctx, op, count, dt, time.Since(start), err)
	}
	g.life.End(err)
	return err
}

// failure classifies err with a collective sentinel and names the call.
func (g *Group) failure(ctx context.Context, op string, count int, dt nccl.DataType, took time.Duration, err error) error {
	desc := fmt.Sprintf("%s on rank %d of %d (%d %s, after %s, timeout %s)",
		op, g.cfg.Rank, g.cfg.Size, count, dt, took.Round(time.Millisecond), g.cfg.Timeout)
	var sentinel error
	switch {
	case errors.Is(err, ErrDevice) || errors.Is(err, errWedged):
		sentinel = nil // already classified
	case g.life.Aborted().Err() != nil:
		sentinel = collective.ErrAborted
	case errors.Is(err, nccl.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		sentinel = collective.ErrTimeout
	case ctx.Err() != nil:
		sentinel = collective.ErrAborted
	default:
		sentinel = collective.ErrPeerLost // stream or communicator failure
	}
	if sentinel == nil {
		return fmt.Errorf("ncclpg: %s: %w", desc, err)
	}
	return fmt.Errorf("%w: %s: %w", sentinel, desc, err)
}
