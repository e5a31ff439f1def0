package launch

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/lrtrain/lrtrain/dist/rdzv"
	"github.com/lrtrain/lrtrain/dist/worker/workerenv"
	"github.com/lrtrain/lrtrain/internal/testkit"
)

// The test binary doubles as the worker and as a launcher process: tests
// run it with one of these first arguments.
const (
	roleWorker   = "launch-test-worker"   // <role> <out dir> [want world size]
	roleLauncher = "launch-test-launcher" // launcher flags -- worker args
	roleSleeper  = "launch-test-sleeper"  // ignores SIGTERM, sleeps
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case roleWorker:
			os.Exit(testWorker(os.Args[2:]))
		case roleLauncher:
			os.Exit(testLauncher(os.Args[2:]))
		case roleSleeper:
			signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
			time.Sleep(time.Minute) // the fault itself: a process only SIGKILL ends
			os.Exit(0)
		}
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano // test logs show milliseconds
	os.Exit(m.Run())
}

// record is what a test worker writes about itself.
type record struct {
	Env   WorkerEnv
	Vars  map[string]string // raw values of selected variables
	PID   int
	Child int   // pid of a grandchild it started, 0 if none
	Time  int64 // unix nanoseconds when written
}

func recordName(round int64, rank int) string { return fmt.Sprintf("r%d-rank%d.json", round, rank) }

func writeJSON(path string, v any) {
	b, _ := json.Marshal(v)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err == nil {
		_ = os.Rename(tmp, path)
	}
}

// testWorker behaves as its role says and reports through files in out.
func testWorker(args []string) int {
	role, out := args[0], args[1]
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM, syscall.SIGINT)
	w, err := workerenv.Read(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 10
	}
	rec := record{Env: w, PID: os.Getpid(), Vars: map[string]string{}}
	for _, k := range []string{"ROLE_RANK", "TORCHELASTIC_RESTART_COUNT", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
		"LRTRAIN_RDZV_TTL", "LRTRAIN_RDZV_DIAL_TIMEOUT"} {
		rec.Vars[k] = os.Getenv(k)
	}
	if role == "child" { // leave a grandchild that ignores SIGTERM
		self, _ := os.Executable()
		p, err := os.StartProcess(self, []string{self, roleSleeper}, &os.ProcAttr{})
		if err != nil {
			return 11
		}
		rec.Child = p.Pid
	}
	rec.Time = time.Now().UnixNano()
	writeJSON(filepath.Join(out, recordName(w.Round, w.Rank)), rec)
	fmt.Printf("hello from rank %d of %d, round %d, restart %d\n", w.Rank, w.WorldSize, w.Round, w.Restart)

	waitTerm := func() int {
		select {
		case s := <-terms:
			writeJSON(filepath.Join(out, fmt.Sprintf("term-r%d-rank%d.json", w.Round, w.Rank)),
				map[string]any{"signal": s.String(), "time": time.Now().UnixNano()})
			return 0
		case <-time.After(time.Minute): // never outlive a broken test for long
			return 12
		}
	}
	switch role {
	case "env":
		return 0
	case "rdzv": // open a worker session on the launcher's round and meet the others
		return rdzvWorker(w)
	case "session": // hold a worker session; when stopped, wait (a while) for it to end
		return sessionWorker(w, out, terms)
	case "stubborn": // ignore SIGTERM: only SIGKILL ends it
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Minute) // the fault itself: a worker only SIGKILL ends
		return 0
	case "fail-first":
		if w.Restart == 0 && w.Rank == 1 {
			fmt.Fprintln(os.Stderr, "rank 1 fails on purpose")
			return 1
		}
		return 0
	case "fail-round0": // rank 1 fails in round 0 while the others run on
		switch {
		case w.Round > 0:
			return 0
		case w.Rank == 1:
			waitAll(out, w)
			return 1
		}
		return waitTerm()
	case "fail-when-told": // rank 0 of round 0 exits 1 once the test creates <out>/fail
		if w.Round == 0 && w.Rank == 0 {
			waitFile(filepath.Join(out, "fail"))
			fmt.Fprintln(os.Stderr, "rank 0 fails on purpose")
			return 1
		}
		return waitTerm()
	case "fail-always":
		if w.Rank == 1 {
			waitAll(out, w) // the others catch SIGTERM by now
			fmt.Fprintln(os.Stderr, "rank 1 fails on purpose")
			return 3
		}
		return waitTerm()
	case "kill":
		if w.Restart > 0 {
			return 0
		}
		switch w.Rank {
		case 0: // once every rank is up, die by SIGKILL
			waitAll(out, w)
			writeJSON(filepath.Join(out, "killed.json"), map[string]any{"time": time.Now().UnixNano()})
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		case 2: // ignore SIGTERM: only the SIGKILL after the grace period ends it
			waitTerm()
			time.Sleep(time.Minute) // the fault itself: deaf to SIGTERM, SIGKILL ends it
		}
		return waitTerm()
	case "sleep", "child":
		return waitTerm()
	case "elastic": // wait for a round of the wanted world size, then finish
		want, _ := strconv.Atoi(args[2])
		if w.WorldSize != want {
			return waitTerm()
		}
		return 0
	}
	return 13
}

