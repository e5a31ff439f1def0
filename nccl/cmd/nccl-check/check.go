package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/lrtrain/lrtrain/nccl"
)

type config struct {
	device       int
	nprocs       int
	rank, nranks int
	exchange     string
	count        int
	timeout      time.Duration
	abortTimeout time.Duration
	sizes        []int
	iters        int
	exe          string // the binary the launcher starts (default: this one)
}

// Exit codes.
const (
	exitPass  = 0
	exitFail  = 1
	exitSetup = 2
)

// checker runs collectives on one communicator and stream.
type checker struct {
	w      io.Writer
	cfg    config
	comm   *nccl.Comm
	stream nccl.Stream
	failed int
}

// run is one rank: it loads the libraries, joins the communicator and runs
// every check, printing one line per check.
func run(w io.Writer, cfg config) int {
	runtime.LockOSThread() // CUDA's current device belongs to the OS thread
	defer runtime.UnlockOSThread()
	cfg.count, cfg.nranks, cfg.rank = max(cfg.count, 1), max(cfg.nranks, 1), max(cfg.rank, 0)
	if err := nccl.Init(); err != nil {
		fmt.Fprintf(w, "FAIL init: %v\n", err)
		return exitSetup
	}
	defer nccl.Shutdown()
	ncclPath, cudartPath := nccl.LibraryPaths()
	version, err := nccl.GetVersion()
	if err != nil {
		fmt.Fprintf(w, "FAIL version: %v\n", err)
		return exitSetup
	}
	fmt.Fprintf(w, "INFO nccl %s from %s; cudart from %s\n", nccl.VersionString(version), ncclPath, cudartPath)
	devices, err := nccl.DeviceCount()
	if err != nil {
		fmt.Fprintf(w, "FAIL device count: %v\n", err)
		return exitSetup
	}
	fmt.Fprintf(w, "INFO %d CUDA device(s); rank %d of %d on device %d\n", devices, cfg.rank, cfg.nranks, cfg.device)
	if err := nccl.SetDevice(cfg.device); err != nil {
		fmt.Fprintf(w, "FAIL set device: %v\n", err)
		return exitSetup
	}
	stream, err := nccl.StreamCreate()
	if err != nil {
		fmt.Fprintf(w, "FAIL stream: %v\n", err)
		return exitSetup
	}
	defer nccl.StreamDestroy(stream)
	id, err := exchangeID(cfg)
	if err != nil {
		fmt.Fprintf(w, "FAIL unique id: %v\n", err)
		return exitSetup
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	comm, err := nccl.CommInit(ctx, cfg.nranks, id, cfg.rank, cfg.timeout)
	cancel()
	if err != nil {
		fmt.Fprintf(w, "FAIL comm init: %v\n", err)
		return exitSetup
	}
	fmt.Fprintf(w, "INFO communicator non-blocking: %v\n", comm.NonBlocking())
	c := &checker{w: w, cfg: cfg, comm: comm, stream: stream}
	c.checkComm()
	c.checkCollectives()
	c.bandwidth()
	if c.checkAbort() {
		if err := comm.Destroy(); err != nil {
			c.fail("comm destroy", "%v", err)
		}
	}
	if c.failed > 0 {
		fmt.Fprintf(w, "FAIL %d check(s) failed\n", c.failed)
		return exitFail
	}
	fmt.Fprintln(w, "PASS all checks")
	return exitPass
}

func (c *checker) pass(name, format string, args ...any) {
	fmt.Fprintf(c.w, "PASS %s: %s\n", name, fmt.Sprintf(format, args...))
}

func (c *checker) fail(name, format string, args ...any) {
	c.failed++
	fmt.Fprintf(c.w, "FAIL %s: %s\n", name, fmt.Sprintf(format, args...))
}

func (c *checker) checkComm() {
	count, err1 := c.comm.Count()
	dev, err2 := c.comm.CuDevice()
	rank, err3 := c.comm.UserRank()
	got := fmt.Sprintf("count=%d device=%d rank=%d", count, dev, rank)
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		c.fail("comm queries", "%v %v %v", err1, err2, err3)
	case count != c.cfg.nranks || dev != c.cfg.device || rank != c.cfg.rank:
		c.fail("comm queries", "got %s want count=%d device=%d rank=%d", got, c.cfg.nranks, c.cfg.device, c.cfg.rank)
	default:
		c.pass("comm queries", "%s", got)
	}
}

// runWait enqueues through the watchdog, which aborts the communicator if
// the enqueue or the wait overruns the timeout.
func (c *checker) runWait(op string, timeout time.Duration, enqueue func() error) error {
	w := nccl.Watchdog{Rank: c.cfg.rank, Timeout: timeout}
	return w.Run(context.Background(), op, c.comm.Pending(c.stream), enqueue)
}

// checkAbort leaves a collective unjoined by rank 0: every other rank must
// see it aborted within its timeout plus abortBound; rank 0 aborts its own
// communicator. It reports whether the communicator is still healthy (one
// rank: the check needs a peer and is skipped).
func (c *checker) checkAbort() bool {
	const name = "abort of a collective a peer never joins"
	if c.cfg.nranks < 2 {
		fmt.Fprintf(c.w, "SKIP %s: needs 2 ranks\n", name)
		return true
	}
	if c.cfg.rank == 0 {
		if err := c.comm.Abort(); err != nil {
			c.fail(name, "rank 0's own abort: %v", err)
			return false
		}
		c.pass(name, "rank 0 stays out and aborts its communicator")
		return false
	}
	buf, err := nccl.Malloc(4)
	if err != nil {
		c.fail(name, "%v", err)
		return true
	}
	defer nccl.Free(buf)
	start := time.Now()
	err = c.runWait("allreduce without rank 0", c.cfg.abortTimeout, func() error {
		return c.comm.AllReduce(buf, buf, 1, nccl.Float32, nccl.Sum, c.stream)
	})
	took := time.Since(start)
	limit := c.cfg.abortTimeout + abortBound
	switch {
	case err == nil:
		c.fail(name, "the collective completed without rank 0")
		return true
	case !isTimeout(err):
		c.fail(name, "want a timeout abort, got %v", err)
	case took > limit:
		c.fail(name, "aborted after %v, want within %v", took.Round(time.Millisecond), limit)
	default:
		c.pass(name, "aborted after %v (timeout %v, bound %v)", took.Round(time.Millisecond), c.cfg.abortTimeout, limit)
	}
	return false
}

// abortBound is the stated bound past the timeout for the abort check: the
// watchdog's poll interval plus the time NCCL takes to return from a call
// and tear the communicator down once aborted (proxy threads, network
// connections), which is well under a second on a healthy node.
const abortBound = 5 * time.Second

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
