package main

import (
	"bufio"
	"context"
	"errors"
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
