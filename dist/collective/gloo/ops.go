package gloo

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// AllReduce reduces buf across all ranks with op, in place.
func (g *Group) AllReduce(ctx context.Context, buf []float32, op collective.ReduceOp) error {
	return g.AllReduceRaw(ctx, ptr(buf), len(buf), collective.Float32, op)
}

// AllReduceFloat64 reduces buf across all ranks with op, in place.
func (g *Group) AllReduceFloat64(ctx context.Context, buf []float64, op collective.ReduceOp) error {
	return g.AllReduceRaw(ctx, ptr(buf), len(buf), collective.Float64, op)
}

// AllReduceRaw reduces n elements of dt at p across all ranks, in place.
// p may point to C memory (a tensor's data); it is used only during the
// call.
func (g *Group) AllReduceRaw(ctx context.Context, p unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp) error {
	if err := g.check("allreduce", n, dt, op); err != nil {
		return err
	}
	if p == nil && n > 0 {
		return fmt.Errorf("%w: allreduce of %d elements at a nil pointer", collective.ErrConfig, n)
	}
	if n == 0 {
		return nil
	}
	return g.do(ctx, call{op: "allreduce(" + op.String() + ")", count: n, dt: dt,
		run: func(nat *native, ms int64) nativeStatus {
			if st, ok := g.viaShm(ms, func(s *shm, dl time.Time) nativeStatus { return s.allReduce(p, n, dt, op, dl) }); ok {
				return st
			}
			return nat.allReduce(p, n, dt, op, ms)
		}})
}

// AllGather concatenates send from every rank, in rank order, into recv.
func (g *Group) AllGather(ctx context.Context, send, recv []float32) error {
	n := len(send)
	if err := g.check("allgather", n, collective.Float32, collective.Sum); err != nil {
		return err
	}
	if len(recv) != n*g.cfg.Size {
		return fmt.Errorf("%w: allgather of %d elements into %d, want %d x %d",
			collective.ErrConfig, n, len(recv), g.cfg.Size, n)
	}
	if n == 0 {
		return nil
	}
	return g.do(ctx, call{op: "allgather", count: n, dt: collective.Float32,
		run: func(nat *native, ms int64) nativeStatus {
			return g.allGather(nat, ptr(send), ptr(recv), n, collective.Float32, ms)
		}})
}

// AllGatherRaw concatenates n elements of dt at send from every rank, in rank
// order, into the Size()·n elements at recv. Both may point to C memory (a
// CPU tensor's data); they are used only during the call. Uint8 moves any
// element type byte for byte.
func (g *Group) AllGatherRaw(ctx context.Context, send, recv unsafe.Pointer, n int, dt collective.DType) error {
	if n < 0 || dt < collective.Float32 || dt > collective.Uint8 {
		return fmt.Errorf("%w: allgather (raw) of %d elements of %s", collective.ErrConfig, n, dt)
	}
	if n == 0 {
		return nil
	}
	if send == nil || recv == nil {
		return fmt.Errorf("%w: allgather (raw) of %d elements at a nil pointer", collective.ErrConfig, n)
	}
	return g.do(ctx, call{op: "allgather (raw)", count: n, dt: dt,
		run: func(nat *native, ms int64) nativeStatus { return g.allGather(nat, send, recv, n, dt, ms) }})
}

// Broadcast copies root's buf into every other rank's buf, byte for byte
// (Gloo's binomial tree; BroadcastSlice moves any element type).
func (g *Group) Broadcast(ctx context.Context, buf []byte, root int) error {
	n := len(buf)
	if root < 0 || root >= g.cfg.Size {
		return fmt.Errorf("%w: broadcast from root %d in a group of %d", collective.ErrConfig, root, g.cfg.Size)
	}
	if n == 0 {
		return nil
	}
	return g.do(ctx, call{op: fmt.Sprintf("broadcast(root %d)", root), count: n, dt: collective.Uint8,
		run: func(nat *native, ms int64) nativeStatus {
			if st, ok := g.viaShm(ms, func(s *shm, dl time.Time) nativeStatus { return s.broadcast(ptr(buf), n, root, dl) }); ok {
				return st
			}
			return nat.broadcast(ptr(buf), n, collective.Uint8, root, ms)
		}})
}

