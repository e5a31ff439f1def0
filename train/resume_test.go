package train

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/checkpoint"
)

// resumeOptions is a 12-step run checkpointing every 3 steps, in float32 on the CPU.
func resumeOptions(t *testing.T, out string) Options {
	o := tinyOptions(t, out)
	o.Train.MaxSteps = 12
	o.Checkpoint.Every = 3
	o.Checkpoint.KeepLast = 2
	o.Train.MicroBatchSize, o.Train.GradAccumSteps = 1, 2
	return o
}

// The uninterrupted run both resume tests compare with, made once per test binary.
var (
	refOnce sync.Once
	refDir  string
)

func referenceRun(t *testing.T) Options {
	t.Helper()
	refOnce.Do(func() {
		dir, err := os.MkdirTemp("", "train-resume-ref")
		if err != nil {
			t.Fatal(err)
		}
		refDir = dir
		runChildToEnd(t, resumeOptions(t, dir))
	})
	if _, err := os.Stat(filepath.Join(refDir, "checkpoints", checkpoint.DirName(12))); err != nil {
		t.Fatalf("reference run: %v", err)
	}
	return resumeOptions(t, refDir)
}

// finalFiles returns the bytes of the final checkpoint's adapter and optimizer files.
func finalFiles(t *testing.T, o Options) (adapter, optimizer []byte) {
	t.Helper()
	dir := filepath.Join(o.Checkpoint.Dir, checkpoint.DirName(int64(o.Train.MaxSteps)))
	if o.Checkpoint.Dir == "" {
		dir = filepath.Join(o.Output.Dir, "checkpoints", checkpoint.DirName(int64(o.Train.MaxSteps)))
	}
	a, err := os.ReadFile(filepath.Join(dir, AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, OptimizerFile))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// lossesByStep maps every step record of a run directory to its loss; a step logged
// twice (by a killed run and by its resumption) must have the same loss both times.
func lossesByStep(t *testing.T, dir string) map[int64]float64 {
	t.Helper()
	steps, _ := metricsOf(t, dir)
	out := map[int64]float64{}
	for _, s := range steps {
		step, loss := int64(s["step"].(float64)), s["loss"].(float64)
		if prev, ok := out[step]; ok && prev != loss {
			t.Errorf("step %d logged with loss %v and %v", step, prev, loss)
		}
		out[step] = loss
	}
	return out
}

// compareRuns checks that run got bit-identical per-step losses and final files to ref.
func compareRuns(t *testing.T, ref, run Options) {
	t.Helper()
	want, got := lossesByStep(t, ref.Output.Dir), lossesByStep(t, run.Output.Dir)
	for step := int64(1); step <= int64(ref.Train.MaxSteps); step++ {
		w, ok1 := want[step]
		g, ok2 := got[step]
		if !ok1 || !ok2 || w != g {
			t.Errorf("step %d: loss %v (present %v), uninterrupted run %v (present %v)", step, g, ok2, w, ok1)
		}
	}
	wa, wo := finalFiles(t, ref)
	ga, gopt := finalFiles(t, run)
	if !bytes.Equal(wa, ga) {
		t.Errorf("final %s differs from the uninterrupted run's", AdapterFile)
	}
	if !bytes.Equal(wo, gopt) {
		t.Errorf("final %s differs from the uninterrupted run's", OptimizerFile)
	}
}

// A run killed with SIGKILL at a random step and resumed (resume: auto) reproduces the
// uninterrupted run bit for bit: every step's loss and the final adapter and optimizer
// files.
func TestKilledRunResumesBitIdentically(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	ref := referenceRun(t)

	run := resumeOptions(t, t.TempDir())
	seed := uint64(time.Now().UnixNano())
	killAt := int64(2 + rand.New(rand.NewPCG(seed, 0)).IntN(9)) // kill once step 2..10 is logged
	t.Logf("killing after step %d (seed %d)", killAt, seed)
	cmd := startChild(t, run)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if steps := logged(run.Output.Dir); steps >= killAt {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never reached the step to kill it at")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	c, _, err := checkpoint.LatestValid(filepath.Join(run.Output.Dir, "checkpoints"))
	if err != nil {
		t.Logf("no checkpoint before the kill: %v", err)
	} else {
		t.Logf("killed run left step %d", c.Step)
	}

	runChildToEnd(t, run)
	compareRuns(t, ref, run)
}

// logged is the number of complete step records in a run's metrics.jsonl (the run
// has no evaluation records).
func logged(dir string) int64 {
	raw, _ := os.ReadFile(filepath.Join(dir, MetricsFile))
	return int64(bytes.Count(raw, []byte("\n")))
}

// A run killed half-way through writing a checkpoint leaves the previous checkpoint
// loadable; resuming from it reproduces the uninterrupted run.
func TestCrashDuringCheckpointWriteKeepsPreviousCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	ref := referenceRun(t)

	run := resumeOptions(t, t.TempDir())
	cmd := startChild(t, run, envCrashSave+"=6")
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed during the save: %v", err)
	}
	root := filepath.Join(run.Output.Dir, "checkpoints")
	c, _, err := checkpoint.LatestValid(root)
	if err != nil {
		t.Fatal(err)
	}
	if c.Step != 3 {
		t.Fatalf("latest valid checkpoint after the crash is step %d, want 3", c.Step)
	}
	if _, err := OpenCheckpoint(c.Dir); err != nil {
		t.Fatalf("previous checkpoint does not load: %v", err)
	}
	tmps, _ := filepath.Glob(filepath.Join(root, ".tmp-step-000006-*"))
	if len(tmps) != 1 {
		t.Errorf("want the crashed save's temporary directory, found %v", tmps)
	}
	runChildToEnd(t, run)
	compareRuns(t, ref, run)
}
