package train

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/dist/collective"
)

// A single process whose context is cancelled (SIGTERM from its launcher) saves the
// step it reached before returning, so nothing trained is lost; resumed and cancelled
// again before another step, it has nothing new to save and says only that it was
// interrupted (the newest checkpoint already holds that state).
func TestInterruptedSingleProcessSavesOnce(t *testing.T) {
	o := tinyOptions(t, t.TempDir())
	o.Checkpoint.Every = 0 // only the interruption saves before the end
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := Env{Console: io.Discard, Hooks: Hooks{Step: func(s StepMetrics) {
		if s.Step == 3 {
			cancel()
		}
	}}}
	res, err := Run(ctx, o, env)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted at step 3") {
		t.Fatalf("cancelled run: %v", err)
	}
	want := filepath.Join(o.Checkpoint.Dir, checkpoint.DirName(3))
	if o.Checkpoint.Dir == "" {
		want = filepath.Join(o.Output.Dir, "checkpoints", checkpoint.DirName(3))
	}
	if res.Checkpoint != want {
		t.Fatalf("checkpoint %q, want %q", res.Checkpoint, want)
	}
	s, err := OpenCheckpoint(want)
	if err != nil {
		t.Fatal(err)
	}
	if s.State.Step != 3 || s.State.Finished {
		t.Errorf("saved state: step %d, finished %v; want step 3, unfinished", s.State.Step, s.State.Finished)
	}

	cancelled, stop := context.WithCancel(context.Background())
	stop()
	res, err = Run(cancelled, o, Env{Console: io.Discard})
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "checkpoint failed") ||
		!strings.Contains(err.Error(), "interrupted at step 3") {
		t.Fatalf("resumed and cancelled before a step: %v", err)
	}
	if res.ResumedFrom != want {
		t.Errorf("resumed from %q, want %q", res.ResumedFrom, want)
	}
}

// Two ranks stopped with SIGTERM (what lrtrain launch sends when the group must stop):
// rank 0 saves the step it reached, a valid checkpoint the run resumes from, even
// though no periodic checkpoint was due; both ranks report the interruption.
func TestSIGTERMedRanksSaveTheStepReached(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	o := distOptions(t, 1)
	o.Train.MaxSteps, o.Checkpoint.Every = 100000, 0
	o.Train.Schedule, o.Train.WarmupRatio = "constant", 0 // the learning rate does not depend on max_steps
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var ranks []*exec.Cmd
	for r := range 2 {
		ranks = append(ranks, startChild(t, o, envStore+"="+srv.Addr(), envRank+"="+strconv.Itoa(r), envSize+"=2"))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if steps, _ := metricsOfMaybe(o.Output.Dir); steps >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 3 steps within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range ranks {
		c.Process.Signal(syscall.SIGTERM)
	}
	for r, c := range ranks {
		if err := c.Wait(); err == nil {
			t.Errorf("rank %d exited 0 after SIGTERM", r)
		}
	}
	c, skipped, err := checkpoint.LatestValid(filepath.Join(o.Output.Dir, "checkpoints"))
	if err != nil || len(skipped) > 0 {
		t.Fatalf("latest valid checkpoint: %v (skipped %v)", err, skipped)
	}
	s, err := OpenCheckpoint(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("saved at step %d on SIGTERM (%s)", s.State.Step, c.Dir)
	if s.State.Step < 3 || s.State.Finished || s.Manifest.WorldSize != 2 {
		t.Fatalf("saved state: step %d, finished %v, world size %d", s.State.Step, s.State.Finished, s.Manifest.WorldSize)
	}

	// The saved state is the run's: resumed on two ranks for two more steps, it ends
	// exactly where an uninterrupted two-rank run of as many steps ends.
	end := int(s.State.Step) + 2
	resumed := o
	resumed.Train.MaxSteps = end
	ref := distOptions(t, 1)
	ref.Train.MaxSteps, ref.Train.Schedule, ref.Train.WarmupRatio = end, "constant", 0
	runTwoRanks(t, resumed)
	runTwoRanks(t, ref)
	a, b := readAdapters(t, ref), readAdapters(t, resumed)
	for name, w := range a {
		if len(b[name]) != len(w) {
			t.Fatalf("%s missing or reshaped after the resume", name)
		}
		for i := range w {
			if w[i] != b[name][i] {
				t.Fatalf("%s[%d]: %.17g after the SIGTERM-saved step %d and a resume, %.17g uninterrupted",
					name, i, b[name][i], s.State.Step, w[i])
			}
		}
	}
}

// metricsOfMaybe counts the step records of a run's metrics file, 0 while it is absent.
func metricsOfMaybe(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	if err != nil {
		return 0, err
	}
	return strings.Count(string(b), `"step"`) - strings.Count(string(b), `"eval_loss"`), nil
}
