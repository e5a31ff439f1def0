// Command allreduce measures the CPU backend's all-reduce between processes
// on this machine, over Gloo's loopback TCP and over shared memory (/dev/shm,
// dist.shared_memory), next to a single-process copy() of the same size.
//
//	go run ./dist/collective/bench/allreduce -ranks 2,4 -min 1KiB -max 256MiB
//
// For each world size it starts that many copies of itself (ranks on
// loopback, meeting through a TCPStore served by the parent), all-reduces
// (sum) float32 buffers of each size (powers of 4) and prints per size the
// time of one all-reduce (the slowest rank's mean), the algorithm bandwidth
// size/time and the bus bandwidth size·2(n−1)/n / time, the traffic each
// rank's link carries in a ring. The copy column is size/time of
// copy(dst, src), the bound for any exchange through memory on one machine.
// torch_ref.py measures the same through PyTorch's ProcessGroupGloo.
//
// Measured on the development VM (2 cores, shared with other builds, so
// runs vary by up to 2x; two runs each, ours then torch_ref.py):
//
//	size     copy GB/s | 2 ranks: ours       torch      | 4 ranks: ours       torch
//	1 KiB    102       |   1.7-2.4 ms    0.7-1.2 ms     |   4.3-4.9 ms    5.0-5.4 ms
//	1 MiB    27        |   1.3-2.0 ms    1.5-2.8 ms     |   4.8-9.5 ms    8.0-8.2 ms
//	16 MiB   26-28     |   9-20 ms       13-28 ms       |   25-46 ms      26-41 ms
//	256 MiB  18-20     |   167-290 ms    285-310 ms     |   391-741 ms    389-683 ms
//	busbw at 256 MiB   |   0.9-1.6 GB/s  0.9 GB/s       |   0.5-1.0 GB/s  0.6-1.0 GB/s
//
// At 1 KiB with 2 ranks, three more back-to-back pairs on a quieter machine
// gave 0.9-1.1 ms (ours) and 0.6-1.8 ms (torch): the two are within the
// noise of this machine.
//
// Loopback TCP on two cores tops out near 1-2 GB/s of bus bandwidth, an
// order of magnitude under copy(): every byte is copied into and out of the
// kernel's socket buffers and reduced, with 2-4 processes (each a caller
// thread and Gloo's event-loop thread) sharing two cores. Small messages
// cost milliseconds, not microseconds, for the same reason: Gloo's event
// loop polls while the caller holds a connection's lock, and with more
// busy threads than cores every hand-off waits for a time slice. PyTorch's
// own Gloo backend shows the same on this machine. With one rank per
// multi-core node it should matter much less (not measured here).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
)

const (
	envRank  = "LRT_BENCH_RANK"
	envSize  = "LRT_BENCH_SIZE"
	envStore = "LRT_BENCH_STORE"
	envSizes = "LRT_BENCH_BYTES"
	envShm   = "LRT_BENCH_SHM" // Config.SharedMemory of the ranks
)

