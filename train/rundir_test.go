package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// A second run into the output directory of a run that is alive fails at once, naming
// the live run's process, and writes nothing there; once that process is killed
// (SIGKILL: no cleanup of its own), the kernel has released the lock and a run may use
// the directory again.
func TestSecondRunIntoALiveRunsDirectoryFails(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	o := tinyOptions(t, t.TempDir())
	o.Train.MaxSteps, o.Checkpoint.Every = 100000, 2
	o.Train.Schedule, o.Train.WarmupRatio = "constant", 0
	child := startChild(t, o)
	deadline := time.Now().Add(time.Minute)
	for logged(o.Output.Dir) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first run logged no step within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	logBefore, _ := os.ReadFile(filepath.Join(o.Output.Dir, LogFile))

	_, err := Run(context.Background(), o, Env{Console: io.Discard})
	pid := fmt.Sprintf("pid %d (%s", child.Process.Pid, os.Args[0])
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), pid) || !strings.Contains(err.Error(), o.Output.Dir) {
		t.Fatalf("second run: %v\nwant ErrLocked naming %q and the directory", err, pid)
	}
	logAfter, _ := os.ReadFile(filepath.Join(o.Output.Dir, LogFile))
	if !strings.HasPrefix(string(logAfter), string(logBefore)) || strings.Count(string(logAfter), `"training"`) != 1 {
		t.Errorf("the refused run wrote to %s", LogFile)
	}

	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	stopped, cancel := context.WithCancel(context.Background())
	cancel() // it need not train: getting past the lock is the point
	if _, err := Run(stopped, o, Env{Console: io.Discard}); errors.Is(err, ErrLocked) || !errors.Is(err, context.Canceled) {
		t.Fatalf("run after the first was killed: %v, want it to start (and stop on its cancelled context)", err)
	}
}

// A base model with the same config.json and the same weight layout but other weights
// (the same architecture initialised with another seed) is refused on resume, naming
// the checkpoint and the model path; identical weights at another path are accepted.
func TestResumeRefusesOtherWeightsOfTheSameLayout(t *testing.T) {
	o := trainedRun(t)
	other := filepath.Join(t.TempDir(), "seed2")
	tinymodel.WriteTo(t, other, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 2})
	a, errA := IdentifyBaseModel(o.Model.Path)
	b, errB := IdentifyBaseModel(other)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a.ConfigSHA256 != b.ConfigSHA256 || a.WeightsSHA256 != b.WeightsSHA256 || a.ContentSHA256 == b.ContentSHA256 {
		t.Fatalf("want the same config and layout with other weights:\n%+v\n%+v", a, b)
	}
	c := o
	c.Model.Path, c.Train.MaxSteps = other, 8
	_, err := Run(context.Background(), c, Env{Console: io.Discard})
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), ckptDir(o, 6)) {
		t.Fatalf("other weights: %v\nwant ErrMismatch naming %s and %s", err, other, ckptDir(o, 6))
	}
	if err := VerifyBaseModel(ckptDir(o, 6), other); !errors.Is(err, ErrMismatch) {
		t.Errorf("VerifyBaseModel(other weights) = %v", err)
	}
}

// The weights' sums are cached by path, size and modification time: a second
// identification reads the cached sum (shown by planting a wrong one, which it returns)
// and a changed modification time makes it hash the file again. A file modified within
// racyWindow of its hashing is not cached at all: a same-size rewrite inside the file
// system's timestamp granularity could otherwise keep the old sum.
func TestWeightsHashIsCachedBySizeAndTime(t *testing.T) {
	model := filepath.Join(t.TempDir(), "model")
	if err := os.CopyFS(model, os.DirFS(tinyModel(t))); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(model, "model.safetensors")
	cache := filepath.Join(t.TempDir(), WeightsHashFile)
	if _, err := identifyBaseModel(model, cache); err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(cache); err != nil || strings.Contains(string(raw), "model.safetensors") {
		t.Fatalf("a file written just now was cached: %q (%v)", raw, err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(fresh, old, old); err != nil {
		t.Fatal(err)
	}
	first, err := identifyBaseModel(model, cache)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := IdentifyBaseModel(model)
	if err != nil || plain.ContentSHA256 != first.ContentSHA256 {
		t.Fatalf("cached %s, uncached %s (%v)", first.ContentSHA256, plain.ContentSHA256, err)
	}
	var c weightsCache
	raw, err := os.ReadFile(cache)
	if err != nil || json.Unmarshal(raw, &c) != nil || len(c.Files) != 1 {
		t.Fatalf("cache %s: %q, %v", cache, raw, err)
	}
	weights, _ := filepath.Abs(filepath.Join(model, "model.safetensors"))
	sum, ok := c.Files[weights]
	if want, _ := hashFile(weights, -1); !ok || sum.SHA256 != want {
		t.Fatalf("cache entry for %s: %+v, want SHA-256 %s", weights, sum, want)
	}
	sum.SHA256 = strings.Repeat("0", 64)
	c.Files[weights] = sum
	raw, _ = json.Marshal(c)
	if err := os.WriteFile(cache, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	planted, err := identifyBaseModel(model, cache)
	if err != nil || planted.ContentSHA256 == first.ContentSHA256 {
		t.Fatalf("with a planted sum: %s (%v); the cache was not used", planted.ContentSHA256, err)
	}

	// A copy with another modification time is hashed again, whatever the cache says.
	moved := filepath.Join(t.TempDir(), "model")
	if err := os.CopyFS(moved, os.DirFS(model)); err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(moved, "model.safetensors")
	mt := time.Unix(1_700_000_000, 0)
	if err := os.Chtimes(w, mt, mt); err != nil {
		t.Fatal(err)
	}
	again, err := identifyBaseModel(moved, cache)
	if err != nil || again.ContentSHA256 != first.ContentSHA256 {
		t.Fatalf("copy: %s (%v), want %s", again.ContentSHA256, err, first.ContentSHA256)
	}
	if err := os.Chtimes(w, mt.Add(time.Second), mt.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(cache)
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(w)
	c.Files[abs] = cachedSum{Size: c.Files[abs].Size, MTimeNS: mt.UnixNano(), SHA256: strings.Repeat("0", 64)}
	raw, _ = json.Marshal(c)
	os.WriteFile(cache, raw, 0o644)
	if again, err = identifyBaseModel(moved, cache); err != nil || again.ContentSHA256 != first.ContentSHA256 {
		t.Fatalf("after a new modification time: %s (%v), want the file hashed again (%s)", again.ContentSHA256, err, first.ContentSHA256)
	}
}

// --resume with the directory of checkpoints (not one of them) resumes from the newest
// valid one inside; a directory that is neither is a configuration error naming it.
func TestResumeFromTheCheckpointsDirectory(t *testing.T) {
	o := trainedRun(t)
	c := o
	c.Checkpoint.Resume, c.Train.MaxSteps = filepath.Join(o.Output.Dir, "checkpoints"), 7
	res, err := Run(context.Background(), c, Env{Console: io.Discard})
	if err != nil || res.ResumedFrom != ckptDir(o, 6) || res.Step != 7 {
		t.Fatalf("resume from the checkpoints directory: %+v, %v; want resumed from %s", res, err, ckptDir(o, 6))
	}
	empty := t.TempDir()
	c.Checkpoint.Resume = empty
	_, err = Run(context.Background(), c, Env{Console: io.Discard})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "want auto, never") {
		t.Fatalf("resume from a directory without checkpoints: %v", err)
	}
}
