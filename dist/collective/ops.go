package collective

import (
	"context"
	"fmt"
	"unsafe"
)

// AllReduce reduces buf across all ranks with op, in place.
func (g *Gloo) AllReduce(ctx context.Context, buf []float32, op ReduceOp) error {
	return g.AllReduceRaw(ctx, ptr(buf), len(buf), Float32, op)
}

// AllReduceFloat64 reduces buf across all ranks with op, in place.
func (g *Gloo) AllReduceFloat64(ctx context.Context, buf []float64, op ReduceOp) error {
	return g.AllReduceRaw(ctx, ptr(buf), len(buf), Float64, op)
}

// AllReduceRaw reduces n elements of dt at p across all ranks, in place.
// p may point to C memory (a tensor's data); it is used only during the
// call.
func (g *Gloo) AllReduceRaw(ctx context.Context, p unsafe.Pointer, n int, dt DType, op ReduceOp) error {
	if err := g.check("allreduce", n, dt, op); err != nil {
		return err
	}
	if p == nil && n > 0 {
		return fmt.Errorf("%w: allreduce of %d elements at a nil pointer", ErrConfig, n)
	}
	if n == 0 {
		return nil
	}
	return g.do(ctx, call{op: "allreduce(" + op.String() + ")", count: n, dt: dt,
		run: func(nat *native, ms int64) nativeStatus { return nat.allReduce(p, n, dt, op, ms) }})
}

// AllGather concatenates send from every rank, in rank order, into recv.
func (g *Gloo) AllGather(ctx context.Context, send, recv []float32) error {
	n := len(send)
	if err := g.check("allgather", n, Float32, Sum); err != nil {
		return err
	}
	if len(recv) != n*g.cfg.Size {
		return fmt.Errorf("%w: allgather of %d elements into %d, want %d x %d",
			ErrConfig, n, len(recv), g.cfg.Size, n)
	}
	if n == 0 {
		return nil
	}
	return g.do(ctx, call{op: "allgather", count: n, dt: Float32,
		run: func(nat *native, ms int64) nativeStatus {
			return nat.allGather(ptr(send), ptr(recv), n, Float32, ms)
		}})
}

// Broadcast copies root's buf into every other rank's buf, byte for byte
// (Gloo's binomial tree; BroadcastSlice moves any element type).
func (g *Gloo) Broadcast(ctx context.Context, buf []byte, root int) error {
	n := len(buf)
	if root < 0 || root >= g.cfg.Size {
		return fmt.Errorf("%w: broadcast from root %d in a group of %d", ErrConfig, root, g.cfg.Size)
	}
	if n == 0 {
		return nil
	}
	return g.do(ctx, call{op: fmt.Sprintf("broadcast(root %d)", root), count: n, dt: Uint8,
		run: func(nat *native, ms int64) nativeStatus { return nat.broadcast(ptr(buf), n, Uint8, root, ms) }})
}

// ReduceScatter reduces send (Size() blocks of len(recv) elements) across
// ranks with op and leaves block Rank() of the result in recv. It is a ring
// over Gloo's transport: each rank sends and receives (Size()-1)/Size() of
// send, half of what an all-reduce moves.
func (g *Gloo) ReduceScatter(ctx context.Context, send, recv []float32, op ReduceOp) error {
	n := len(recv)
	if err := g.check("reducescatter", n, Float32, op); err != nil {
		return err
	}
	if len(send) != n*g.cfg.Size {
		return fmt.Errorf("%w: reducescatter of %d elements into %d, want %d x %d",
			ErrConfig, len(send), n, g.cfg.Size, n)
	}
	if n == 0 {
		return nil
	}
	return g.do(ctx, call{op: "reducescatter(" + op.String() + ")", count: n, dt: Float32,
		run: func(nat *native, ms int64) nativeStatus {
			return nat.reduceScatter(ptr(send), ptr(recv), n, Float32, op, ms)
		}})
}

// Barrier returns once every rank has entered it.
func (g *Gloo) Barrier(ctx context.Context) error {
	return g.do(ctx, call{op: "barrier", dt: Float32,
		run: func(nat *native, ms int64) nativeStatus { return nat.barrier(ms) }})
}

// check validates what every collective shares.
func (g *Gloo) check(name string, n int, dt DType, op ReduceOp) error {
	switch {
	case n < 0:
		return fmt.Errorf("%w: %s of %d elements", ErrConfig, name, n)
	case !dt.valid():
		return fmt.Errorf("%w: %s of unsupported %s", ErrConfig, name, dt)
	case !op.valid():
		return fmt.Errorf("%w: %s with unknown %s", ErrConfig, name, op)
	}
	return nil
}