func main() {
	if os.Getenv(envRank) != "" {
		if err := runRank(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ranks := flag.String("ranks", "2,4", "world sizes, comma-separated")
	minSize := flag.String("min", "1KiB", "smallest buffer")
	maxSize := flag.String("max", "256MiB", "largest buffer")
	transports := flag.String("transports", "tcp,shm", "tcp (Gloo's loopback TCP) and/or shm (/dev/shm), comma-separated: one run of each world size per transport")
	flag.Parse()
	if err := run(*ranks, *minSize, *maxSize, *transports); err != nil {
		fmt.Fprintln(os.Stderr, "allreduce:", err)
		os.Exit(1)
	}
}

// result is one world size's time per all-reduce, by buffer size.
type result map[int]time.Duration

// world is one measured configuration: a world size on a transport.
type world struct {
	n   int
	shm bool
}

func (w world) String() string {
	if w.shm {
		return fmt.Sprintf("%d ranks, shm", w.n)
	}
	return fmt.Sprintf("%d ranks, tcp", w.n)
}

func run(ranksFlag, minFlag, maxFlag, transportsFlag string) error {
	lo, err := parseBytes(minFlag)
	if err != nil {
		return err
	}
	hi, err := parseBytes(maxFlag)
	if err != nil {
		return err
	}
	var sizes []int
	for s := lo; s <= hi; s *= 4 {
		sizes = append(sizes, s)
	}
	var worlds []world
	for _, f := range strings.Split(ranksFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return fmt.Errorf("bad world size %q", f)
		}
		for _, t := range strings.Split(transportsFlag, ",") {
			switch strings.TrimSpace(t) {
			case "tcp":
				worlds = append(worlds, world{n: n})
			case "shm":
				worlds = append(worlds, world{n: n, shm: true})
			default:
				return fmt.Errorf("bad transport %q (tcp or shm)", t)
			}
		}
	}
	results := make([]result, len(worlds))
	for i, w := range worlds {
		if results[i], err = runWorld(w, sizes); err != nil {
			return fmt.Errorf("%s: %w", w, err)
		}
	}
	printTable(worlds, sizes, results)
	return nil
}

// runWorld starts w.n ranks and collects rank 0's timings.
func runWorld(w world, sizes []int) (result, error) {
	n := w.n
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var list []string
	for _, s := range sizes {
		list = append(list, strconv.Itoa(s))
	}
	cmds := make([]*exec.Cmd, n)
	var out *bufio.Scanner
	for r := range n {
		c := exec.CommandContext(ctx, self)
		c.Env = append(os.Environ(), envRank+"="+strconv.Itoa(r), envSize+"="+strconv.Itoa(n),
			envStore+"="+srv.Addr(), envSizes+"="+strings.Join(list, ","), fmt.Sprintf("%s=%t", envShm, w.shm))
		c.Stderr = os.Stderr
		if r == 0 {
			pipe, err := c.StdoutPipe()
			if err != nil {
				return nil, err
			}
			out = bufio.NewScanner(pipe)
		}
		if err := c.Start(); err != nil {
			return nil, err
		}
		cmds[r] = c
	}
	res := result{}
	for out.Scan() {
		var size int
		var sec float64
		if _, err := fmt.Sscanf(out.Text(), "R %d %g", &size, &sec); err == nil {
			res[size] = time.Duration(sec * float64(time.Second))
		}
	}
	for r, c := range cmds {
		if err := c.Wait(); err != nil {
			return nil, fmt.Errorf("rank %d: %w", r, err)
		}
	}
	return res, nil
}

// runRank is one rank: for each size it warms up, then times iters
// all-reduces between two barriers; the slowest rank's time is what counts.
func runRank() error {
	rank, _ := strconv.Atoi(os.Getenv(envRank))
	size, _ := strconv.Atoi(os.Getenv(envSize))
	ctx := context.Background()
	store, err := collective.DialStore(ctx, os.Getenv(envStore), 30*time.Second)
	if err != nil {
		return err
	}
	var shm int64
	if os.Getenv(envShm) == "true" {
		shm = gloo.DefaultSharedMemory
	}
	g, err := gloo.New(ctx, collective.Config{Rank: rank, Size: size, Store: store,
		Name: "bench", Hostname: "127.0.0.1", Timeout: 2 * time.Minute, SharedMemory: shm})
	if err != nil {
		return err
	}
	defer g.Close()
	for _, f := range strings.Split(os.Getenv(envSizes), ",") {
		bytes, _ := strconv.Atoi(f)
		buf := make([]float32, bytes/4) // zeros: sums stay finite however often they repeat
		iters := min(max((64<<20)/bytes, 3), 300)
		if err := g.AllReduce(ctx, buf, collective.Sum); err != nil { // warm-up
			return err
		}
		if err := g.Barrier(ctx); err != nil {
			return err
		}
		start := time.Now()
		for range iters {
			if err := g.AllReduce(ctx, buf, collective.Sum); err != nil {
				return err
			}
		}
		per := []float64{time.Since(start).Seconds() / float64(iters)}
		if err := g.AllReduceFloat64(ctx, per, collective.Max); err != nil {
			return err
		}
		if rank == 0 {
			fmt.Printf("R %d %g\n", bytes, per[0])
		}
	}
	return nil
}

// copyTime is the best time of copy() between two buffers of size bytes.
func copyTime(size int) time.Duration {
	src, dst := make([]byte, size), make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	iters := min(max((64<<20)/size, 3), 300)
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		for range iters {
			copy(dst, src)
		}
		best = min(best, time.Since(start)/time.Duration(iters))
	}
	return best
}

func printTable(worlds []world, sizes []int, results []result) {
	fmt.Printf("%10s %10s", "size", "copy GB/s")
	for _, w := range worlds {
		fmt.Printf(" | %s: %9s %9s", w, "time", "busbw")
	}
	fmt.Println()
	for _, s := range sizes {
		c := copyTime(s)
		fmt.Printf("%10s %10.2f", human(s), gbps(s, c))
		for i, w := range worlds {
			t := results[i][s]
			bus := float64(s) * 2 * float64(w.n-1) / float64(w.n)
			fmt.Printf(" | %*s %9s %9.3f", len(w.String())+1, "", t.Round(time.Microsecond), gbps(int(bus), t))
		}
		fmt.Println()
	}
	fmt.Println("GB/s = 1e9 bytes/s; busbw = size·2(n−1)/n / time; copy = size / time of copy(dst, src); tcp: Gloo's loopback TCP, shm: /dev/shm (dist.shared_memory)")
}

func gbps(bytes int, t time.Duration) float64 {
	if t <= 0 {
		return 0
	}
	return float64(bytes) / t.Seconds() / 1e9
}

func human(b int) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}

func parseBytes(s string) (int, error) {
	mult := 1
	for suffix, m := range map[string]int{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1 << 10, "MB": 1 << 20} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n*mult < 4 {
		return 0, fmt.Errorf("bad size %q (want e.g. 4096, 1KiB, 256MiB)", s)
	}
	return n * mult, nil
}
