package train

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/checkpoint"
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
