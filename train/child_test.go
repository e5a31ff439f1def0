package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/phiop"
)

// Tests that kill a run, or run several ranks, re-execute the test binary as a child
// that runs one training process (package childproc, child "train"), with the options
// file that envOptions names.
const (
	envOptions   = "LRTRAIN_TRAIN_OPTIONS"    // options JSON file: run Run with it and exit
	envStore     = "LRTRAIN_TRAIN_STORE"      // collective store address (multi-rank)
	envRank      = "LRTRAIN_TRAIN_RANK"       // this child's rank
	envSize      = "LRTRAIN_TRAIN_SIZE"       // world size
	envCrashSave = "LRTRAIN_TRAIN_CRASH_SAVE" // SIGKILL itself half-way through writing this step's adapter file
	envFlat      = "LRTRAIN_TRAIN_FLAT"       // count the flat in-place gradient all-reduces: one per step, or the child fails
	envHost      = "LRTRAIN_TRAIN_HOST"       // reduce gradients through the float64 host bucket (Env.seams.hostGrads)
	envShard     = "LRTRAIN_TRAIN_SHARD"      // shard the backbone across all ranks (a second Gloo group)
	envPasses    = "LRTRAIN_TRAIN_PASSES"     // a directory: write phiop.Passes() at the end to passes-<rank> there
	envGather    = "LRTRAIN_TRAIN_GATHER"     // model.split_delta through all-gather and reduce-scatter (Env.seams.splitGather)
	envDieSplit  = "LRTRAIN_TRAIN_DIE_SPLIT"  // SIGKILL itself before model.split_delta's exchange of this step
	envDieStep   = "LRTRAIN_TRAIN_DIE_STEP"   // SIGKILL itself as this step starts
	envSharedMem = "LRTRAIN_TRAIN_SHM"        // the data-parallel group through shared memory (gloo.DefaultSharedMemory)
)

// rawCounter counts the raw all-reduces the trainer asks of its group directly (the
// flat gradient path); the group's own host-buffer calls are not counted.
type rawCounter struct {
	*gloo.Group
	raw int
}

func (c *rawCounter) AllReduceRaw(ctx context.Context, p unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp) error {
	c.raw++
	return c.Group.AllReduceRaw(ctx, p, n, dt, op)
}

func TestMain(m *testing.M) {
	childproc.Main(map[string]func() int{"train": func() int { return runChild(os.Getenv(envOptions)) }, "threadenv": threadEnvChild})
	code := m.Run()
	tinymodel.RemoveShared()
	if refDir != "" {
		os.RemoveAll(refDir)
	}
	os.Exit(code)
}

// dieAt is a seam that SIGKILLs this process when called with step s (nil where s
// is empty).
func dieAt(s string) func(int64) {
	if s == "" {
		return nil
	}
	step, _ := strconv.ParseInt(s, 10, 64)
	return func(at int64) {
		if at == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
	}
}

// runChild runs one training process as the environment describes.
func runChild(path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var o Options
	if err := json.Unmarshal(raw, &o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	env := Env{Console: os.Stderr, JSONConsole: true}
	if s := os.Getenv(envCrashSave); s != "" {
		step, _ := strconv.ParseInt(s, 10, 64)
		saving := int64(0)
		env.seams.saveHook = func(name string) {
			if name == AdapterFile {
				saving++
			}
			// Checkpoints are written at steps every, 2·every, …: count the saves.
			if name == AdapterFile && saving*int64(o.Checkpoint.Every) == step {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Minute)
			}
		}
	}
	env.seams.splitExchange = dieAt(os.Getenv(envDieSplit))
	env.seams.stepStart = dieAt(os.Getenv(envDieStep))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM) // as lrtrain train does
	defer stop()
	var counter *rawCounter
	if addr := os.Getenv(envStore); addr != "" {
		rank, _ := strconv.Atoi(os.Getenv(envRank))
		size, _ := strconv.Atoi(os.Getenv(envSize))
		store, err := collective.DialStore(ctx, addr, time.Minute)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		var shm int64
		if os.Getenv(envSharedMem) != "" {
			shm = gloo.DefaultSharedMemory
		}
		g, err := gloo.New(ctx, collective.Config{Rank: rank, Size: size, Store: store,
			Hostname: "127.0.0.1", Timeout: time.Minute, SharedMemory: shm})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer g.Close()
		env.Group = g
		if os.Getenv(envShard) != "" {
			sg, err := gloo.New(ctx, collective.Config{Rank: rank, Size: size, Store: store, Name: "shard",
				Hostname: "127.0.0.1", Timeout: time.Minute})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			defer sg.Close()
			env.ShardGroup = sg
		}
		if os.Getenv(envFlat) != "" {
			counter = &rawCounter{Group: g}
			env.Group = counter
		}
		env.seams.hostGrads = os.Getenv(envHost) != ""
		env.seams.splitGather = os.Getenv(envGather) != ""
	}
	res, err := Run(ctx, o, env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if dir := os.Getenv(envPasses); dir != "" {
		name := filepath.Join(dir, "passes-"+os.Getenv(envRank))
		if err := os.WriteFile(name, []byte(strconv.FormatInt(phiop.Passes(), 10)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
	}
	// One flat all-reduce per optimizer step, or the path under test was not taken.
	if counter != nil && int64(counter.raw) != res.Step {
		fmt.Fprintf(os.Stderr, "child: %d flat gradient all-reduces in %d steps\n", counter.raw, res.Step)
		return 3
	}
	return 0
}

// startChild starts a training child with options o and extra environment.
func startChild(t *testing.T, o Options, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := childCommand(t, o, extra...)
	childproc.Start(t, cmd)
	return cmd
}

// childCommand is startChild's command, not started.
func childCommand(t *testing.T, o Options, extra ...string) *exec.Cmd {
	t.Helper()
	raw, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "options-*.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(raw); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := childproc.Command(context.Background(), "train", append([]string{envOptions + "=" + f.Name()}, extra...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, childproc.LogWriter(t, "child: ")
	return cmd
}

// runChildToEnd runs a child and fails the test unless it exits 0.
func runChildToEnd(t *testing.T, o Options, extra ...string) {
	t.Helper()
	if err := startChild(t, o, extra...).Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}