func rdzvWorker(w WorkerEnv) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := append(w.RdzvOptions(), rdzv.WithTTL(2*time.Second), rdzv.WithWaitTimeout(15*time.Second),
		rdzv.WithLogger(zap.NewNop()))
	wk, err := rdzv.OpenWorker(ctx, w.Job, w.Round, w.Rank, w.WorldSize, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 20
	}
	defer wk.Close()
	if err := wk.Barrier(ctx, "hello", w.WorldSize); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 21
	}
	// No linger is needed before leaving (and revoking the lease, which deletes
	// this rank's barrier key): rdzv's Barrier reads the arrivals at the revision
	// of its own put, so a rank that is still between the two sees this one.
	return 0
}

// sessionWorker opens a worker session with the launcher's rendezvous
// options (TTL and dial timeout included) and, once told to stop, waits up to
// 5 s for the session to be lost, recording when it was.
func sessionWorker(w WorkerEnv, out string, terms <-chan os.Signal) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wk, err := rdzv.OpenWorker(ctx, w.Job, w.Round, w.Rank, w.WorldSize, append(w.RdzvOptions(), rdzv.WithLogger(zap.NewNop()))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 20
	}
	defer wk.Close()
	writeJSON(filepath.Join(out, fmt.Sprintf("open-r%d-rank%d.json", w.Round, w.Rank)), map[string]any{"time": time.Now().UnixNano()})
	select {
	case <-terms:
	case <-ctx.Done():
		return 22
	}
	select {
	case <-wk.Done():
		writeJSON(filepath.Join(out, fmt.Sprintf("lost-r%d-rank%d.json", w.Round, w.Rank)), map[string]any{"time": time.Now().UnixNano()})
	case <-time.After(5 * time.Second):
	}
	return 0
}

// waitAll waits (at most a minute) until every rank of w's round has written
// its record.
func waitAll(out string, w WorkerEnv) {
	err := testkit.Poll(time.Minute, func() bool {
		for i := 0; i < w.WorldSize; i++ {
			if !exists(filepath.Join(out, recordName(w.Round, i))) {
				return false
			}
		}
		return true
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: the round's records: %v\n", w.Rank, err)
	}
}

// waitFile waits (at most a minute) for path to exist.
func waitFile(path string) {
	if err := testkit.Poll(time.Minute, func() bool { return exists(path) }); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// testLauncher is `lrtrain launch` in miniature: flags, PET_* variables,
// Resolve (without probing GPUs) and Run.
func testLauncher(args []string) int {
	opts := DefaultOptions()
	fs := pflag.NewFlagSet("launch", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if _, err := opts.ApplyEnv(fs, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ExitUsage
	}
	cfg, err := Resolve(opts, fs.Args(), Host{CPUs: runtime.NumCPU()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ExitCode(err)
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	err = Run(context.Background(), cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "launch:", err)
	}
	return ExitCode(err)
}
