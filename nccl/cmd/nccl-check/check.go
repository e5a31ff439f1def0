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
	device  int
	count   int
	timeout time.Duration
}

// Exit codes.
const (
	exitPass  = 0
	exitFail  = 1
	exitSetup = 2
)

// sentinel fills receive buffers, including two elements past the end, so
// that a collective writing too much or too little shows.
const sentinel = 99

// checker runs collectives on one communicator and stream.
type checker struct {
	w      io.Writer
	cfg    config
	comm   *nccl.Comm
	stream nccl.Stream
	failed int
}

func run(w io.Writer, cfg config) int {
	runtime.LockOSThread() // CUDA's current device belongs to the OS thread
	defer runtime.UnlockOSThread()
	if cfg.count < 1 {
		cfg.count = 1
	}
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
	fmt.Fprintf(w, "INFO %d CUDA device(s); using device %d\n", devices, cfg.device)
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
	id, err := nccl.GetUniqueID()
	if err != nil {
		fmt.Fprintf(w, "FAIL unique id: %v\n", err)
		return exitSetup
	}
	comm, err := nccl.CommInitRank(1, id, 0)
	if err != nil {
		fmt.Fprintf(w, "FAIL comm init: %v\n", err)
		return exitSetup
	}
	c := &checker{w: w, cfg: cfg, comm: comm, stream: stream}
	c.checkComm()
	c.checkCollectives()
	if err := comm.Destroy(); err != nil {
		c.fail("comm destroy", "%v", err)
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
	case count != 1 || dev != c.cfg.device || rank != 0:
		c.fail("comm queries", "got %s want count=1 device=%d rank=0", got, c.cfg.device)
	default:
		c.pass("comm queries", "%s", got)
	}
}

// collective is one check: run enqueues it; with one rank every collective
// leaves its first n input elements in recv.
type collective struct {
	name string
	dt   nccl.DataType
	n    int
	run  func(send, recv nccl.DevicePtr) error
}

func (c *checker) checkCollectives() {
	n := c.cfg.count
	cm, s := c.comm, c.stream
	var cases []collective
	for _, dt := range []nccl.DataType{nccl.Float32, nccl.Float64, nccl.BFloat16, nccl.Float16, nccl.Int32, nccl.Int64, nccl.Uint8} {
		ops := []nccl.RedOp{nccl.Sum, nccl.Prod, nccl.Max, nccl.Min}
		if isFloat(dt) {
			ops = append(ops, nccl.Avg)
		}
		for _, op := range ops {
			cases = append(cases, collective{"allreduce " + dt.String() + "/" + op.String(), dt, n,
				func(a, b nccl.DevicePtr) error { return cm.AllReduce(a, b, n, dt, op, s) }})
		}
	}
	cases = append(cases,
		collective{"reduce float32/sum root=0", nccl.Float32, n,
			func(a, b nccl.DevicePtr) error { return cm.Reduce(a, b, n, nccl.Float32, nccl.Sum, 0, s) }},
		collective{"allgather float32", nccl.Float32, n,
			func(a, b nccl.DevicePtr) error { return cm.AllGather(a, b, n, nccl.Float32, s) }},
		collective{"allgather bfloat16", nccl.BFloat16, n,
			func(a, b nccl.DevicePtr) error { return cm.AllGather(a, b, n, nccl.BFloat16, s) }},
		collective{"broadcast int64 root=0", nccl.Int64, n,
			func(a, b nccl.DevicePtr) error { return cm.Broadcast(a, b, n, nccl.Int64, 0, s) }},
		collective{"reducescatter float32/sum", nccl.Float32, n,
			func(a, b nccl.DevicePtr) error { return cm.ReduceScatter(a, b, n, nccl.Float32, nccl.Sum, s) }},
		collective{"grouped allreduce float64/sum", nccl.Float64, n, func(a, b nccl.DevicePtr) error {
			if err := nccl.GroupStart(); err != nil {
				return err
			}
			err := cm.AllReduce(a, b, n, nccl.Float64, nccl.Sum, s)
			if endErr := nccl.GroupEnd(); err == nil {
				err = endErr
			}
			return err
		}},
	)
	for _, cl := range cases {
		c.check(cl)
	}
	c.checkInPlace()
}

// check runs one collective from fresh device buffers and compares.
func (c *checker) check(cl collective) {
	size := cl.dt.Size()
	input := encode(cl.dt, inputs(cl.dt, cl.n))
	want := encode(cl.dt, append(inputs(cl.dt, cl.n), sentinel, sentinel))
	recvInit := encode(cl.dt, filled(cl.n+2, sentinel))
	send, recv, err := c.buffers(input, recvInit)
	if err != nil {
		c.fail(cl.name, "setup: %v", err)
		return
	}
	defer nccl.Free(send)
	defer nccl.Free(recv)
	if err := cl.run(send, recv); err != nil {
		c.fail(cl.name, "enqueue: %v", err)
		return
	}
	if err := nccl.WaitStream(context.Background(), c.comm, c.stream, c.cfg.timeout); err != nil {
		c.fail(cl.name, "wait: %v", err)
		return
	}
	got := make([]byte, (cl.n+2)*size)
	if err := nccl.CopyFromDevice(got, recv); err != nil {
		c.fail(cl.name, "copy back: %v", err)
		return
	}
	c.report(cl.name, cl.dt, cl.n, got, want)
}

// checkInPlace runs an AllReduce with send == recv, as a trainer does on
// gradient buffers.
func (c *checker) checkInPlace() {
	const name = "allreduce float32/sum in place"
	n := c.cfg.count
	data := encode(nccl.Float32, inputs(nccl.Float32, n))
	buf, err := nccl.Malloc(len(data))
	if err == nil {
		defer nccl.Free(buf)
		err = nccl.CopyToDevice(buf, data)
	}
	if err == nil {
		err = c.comm.AllReduce(buf, buf, n, nccl.Float32, nccl.Sum, c.stream)
	}
	if err == nil {
		err = nccl.WaitStream(context.Background(), c.comm, c.stream, c.cfg.timeout)
	}
	got := make([]byte, len(data))
	if err == nil {
		err = nccl.CopyFromDevice(got, buf)
	}
	if err != nil {
		c.fail(name, "%v", err)
		return
	}
	c.report(name, nccl.Float32, n, got, data)
}

func (c *checker) buffers(send, recv []byte) (nccl.DevicePtr, nccl.DevicePtr, error) {
	a, err := nccl.Malloc(len(send))
	if err != nil {
		return 0, 0, err
	}
	b, err := nccl.Malloc(len(recv))
	if err != nil {
		nccl.Free(a)
		return 0, 0, err
	}
	if err := nccl.CopyToDevice(a, send); err != nil {
		return a, b, err
	}
	return a, b, nccl.CopyToDevice(b, recv)
}

func (c *checker) report(name string, dt nccl.DataType, n int, got, want []byte) {
	shown := func(b []byte) string { return format(decode(dt, b)) }
	if string(got) != string(want) {
		c.fail(name, "n=%d got %s want %s", n, shown(got), shown(want))
		return
	}
	c.pass(name, "n=%d got %s", n, shown(got))
}
