package main

import (
	"fmt"
	"time"

	"github.com/lrtrain/lrtrain/nccl"
)

// warmup iterations run before each timed batch.
const warmup = 5

// busFactor converts algorithm bandwidth to bus bandwidth as nccl-tests
// does (its PERFORMANCE.md): the share of the data each rank's link
// carries for an optimal algorithm.
func busFactor(op string, nranks int) float64 {
	n := float64(nranks)
	switch op {
	case "allreduce":
		return 2 * (n - 1) / n
	case "allgather", "reducescatter":
		return (n - 1) / n
	}
	return 1 // broadcast, reduce
}

// layout gives, for a message of size bytes as nccl-tests counts it, the
// element count passed to NCCL and the send and receive buffer sizes:
// allgather's size is the gathered output, reducescatter's the input.
func layout(op string, size, nranks int) (count, sendBytes, recvBytes int) {
	const f32 = 4
	switch op {
	case "allgather":
		count = size / f32 / nranks
		return count, count * f32, count * f32 * nranks
	case "reducescatter":
		count = size / f32 / nranks
		return count, count * f32 * nranks, count * f32
	}
	count = size / f32
	return count, count * f32, count * f32
}

// bandwidth times each collective at each size: warmup runs, then iters
// enqueued back to back and waited for once, so that the watchdog's
// polling does not count; time is per iteration, algbw = size / time and
// busbw = algbw × busFactor. Every rank prints its own table line.
func (c *checker) bandwidth() {
	for _, size := range c.cfg.sizes {
		for _, op := range []string{"allreduce", "allgather", "reducescatter", "broadcast"} {
			c.timeOne(op, size)
		}
	}
}

func (c *checker) timeOne(op string, size int) {
	name := fmt.Sprintf("bandwidth %s %d B", op, size)
	count, sendBytes, recvBytes := layout(op, size, c.cfg.nranks)
	if count < 1 {
		fmt.Fprintf(c.w, "SKIP %s: smaller than one float32 per rank\n", name)
		return
	}
	bytes := count * 4
	if op == "allgather" || op == "reducescatter" {
		bytes *= c.cfg.nranks
	}
	send, err := nccl.Malloc(sendBytes)
	if err != nil {
		c.fail(name, "%v", err)
		return
	}
	defer nccl.Free(send)
	recv, err := nccl.Malloc(recvBytes)
	if err != nil {
		c.fail(name, "%v", err)
		return
	}
	defer nccl.Free(recv)
	enqueue := func() error {
		switch op {
		case "allreduce":
			return c.comm.AllReduce(send, recv, count, nccl.Float32, nccl.Sum, c.stream)
		case "allgather":
			return c.comm.AllGather(send, recv, count, nccl.Float32, c.stream)
		case "reducescatter":
			return c.comm.ReduceScatter(send, recv, count, nccl.Float32, nccl.Sum, c.stream)
		}
		return c.comm.Broadcast(send, recv, count, nccl.Float32, 0, c.stream)
	}
	// batch enqueues k collectives back to back. A non-blocking
	// communicator may answer ncclInProgress (the call is accepted): Run
	// then settles it and waits, and the batch goes on from there.
	batch := func(k int) error {
		done := 0
		for done < k {
			if err := c.runWait(name, c.cfg.timeout, func() error {
				for done < k {
					done++
					if err := enqueue(); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	}
	iters := max(c.cfg.iters, 1)
	if err := batch(warmup); err != nil {
		c.fail(name, "warm-up: %v", err)
		return
	}
	start := time.Now()
	if err := batch(iters); err != nil {
		c.fail(name, "%v", err)
		return
	}
	per := time.Since(start) / time.Duration(iters)
	alg := float64(bytes) / per.Seconds() / 1e9
	fmt.Fprintf(c.w, "BW %-13s size=%d count=%d time=%.1fus algbw=%.3fGB/s busbw=%.3fGB/s\n",
		op, bytes, count, float64(per.Nanoseconds())/1e3, alg, alg*busFactor(op, c.cfg.nranks))
}