// ReduceScatter reduces send (Size() blocks of len(recv) elements) across
// ranks with op and leaves block Rank() of the result in recv. It is a ring
// over Gloo's transport: each rank sends and receives (Size()-1)/Size() of
// send, half of what an all-reduce moves, in 1 MiB segments. The group keeps
// the ring's receive and running-sum buffers (one block, a second from 3
// ranks, a third from 4) between calls, until Close.
func (g *Group) ReduceScatter(ctx context.Context, send, recv []float32, op collective.ReduceOp) error {
	n := len(recv)
	if err := g.check("reducescatter", n, collective.Float32, op); err != nil {
		return err
	}
	if len(send) != n*g.cfg.Size {
		return fmt.Errorf("%w: reducescatter of %d elements into %d, want %d x %d",
			collective.ErrConfig, len(send), n, g.cfg.Size, n)
	}
	if n == 0 {
		return nil
	}
	return g.do(ctx, call{op: "reducescatter(" + op.String() + ")", count: n, dt: collective.Float32,
		run: func(nat *native, ms int64) nativeStatus {
			return g.reduceScatter(nat, ptr(send), ptr(recv), n, collective.Float32, op, ms)
		}})
}

// ReduceScatterRaw is ReduceScatter on n elements of dt per rank at pointers
// that may point to C memory (a CPU tensor's data): send holds Size()·n, recv
// receives block Rank() of the reduction. Both are used only during the call.
func (g *Group) ReduceScatterRaw(ctx context.Context, send, recv unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp) error {
	if err := g.check("reducescatter (raw)", n, dt, op); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if send == nil || recv == nil {
		return fmt.Errorf("%w: reducescatter (raw) of %d elements at a nil pointer", collective.ErrConfig, n)
	}
	return g.do(ctx, call{op: "reducescatter (raw, " + op.String() + ")", count: n, dt: dt,
		run: func(nat *native, ms int64) nativeStatus { return g.reduceScatter(nat, send, recv, n, dt, op, ms) }})
}

// Barrier returns once every rank has entered it.
func (g *Group) Barrier(ctx context.Context) error {
	return g.do(ctx, call{op: "barrier", dt: collective.Float32,
		run: func(nat *native, ms int64) nativeStatus {
			if st, ok := g.viaShm(ms, func(s *shm, dl time.Time) nativeStatus { return s.barrier(dl) }); ok {
				return st
			}
			return nat.barrier(ms)
		}})
}

// allGather runs an all-gather of n elements of dt per rank on the shared
// memory transport when the group has one, else through Gloo.
func (g *Group) allGather(nat *native, send, recv unsafe.Pointer, n int, dt collective.DType, ms int64) nativeStatus {
	bytes := n * dt.Size()
	if st, ok := g.viaShm(ms, func(s *shm, dl time.Time) nativeStatus { return s.allGather(send, recv, bytes, dl) }); ok {
		return st
	}
	return nat.allGather(send, recv, n, dt, ms)
}

// reduceScatter is allGather's counterpart for a reduce-scatter (each rank
// contributes Size()·n elements).
func (g *Group) reduceScatter(nat *native, send, recv unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp, ms int64) nativeStatus {
	if st, ok := g.viaShm(ms, func(s *shm, dl time.Time) nativeStatus {
		return s.reduceScatter(send, recv, n, dt, op, dl)
	}); ok {
		return st
	}
	return nat.reduceScatter(send, recv, n, dt, op, ms)
}

// check validates what every collective shares.
func (g *Group) check(name string, n int, dt collective.DType, op collective.ReduceOp) error {
	switch {
	case n < 0:
		return fmt.Errorf("%w: %s of %d elements", collective.ErrConfig, name, n)
	case !dt.Reducible():
		return fmt.Errorf("%w: %s of unsupported %s", collective.ErrConfig, name, dt)
	case !op.Valid():
		return fmt.Errorf("%w: %s with unknown %s", collective.ErrConfig, name, op)
	}
	return nil
}
