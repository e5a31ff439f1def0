package gloo_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
)

// Exit codes of the children.
const (
	exitOK       = 0
	exitMismatch = 1 // a collective returned wrong values or failed
	exitSetup    = 2 // the group could not be formed
	exitFailed   = 3 // role "loop": a collective failed, as the test intends
)

// runChild runs role as one rank and returns the process's exit code.
func runChild(role string) int {
	rank, _ := strconv.Atoi(os.Getenv(envRank))
	size, _ := strconv.Atoi(os.Getenv(envSize))
	timeout, _ := time.ParseDuration(os.Getenv(envTimeout))
	ctx := context.Background()
	store, err := collective.DialStore(ctx, os.Getenv(envStore), timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitSetup
	}
	if dir := os.Getenv(envShmDir); dir != "" {
		gloo.SetShmDir(dir)
	}
	if os.Getenv(envHang) != "" {
		gloo.HangAfterCreate(rank)
	}
	limit, _ := strconv.ParseInt(os.Getenv(envShm), 10, 64)
	g, err := gloo.New(ctx, collective.Config{
		Rank: rank, Size: size, Store: store, Hostname: "127.0.0.1", Timeout: timeout, SharedMemory: limit,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitSetup
	}
	defer g.Close()
	fmt.Println("transport", g.Transport())
	switch role {
	case "suite":
		if err := runSuite(ctx, g); err != nil {
			fmt.Fprintf(os.Stderr, "rank %d: %v\n", rank, err)
			return exitMismatch
		}
		return exitOK
	case "loop":
		return runLoop(ctx, g)
	}
	fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
	return exitSetup
}

// runLoop all-reduces until a collective fails (a peer was killed or
// stopped by the test), then reports the error on stdout.
func runLoop(ctx context.Context, g *gloo.Group) int {
	buf := make([]float32, 1<<16)
	for it := 0; ; it++ {
		for i := range buf {
			buf[i] = float32(value(g.Rank(), i))
		}
		err := g.AllReduce(ctx, buf, collective.Sum)
		if err != nil {
			kind := "other"
			switch {
			case errors.Is(err, collective.ErrTimeout):
				kind = "timeout"
			case errors.Is(err, collective.ErrPeerLost):
				kind = "peer-lost"
			}
			fmt.Printf("ERR %s %v\n", kind, err)
			// A failed group fails every later call at once.
			if err2 := g.Barrier(ctx); !errors.Is(err2, collective.ErrBroken) {
				fmt.Printf("ERR later call: %v\n", err2)
			}
			return exitFailed
		}
		if s := firstMismatch(buf, func(i int) float64 { return reduced(collective.Sum, g.Size(), i) }); s != "" {
			fmt.Fprintln(os.Stderr, s)
			return exitMismatch
		}
		if it == 3 {
			fmt.Println("ready")
		}
	}
}

var (
	reduceSizes = []int{0, 1, 2, 3, 5, 7, 1000, 4099, 65537, 1<<20 + 3}
	moveSizes   = []int{0, 1, 3, 1000, 65537}
	allOps      = []collective.ReduceOp{collective.Sum, collective.Avg, collective.Max, collective.Min}
)

// runSuite checks every collective against the references of helpers_test.
func runSuite(ctx context.Context, g *gloo.Group) error {
	r, n := g.Rank(), g.Size()
	for _, op := range allOps {
		for _, size := range reduceSizes {
			buf := make([]float32, size)
			buf64 := make([]float64, size)
			for i := range buf {
				buf[i], buf64[i] = float32(input(op, r, i)), input(op, r, i)
			}
			want := func(i int) float64 { return reduced(op, n, i) }
			if err := g.AllReduce(ctx, buf, op); err != nil {
				return err
			}
			if s := firstMismatch(buf, want); s != "" {
				return fmt.Errorf("allreduce %s float32 of %d: %s", op, size, s)
			}
			if err := g.AllReduceFloat64(ctx, buf64, op); err != nil {
				return err
			}
			if s := firstMismatch(buf64, want); s != "" {
				return fmt.Errorf("allreduce %s float64 of %d: %s", op, size, s)
			}
		}
	}
	for _, size := range moveSizes {
		if err := checkMoves(ctx, g, size); err != nil {
			return err
		}
	}
	return checkBarrier(ctx, g)
}

// checkMoves checks all-gather, broadcast from the last and from rank 1,
// and reduce-scatter with every op, for blocks of size elements.
func checkMoves(ctx context.Context, g *gloo.Group, size int) error {
	r, n := g.Rank(), g.Size()
	send := make([]float32, size)
	for i := range send {
		send[i] = float32(value(r, i))
	}
	recv := make([]float32, n*size)
	if err := g.AllGather(ctx, send, recv); err != nil {
		return err
	}
	if s := firstMismatch(recv, func(i int) float64 { return value(i/max(size, 1), i%max(size, 1)) }); s != "" {
		return fmt.Errorf("allgather of %d: %s", size, s)
	}
	for _, root := range []int{n - 1, 1} {
		buf := make([]float32, size)
		for i := range buf {
			buf[i] = float32(value(r, i))
		}
		if err := collective.BroadcastSlice(ctx, g, buf, root); err != nil {
			return err
		}
		if s := firstMismatch(buf, func(i int) float64 { return value(root, i) }); s != "" {
			return fmt.Errorf("broadcast of %d from root %d: %s", size, root, s)
		}
		if err := checkTypedBroadcast(ctx, g, size, root); err != nil {
			return err
		}
	}
	for _, op := range allOps {
		full := make([]float32, n*size)
		for i := range full {
			full[i] = float32(input(op, r, i))
		}
		out := make([]float32, size)
		if err := g.ReduceScatter(ctx, full, out, op); err != nil {
			return err
		}
		if s := firstMismatch(out, func(i int) float64 { return reduced(op, n, r*size+i) }); s != "" {
			return fmt.Errorf("reducescatter %s of %d per rank: %s", op, size, s)
		}
	}
	return nil
}

// checkTypedBroadcast broadcasts float64, int64 and bytes (an odd count) from root and
// checks that root's bit patterns arrive unchanged: negative zeros, NaN payloads and
// int64s beyond float64's integers, which a sum of zeros would lose or round.
func checkTypedBroadcast(ctx context.Context, g *gloo.Group, size, root int) error {
	r := g.Rank()
	f64, i64, raw := make([]float64, size), make([]int64, size), make([]byte, 3*size+1)
	for i := range f64 {
		f64[i], i64[i] = math.Float64frombits(pattern(r, i)), int64(pattern(r, i+1))
	}
	for i := range raw {
		raw[i] = byte(pattern(r, i) >> (8 * (i % 8)))
	}
	if err := collective.BroadcastSlice(ctx, g, f64, root); err != nil {
		return err
	}
	if err := collective.BroadcastSlice(ctx, g, i64, root); err != nil {
		return err
	}
	if err := g.Broadcast(ctx, raw, root); err != nil {
		return err
	}
	for i := range f64 {
		if got := math.Float64bits(f64[i]); got != pattern(root, i) {
			return fmt.Errorf("broadcast float64 %d of %d from root %d: bits %#x, want %#x", i, size, root, got, pattern(root, i))
		}
		if i64[i] != int64(pattern(root, i+1)) {
			return fmt.Errorf("broadcast int64 %d of %d from root %d: %d, want %d", i, size, root, i64[i], int64(pattern(root, i+1)))
		}
	}
	for i := range raw {
		if want := byte(pattern(root, i) >> (8 * (i % 8))); raw[i] != want {
			return fmt.Errorf("broadcast byte %d of %d from root %d: %#x, want %#x", i, len(raw), root, raw[i], want)
		}
	}
	return nil
}

// pattern is a 64-bit pattern that differs by rank r and index i: a negative zero (rank
// 0) or negative denormal, a quiet NaN with a payload, or a large integer.
func pattern(r, i int) uint64 {
	switch i % 3 {
	case 0:
		return 1<<63 | uint64(r)
	case 1:
		return 0x7ff8_0000_0000_0000 | uint64(r+1)<<20 | uint64(i)
	}
	return uint64(r+1)<<56 | uint64(i)*0x9e37_79b9_7f4a_7c15>>8
}

// checkBarrier staggers the ranks' arrival and prints when each entered and
// left; the parent checks that nobody left before the last arrived.
func checkBarrier(ctx context.Context, g *gloo.Group) error {
	time.Sleep(time.Duration(g.Rank()) * 100 * time.Millisecond) // the case itself: late arrivals
	enter := time.Now().UnixNano()
	if err := g.Barrier(ctx); err != nil {
		return err
	}
	fmt.Printf("barrier %d %d\n", enter, time.Now().UnixNano())
	return nil
}
