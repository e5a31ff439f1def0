// Command nccl-check exercises the nccl package on real GPUs: it loads
// libnccl and libcudart, runs N processes, one per GPU, that meet through
// a unique id made by rank 0, and on each rank runs AllReduce (every data
// type and op), Reduce, AllGather, Broadcast, ReduceScatter, a grouped and
// an in-place AllReduce, checking every value against the result the
// ranks' known inputs imply; it times AllReduce, AllGather, ReduceScatter
// and Broadcast and reports algorithm and bus bandwidth as nccl-tests does;
// and, with two ranks or more, it checks that a collective a peer never
// joins is aborted within its timeout. Each rank prints PASS or FAIL lines
// prefixed with its rank; the last line is one summary. It links neither
// NCCL, CUDA nor libtorch, so it can be built here and carried to a GPU
// machine that has no Go:
//
//	CGO_ENABLED=1 go build -o nccl-check ./nccl/cmd/nccl-check
//	ldd nccl-check                    # no libnccl, libcudart or libtorch
//	./nccl-check -nprocs 0            # one process per visible GPU
//	./nccl-check -device 0            # one rank, in this process
//	LRTRAIN_NCCL_LIBRARY=/path/libnccl.so.2 ./nccl-check -nprocs 2
//
// Without a GPU, the fake libraries of internal/fakenccl run the same
// program (FAKE_NCCL_SHARED_DIR lets their ranks meet across processes):
// that proves the orchestration, the id exchange, the value checks and the
// abort path, not NCCL's transport or the bandwidth of real links.
//
// Exit status: 0 all passed, 1 some check failed, 2 setup failed (for
// example no libnccl).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	cfg := config{nranks: 1}
	var sizes string
	flag.IntVar(&cfg.device, "device", 0, "CUDA device to run on (one rank, or a rank started by -nprocs)")
	flag.IntVar(&cfg.nprocs, "nprocs", 1, "ranks to start, one process per GPU (0: one per visible GPU)")
	flag.IntVar(&cfg.count, "count", 8, "elements per rank in each checked collective")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "watchdog timeout per collective and for setup")
	flag.DurationVar(&cfg.abortTimeout, "abort-timeout", 2*time.Second, "timeout of the collective the abort check leaves unjoined")
	flag.StringVar(&sizes, "sizes", "1M,16M,128M", "message sizes in bytes for the bandwidth table (K, M, G suffixes; empty: none)")
	flag.IntVar(&cfg.iters, "iters", 20, "timed iterations per size (after 5 warm-up ones)")
	// Set by the launcher for the processes it starts.
	flag.IntVar(&cfg.rank, "rank", -1, "this process's rank (set by -nprocs)")
	flag.IntVar(&cfg.nranks, "nranks", 1, "number of ranks (set by -nprocs)")
	flag.StringVar(&cfg.exchange, "exchange", "", "directory where rank 0 leaves the unique id (set by -nprocs)")
	flag.Parse()
	var err error
	if cfg.sizes, err = parseSizes(sizes); err != nil {
		fmt.Fprintln(os.Stderr, "nccl-check:", err)
		os.Exit(exitSetup)
	}
	if cfg.rank >= 0 {
		os.Exit(run(os.Stdout, cfg))
	}
	if cfg.nprocs != 1 {
		os.Exit(launch(os.Stdout, cfg))
	}
	cfg.rank, cfg.nranks = 0, 1
	os.Exit(summarise(os.Stdout, 1, []int{run(os.Stdout, cfg)}))
}

// parseSizes reads "1M,16M,128M" (K = 1024 bytes).
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ToUpper(f))
		if f == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(f, "K"):
			mult, f = 1<<10, strings.TrimSuffix(f, "K")
		case strings.HasSuffix(f, "M"):
			mult, f = 1<<20, strings.TrimSuffix(f, "M")
		case strings.HasSuffix(f, "G"):
			mult, f = 1<<30, strings.TrimSuffix(f, "G")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad size %q in -sizes", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}
