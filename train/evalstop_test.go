package train

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/checkpoint"
)

// evalOptions trains 8 steps, evaluating every 2 and checkpointing every 4, with a
// constant learning rate (a step's update does not depend on max_steps).
func evalOptions(t *testing.T, out string) Options {
	o := tinyOptions(t, out)
	o.Data.Eval = []string{testdata("alpaca_tiny_eval.json")}
	o.Train.MaxSteps, o.Train.EvalEvery, o.Train.Patience = 8, 2, 3
	o.Checkpoint.Every, o.Checkpoint.KeepLast = 4, 10
	o.Train.Schedule, o.Train.WarmupRatio = "constant", 0
	o.Train.MicroBatchSize, o.Train.GradAccumSteps = 1, 2
	return o
}

// evalRecords maps the evaluation records of a run directory to their losses, failing on
// a step evaluated twice.
func evalRecords(t *testing.T, dir string) map[int64]float64 {
	t.Helper()
	_, evals := metricsOf(t, dir)
	out := map[int64]float64{}
	for _, e := range evals {
		step := int64(e["step"].(float64))
		if _, dup := out[step]; dup {
			t.Errorf("%s: step %d evaluated twice", dir, step)
		}
		out[step] = e["eval_loss"].(float64)
	}
	return out
}

// stepRecords counts the step records of a run directory per step.
func stepRecords(t *testing.T, dir string) map[int64]int {
	t.Helper()
	steps, _ := metricsOf(t, dir)
	out := map[int64]int{}
	for _, s := range steps {
		out[int64(s["step"].(float64))]++
	}
	return out
}

// A stop that lands during an evaluation (here the evaluation hook fails as a collective
// does when the run is interrupted or a peer is lost) saves the step just completed, as
// a stop during the step's all-reduce does, and marks the evaluation as still due. The
// resumed run evaluates that step first and ends byte for byte like an uninterrupted
// run, with every step and every evaluation logged once. The same holds for the final
// evaluation of a run whose last step is not an eval_every step.
func TestStopDuringEvaluationSavesTheStep(t *testing.T) {
	if testing.Short() {
		t.Skip("long: four training runs compared byte for byte; runs without -short")
	}
	for _, tc := range []struct {
		name             string
		maxSteps, failAt int64
	}{{"periodic evaluation", 8, 6}, {"final evaluation", 7, 7}} {
		t.Run(tc.name, func(t *testing.T) {
			ref := evalOptions(t, t.TempDir())
			ref.Train.MaxSteps = int(tc.maxSteps)
			if _, err := Run(context.Background(), ref, Env{Console: io.Discard}); err != nil {
				t.Fatal(err)
			}

			o := evalOptions(t, t.TempDir())
			o.Train.MaxSteps = int(tc.maxSteps)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			lost := errors.New("peer lost")
			hook := func(ec EvalContext) (map[string]float64, error) {
				if ec.Step == tc.failAt {
					cancel()
					return nil, lost
				}
				return nil, nil
			}
			res, err := Run(ctx, o, Env{Console: io.Discard, Hooks: Hooks{Eval: hook}})
			if !errors.Is(err, lost) {
				t.Fatalf("interrupted evaluation: %v", err)
			}
			want := filepath.Join(o.Output.Dir, "checkpoints", checkpoint.DirName(tc.failAt))
			if res.Checkpoint != want || !strings.Contains(err.Error(), "saved in "+want) {
				t.Fatalf("checkpoint %q, error %q; want step %d saved in %s", res.Checkpoint, err, tc.failAt, want)
			}
			s, err := OpenCheckpoint(want)
			if err != nil {
				t.Fatal(err)
			}
			if !s.State.EvalDue || s.State.Finished || s.State.Step != tc.failAt {
				t.Fatalf("saved state: step %d, eval due %v, finished %v", s.State.Step, s.State.EvalDue, s.State.Finished)
			}

			var evaluated []int64
			hook = func(ec EvalContext) (map[string]float64, error) {
				evaluated = append(evaluated, ec.Step)
				return nil, nil
			}
			res, err = Run(context.Background(), o, Env{Console: io.Discard, Hooks: Hooks{Eval: hook}})
			if err != nil || res.ResumedFrom != want {
				t.Fatalf("resume: %+v, %v", res, err)
			}
			if len(evaluated) == 0 || evaluated[0] != tc.failAt {
				t.Errorf("the resumed run evaluated steps %v, want step %d first", evaluated, tc.failAt)
			}
			wantEvals, gotEvals := evalRecords(t, ref.Output.Dir), evalRecords(t, o.Output.Dir)
			if len(gotEvals) != len(wantEvals) {
				t.Errorf("evaluations at %v, uninterrupted run %v", gotEvals, wantEvals)
			}
			for step, loss := range wantEvals {
				if got, ok := gotEvals[step]; !ok || got != loss {
					t.Errorf("eval loss at step %d: %v (logged %v), uninterrupted %v", step, got, ok, loss)
				}
			}
			for step, n := range stepRecords(t, o.Output.Dir) {
				if n != 1 {
					t.Errorf("step %d logged %d times", step, n)
				}
			}
			if res.BestEvalLoss == nil || *res.BestEvalLoss != minOf(wantEvals) {
				t.Errorf("best eval loss %v, want %v", res.BestEvalLoss, minOf(wantEvals))
			}
			wa, wo := finalFiles(t, ref)
			ga, gopt := finalFiles(t, o)
			if !bytes.Equal(wa, ga) || !bytes.Equal(wo, gopt) {
				t.Errorf("final adapter or optimizer differs from the uninterrupted run's")
			}
		})
	}
}

func minOf(m map[int64]float64) float64 {
	first, best := true, 0.0
	for _, v := range m {
		if first || v < best {
			first, best = false, v
		}
	}
	return best
}

// A run killed (SIGKILL, here half-way through writing its step-6 checkpoint) after
// logging steps past its last checkpoint (step 3) is resumed from that checkpoint: the
// resumed run drops the records of steps 4-6 the killed run wrote and logs them again,
// so metrics.jsonl holds every step once, with the uninterrupted run's losses.
func TestResumeLogsEachStepOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	ref := referenceRun(t)
	run := resumeOptions(t, t.TempDir())
	if err := startChild(t, run, envCrashSave+"=6").Wait(); err == nil {
		t.Fatal("the child did not kill itself while saving step 6")
	}
	c, _, err := checkpoint.LatestValid(filepath.Join(run.Output.Dir, "checkpoints"))
	if err != nil || c.Step != 3 {
		t.Fatalf("latest valid checkpoint after the kill: %v, %v; want step 3", c, err)
	}
	before := stepRecords(t, run.Output.Dir)
	if before[4] != 1 || before[6] != 1 {
		t.Fatalf("the killed run logged steps %v; want 1 to 6", before)
	}
	raw, _ := os.ReadFile(filepath.Join(run.Output.Dir, MetricsFile))
	cut := append(raw, []byte(`{"step": 7, "lo`)...) // and a record cut short by the kill
	if err := os.WriteFile(filepath.Join(run.Output.Dir, MetricsFile), cut, 0o644); err != nil {
		t.Fatal(err)
	}

	runChildToEnd(t, run)
	after := stepRecords(t, run.Output.Dir)
	for step := int64(1); step <= int64(run.Train.MaxSteps); step++ {
		if after[step] != 1 {
			t.Errorf("step %d logged %d times after the resume", step, after[step])
		}
	}
	compareRuns(t, ref, run)
}
