package nccl

import (
	"fmt"
)

// DevicePtr is the address of CUDA device memory (from Malloc, or from a
// tensor's data pointer). Go never dereferences it.
type DevicePtr uintptr

// Stream is a cudaStream_t; 0 is the legacy default stream.
type Stream uintptr

// All collectives below are asynchronous: they enqueue work on stream s and
// return. Counts are in elements of dt, not bytes. Errors wrap the Result
// and name the collective and the rank.

// AllReduce reduces count elements of send across all ranks with op and
// leaves the result in recv on every rank. send == recv is allowed.
func (c *Comm) AllReduce(send, recv DevicePtr, count int, dt DataType, op RedOp, s Stream) error {
	return c.enqueue("allreduce", count, dt, op, 0, func(sym *symbols, h uintptr) int32 {
		return cAllReduce(sym.allReduce, uintptr(send), uintptr(recv), count, int32(dt), int32(op), h, uintptr(s))
	})
}

// Reduce reduces count elements of send across all ranks with op into recv
// on rank root only.
func (c *Comm) Reduce(send, recv DevicePtr, count int, dt DataType, op RedOp, root int, s Stream) error {
	return c.enqueue("reduce", count, dt, op, root, func(sym *symbols, h uintptr) int32 {
		return cReduce(sym.reduce, uintptr(send), uintptr(recv), count, int32(dt), int32(op), root, h, uintptr(s))
	})
}

// Broadcast copies count elements of send on rank root into recv on every
// rank (send is read on root only).
func (c *Comm) Broadcast(send, recv DevicePtr, count int, dt DataType, root int, s Stream) error {
	return c.enqueue("broadcast", count, dt, Sum, root, func(sym *symbols, h uintptr) int32 {
		return cBroadcast(sym.broadcast, uintptr(send), uintptr(recv), count, int32(dt), root, h, uintptr(s))
	})
}

// AllGather concatenates sendCount elements from every rank, in rank order,
// into recv, which holds Size()*sendCount elements.
func (c *Comm) AllGather(send, recv DevicePtr, sendCount int, dt DataType, s Stream) error {
	return c.enqueue("allgather", sendCount, dt, Sum, 0, func(sym *symbols, h uintptr) int32 {
		return cAllGather(sym.allGather, uintptr(send), uintptr(recv), sendCount, int32(dt), h, uintptr(s))
	})
}

// ReduceScatter reduces Size()*recvCount elements of send across ranks with
// op and leaves block r (recvCount elements) of the result in recv on rank r.
func (c *Comm) ReduceScatter(send, recv DevicePtr, recvCount int, dt DataType, op RedOp, s Stream) error {
	return c.enqueue("reducescatter", recvCount, dt, op, 0, func(sym *symbols, h uintptr) int32 {
		return cAllReduce(sym.reduceScatter, uintptr(send), uintptr(recv), recvCount, int32(dt), int32(op), h, uintptr(s))
	})
}

// enqueue validates the arguments that Go can check, then runs call with
// the live handle.
func (c *Comm) enqueue(name string, count int, dt DataType, op RedOp, root int,
	call func(sym *symbols, h uintptr) int32) error {
	switch {
	case count < 0:
		return fmt.Errorf("nccl: %s (rank %d): negative count %d: %w", name, c.rank, count, InvalidArgument)
	case !dt.Valid():
		return fmt.Errorf("nccl: %s (rank %d): %v: %w", name, c.rank, dt, InvalidArgument)
	case !op.Valid():
		return fmt.Errorf("nccl: %s (rank %d): %v: %w", name, c.rank, op, InvalidArgument)
	case root < 0 || root >= c.nranks:
		return fmt.Errorf("nccl: %s (rank %d): root %d of %d: %w", name, c.rank, root, c.nranks, InvalidArgument)
	}
	h, err := c.handle()
	if err != nil {
		return fmt.Errorf("nccl: %s (rank %d): %w", name, c.rank, err)
	}
	var code int32
	if err := with(func(sym *symbols) error { code = call(sym, h); return nil }); err != nil {
		return err
	}
	if err := resultErr(code); err != nil {
		return fmt.Errorf("nccl: %s %d×%v (rank %d): %w", name, count, dt, c.rank, err)
	}
	return nil
}
