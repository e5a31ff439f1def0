// Command nccl-check exercises the nccl package on real GPUs: it loads
// libnccl and libcudart, runs N processes, one per GPU, that meet through
// a unique id made by rank 0, and on each rank runs AllReduce (every data
// type and op), Reduce, AllGather, Broadcast, ReduceScatter, a grouped and
// an in-place AllReduce (that one, AllGather and ReduceScatter also ordered
// after the default stream by CUDA events, as the trainer runs them), checking every value against the result the
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
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lrtrain/lrtrain/nccl"
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

// idFile is where rank 0 leaves the unique id (hex) in the exchange
// directory; the other ranks poll for it.
const idFile = "unique_id"

// exchangeID makes the id (rank 0, published atomically by rename when
// there are peers) or waits for rank 0's, at most cfg.timeout.
func exchangeID(cfg config) (nccl.UniqueID, error) {
	if cfg.rank == 0 {
		id, err := nccl.GetUniqueID()
		if err != nil || cfg.nranks == 1 {
			return id, err
		}
		tmp := filepath.Join(cfg.exchange, idFile+".tmp")
		if err := os.WriteFile(tmp, []byte(id.String()), 0o600); err != nil {
			return id, fmt.Errorf("publish the unique id: %w", err)
		}
		return id, os.Rename(tmp, filepath.Join(cfg.exchange, idFile))
	}
	deadline := time.Now().Add(cfg.timeout)
	for {
		b, err := os.ReadFile(filepath.Join(cfg.exchange, idFile))
		if err == nil {
			return nccl.ParseUniqueID(string(b))
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return nccl.UniqueID{}, fmt.Errorf("rank 0's unique id in %s: %w", cfg.exchange, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// launch starts cfg.nprocs ranks (0: one per visible GPU), rank r on
// device r, each a copy of this binary, prefixes their output with the
// rank, and ends with one summary. It kills them all when the whole run
// exceeds its budget.
func launch(w io.Writer, cfg config) int {
	n := cfg.nprocs
	if n <= 0 {
		if err := nccl.Init(); err != nil {
			fmt.Fprintf(w, "FAIL init: %v\n", err)
			return exitSetup
		}
		count, err := nccl.DeviceCount()
		_ = nccl.Shutdown()
		if err != nil || count < 1 {
			fmt.Fprintf(w, "FAIL device count: %d, %v\n", count, err)
			return exitSetup
		}
		n = count
	}
	exe := cfg.exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			fmt.Fprintf(w, "FAIL launch: %v\n", err)
			return exitSetup
		}
	}
	dir, err := os.MkdirTemp("", "nccl-check-")
	if err != nil {
		fmt.Fprintf(w, "FAIL launch: %v\n", err)
		return exitSetup
	}
	defer os.RemoveAll(dir)
	// Budget: setup, every check and the bandwidth batches, each bounded by
	// the timeout, plus the abort check.
	budget := cfg.timeout*time.Duration(60+8*len(cfg.sizes)) + cfg.abortTimeout + abortBound
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	codes := make([]int, n)
	for r := range n {
		sizes := make([]string, len(cfg.sizes))
		for i, s := range cfg.sizes {
			sizes[i] = strconv.Itoa(s)
		}
		cmd := exec.CommandContext(ctx, exe, "-rank", strconv.Itoa(r), "-nranks", strconv.Itoa(n),
			"-device", strconv.Itoa(r), "-exchange", dir, "-count", strconv.Itoa(cfg.count),
			"-timeout", cfg.timeout.String(), "-abort-timeout", cfg.abortTimeout.String(),
			"-iters", strconv.Itoa(cfg.iters), "-sizes", strings.Join(sizes, ","))
		out, err := cmd.StdoutPipe()
		if err == nil {
			cmd.Stderr = cmd.Stdout
			err = cmd.Start()
		}
		if err != nil {
			fmt.Fprintf(w, "FAIL launch rank %d: %v\n", r, err)
			codes[r] = exitSetup
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				fmt.Fprintf(w, "[rank %d] %s\n", r, sc.Text())
				mu.Unlock()
			}
			codes[r] = exitCode(cmd.Wait())
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		fmt.Fprintf(w, "FAIL launch: ranks killed after the budget of %v\n", budget)
	}
	return summarise(w, n, codes)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitPass
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	}
	return exitSetup // killed, or could not wait
}

// summarise prints the one-line verdict over every rank's exit code and
// returns the worst.
func summarise(w io.Writer, n int, codes []int) int {
	worst := exitPass
	var bad []string
	for r, c := range codes {
		worst = max(worst, c)
		if c != exitPass {
			bad = append(bad, fmt.Sprintf("rank %d exit %d", r, c))
		}
	}
	if worst == exitPass {
		fmt.Fprintf(w, "SUMMARY PASS nccl-check: %d rank(s), every check passed\n", n)
	} else {
		fmt.Fprintf(w, "SUMMARY FAIL nccl-check: %d rank(s); %s\n", n, strings.Join(bad, ", "))
	}
	return worst
}
