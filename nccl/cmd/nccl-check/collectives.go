package main

import (
	"errors"
	"math"

	"github.com/lrtrain/lrtrain/nccl"
)

// sentinel fills receive buffers, including two elements past the end, so
// that a collective writing too much or too little shows.
const sentinel = 99

// collective is one check: run enqueues it; want is this rank's expected
// receive buffer (sentinels included) and tol the tolerance on each value
// (0: bit-exact).
type collective struct {
	name string
	dt   nccl.DataType
	send []float64
	want []float64
	tol  float64
	run  func(send, recv nccl.DevicePtr) error
}

func isTimeout(err error) bool { return errors.Is(err, nccl.ErrTimeout) }

// eps is the machine epsilon of a floating type, 0 for integers.
func eps(dt nccl.DataType) float64 {
	switch dt {
	case nccl.Float16:
		return 0x1p-10
	case nccl.BFloat16:
		return 0x1p-7
	case nccl.Float32:
		return 0x1p-23
	case nccl.Float64:
		return 0x1p-52
	}
	return 0
}

func (c *checker) checkCollectives() {
	n, N, me := c.cfg.count, c.cfg.nranks, c.cfg.rank
	cm, s := c.comm, c.stream
	pad := func(v []float64) []float64 { return append(v, sentinel, sentinel) }
	var cases []collective
	for _, dt := range []nccl.DataType{nccl.Float32, nccl.Float64, nccl.BFloat16, nccl.Float16, nccl.Int32, nccl.Int64, nccl.Uint8} {
		ops := []nccl.RedOp{nccl.Sum, nccl.Prod, nccl.Max, nccl.Min}
		if isFloat(dt) {
			ops = append(ops, nccl.Avg)
		}
		for _, op := range ops {
			tol := 0.0
			if op == nccl.Avg {
				// NCCL scales each input by 1/N before summing: up to N
				// roundings of values below 4+N in magnitude.
				tol = eps(dt) * float64(N) * float64(4+N)
			}
			cases = append(cases, collective{"allreduce " + dt.String() + "/" + op.String(), dt,
				rankInputs(dt, op, me, n), pad(reduced(dt, op, N, n, 0)), tol,
				func(a, b nccl.DevicePtr) error { return cm.AllReduce(a, b, n, dt, op, s) }})
		}
	}
	reduceWant := filled(n, sentinel)
	if me == 0 {
		reduceWant = reduced(nccl.Float32, nccl.Sum, N, n, 0)
	}
	var gathered, gatheredBF []float64
	for r := range N {
		gathered = append(gathered, rankInputs(nccl.Float32, nccl.Sum, r, n)...)
		gatheredBF = append(gatheredBF, rankInputs(nccl.BFloat16, nccl.Sum, r, n)...)
	}
	cases = append(cases,
		collective{"reduce float32/sum root=0", nccl.Float32, rankInputs(nccl.Float32, nccl.Sum, me, n), pad(reduceWant), 0,
			func(a, b nccl.DevicePtr) error { return cm.Reduce(a, b, n, nccl.Float32, nccl.Sum, 0, s) }},
		collective{"allgather float32", nccl.Float32, rankInputs(nccl.Float32, nccl.Sum, me, n), pad(gathered), 0,
			func(a, b nccl.DevicePtr) error { return cm.AllGather(a, b, n, nccl.Float32, s) }},
		collective{"allgather bfloat16", nccl.BFloat16, rankInputs(nccl.BFloat16, nccl.Sum, me, n), pad(gatheredBF), 0,
			func(a, b nccl.DevicePtr) error { return cm.AllGather(a, b, n, nccl.BFloat16, s) }},
		collective{"broadcast int64 root=0", nccl.Int64, rankInputs(nccl.Int64, nccl.Sum, me, n), pad(rankInputs(nccl.Int64, nccl.Sum, 0, n)), 0,
			func(a, b nccl.DevicePtr) error { return cm.Broadcast(a, b, n, nccl.Int64, 0, s) }},
		collective{"reducescatter float32/sum", nccl.Float32, rankInputs(nccl.Float32, nccl.Sum, me, n*N), pad(reduced(nccl.Float32, nccl.Sum, N, n, me*n)), 0,
			func(a, b nccl.DevicePtr) error { return cm.ReduceScatter(a, b, n, nccl.Float32, nccl.Sum, s) }},
		collective{"grouped allreduce float64/sum", nccl.Float64, rankInputs(nccl.Float64, nccl.Sum, me, n), pad(reduced(nccl.Float64, nccl.Sum, N, n, 0)), 0,
			func(a, b nccl.DevicePtr) error {
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
		c.check(cl, false)
	}
	// Ordered by events as the trainer runs them: a sharded backbone's block gathers
	// and model.split_delta's exchange.
	for _, cl := range []collective{
		{"allgather float32, ordered by events", nccl.Float32, rankInputs(nccl.Float32, nccl.Sum, me, n), pad(gathered), 0,
			func(a, b nccl.DevicePtr) error { return cm.AllGather(a, b, n, nccl.Float32, s) }},
		{"reducescatter float32/sum, ordered by events", nccl.Float32, rankInputs(nccl.Float32, nccl.Sum, me, n*N), pad(reduced(nccl.Float32, nccl.Sum, N, n, me*n)), 0,
			func(a, b nccl.DevicePtr) error { return cm.ReduceScatter(a, b, n, nccl.Float32, nccl.Sum, s) }},
	} {
		c.check(cl, true)
	}
	c.checkInPlace()
}

// check runs one collective from fresh device buffers (ordered by events, or
// waited for from the host alone: orderedRun) and compares.
func (c *checker) check(cl collective, ordered bool) {
	recvInit := encode(cl.dt, filled(len(cl.want), sentinel))
	send, recv, err := c.buffers(encode(cl.dt, cl.send), recvInit)
	if err != nil {
		c.fail(cl.name, "setup: %v", err)
		return
	}
	defer nccl.Free(send)
	defer nccl.Free(recv)
	if err := c.orderedRun(cl.name, ordered, func() error { return cl.run(send, recv) }); err != nil {
		c.fail(cl.name, "%v", err)
		return
	}
	got := make([]byte, len(recvInit))
	if err := nccl.CopyFromDevice(got, recv); err != nil {
		c.fail(cl.name, "copy back: %v", err)
		return
	}
	c.report(cl.name, cl.dt, c.cfg.count, got, encode(cl.dt, cl.want), cl.tol)
}

// checkInPlace runs an AllReduce with send == recv, as a trainer does on
// gradient buffers: once waited for from the host alone, once ordered by
// events as the trainer orders it (the communicator's stream waits for an
// event recorded on the default stream, libtorch's; the default stream then
// waits for one recorded after the collective, and the copy back, on the
// default stream, runs behind that wait).
func (c *checker) checkInPlace() {
	c.inPlace("allreduce float32/sum in place", false)
	c.inPlace("allreduce float32/sum in place, ordered by events", true)
}

func (c *checker) inPlace(name string, ordered bool) {
	n := c.cfg.count
	data := encode(nccl.Float32, rankInputs(nccl.Float32, nccl.Sum, c.cfg.rank, n))
	buf, err := nccl.Malloc(len(data))
	if err == nil {
		defer nccl.Free(buf)
		err = nccl.CopyToDevice(buf, data)
	}
	if err == nil {
		err = c.orderedRun(name, ordered, func() error {
			return c.comm.AllReduce(buf, buf, n, nccl.Float32, nccl.Sum, c.stream)
		})
	}
	got := make([]byte, len(data))
	if err == nil {
		err = nccl.CopyFromDevice(got, buf)
	}
	if err != nil {
		c.fail(name, "%v", err)
		return
	}
	c.report(name, nccl.Float32, n, got, encode(nccl.Float32, reduced(nccl.Float32, nccl.Sum, c.cfg.nranks, n, 0)), 0)
}

// orderedRun enqueues a collective on the communicator's stream and waits for it.
// Ordered, it runs as the trainer runs its collectives: the communicator's stream
// first waits for an event recorded on the default stream (libtorch's), and after
// the collective the default stream waits for an event recorded on the
// communicator's stream, so that the copy back, on the default stream, runs behind it.
func (c *checker) orderedRun(name string, ordered bool, enqueue func() error) error {
	if !ordered {
		return c.runWait(name, c.cfg.timeout, enqueue)
	}
	var events [2]nccl.Event
	for i := range events {
		e, err := nccl.EventCreate()
		if err != nil {
			return err
		}
		defer nccl.EventDestroy(e)
		events[i] = e
	}
	err := c.runWait(name, c.cfg.timeout, func() error {
		if err := nccl.OrderAfter(c.stream, nccl.DefaultStream, events[0]); err != nil {
			return err
		}
		return enqueue()
	})
	if err != nil {
		return err
	}
	return nccl.OrderAfter(nccl.DefaultStream, c.stream, events[1])
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

// report compares got with want: bit for bit, or within tol per value.
func (c *checker) report(name string, dt nccl.DataType, n int, got, want []byte, tol float64) {
	shown := func(b []byte) string { return format(decode(dt, b)) }
	same := string(got) == string(want)
	if !same && tol > 0 && len(got) == len(want) {
		same = true
		g, w := decode(dt, got), decode(dt, want)
		for i := range g {
			if !(math.Abs(g[i]-w[i]) <= tol) {
				same = false
			}
		}
	}
	if !same {
		c.fail(name, "n=%d got %s want %s", n, shown(got), shown(want))
		return
	}
	c.pass(name, "n=%d got %s", n, shown(got))
}
