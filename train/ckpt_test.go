package train

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/safetensors"
)

// A finished 6-step run (checkpoints at steps 4 and 6), made once; each test gets a
// copy of its output directory.
var (
	trainedOnce sync.Once
	trainedDir  string
	trainedErr  error
)

func trainedRun(t *testing.T) Options {
	t.Helper()
	trainedOnce.Do(func() {
		trainedDir, trainedErr = os.MkdirTemp("", "train-trained")
		if trainedErr == nil {
			_, trainedErr = Run(context.Background(), tinyOptions(t, trainedDir), Env{Console: io.Discard})
		}
	})
	if trainedErr != nil {
		t.Fatal(trainedErr)
	}
	out := filepath.Join(t.TempDir(), "run")
	if err := os.CopyFS(out, os.DirFS(trainedDir)); err != nil {
		t.Fatal(err)
	}
	return tinyOptions(t, out)
}

func ckptDir(o Options, step int64) string {
	return filepath.Join(o.Output.Dir, "checkpoints", checkpoint.DirName(step))
}

// The adapter file holds exactly the trainable list (φ grids included), the optimizer
// file every trained parameter's moments and step, trainer.json the resume state.
func TestCheckpointHoldsTheWholeTrainableList(t *testing.T) {
	o := trainedRun(t)
	s, err := OpenCheckpoint(ckptDir(o, 6))
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(o.Model.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := LoadAdapters(s.Dir, m); err != nil {
		t.Fatal(err)
	}
	var want, wantOpt []string
	grids := 0
	for _, nt := range m.TrainableTensors() {
		want = append(want, nt.Name)
		if strings.HasSuffix(nt.Name, ".phi.grid") {
			grids++
			continue
		}
		wantOpt = append(wantOpt, nt.Name+".exp_avg", nt.Name+".exp_avg_sq", nt.Name+".step")
	}
	if grids != 14 {
		t.Errorf("%d φ grids in the trainable list, want one per adapted module (14)", grids)
	}
	if got := tensorNames(t, filepath.Join(s.Dir, AdapterFile)); !slices.Equal(got, sorted(want)) {
		t.Errorf("%s holds %v,\nwant %v", AdapterFile, got, sorted(want))
	}
	if got := tensorNames(t, filepath.Join(s.Dir, OptimizerFile)); !slices.Equal(got, sorted(wantOpt)) {
		t.Errorf("%s holds %v,\nwant %v", OptimizerFile, got, sorted(wantOpt))
	}
	st := s.State
	if st.Step != 6 || !st.Finished || st.Reason != "max_steps" || st.WorldSize != 1 || len(st.RNG) == 0 ||
		st.Cursor.Position != 24 || st.DropoutPasses != 12 || len(st.LossHistory) != 6 {
		t.Errorf("trainer state %+v", st)
	}
	base, err := IdentifyBaseModel(o.Model.Path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Manifest.BaseModel != base || s.Manifest.WorldSize != 1 || s.Manifest.Architecture != "LlamaForCausalLM" {
		t.Errorf("manifest %+v, base model now %+v", s.Manifest, base)
	}
	resolved, _ := o.resolve()
	if w, err := reconcile(s.Manifest.Options, resolved); err != nil || len(w) != 0 {
		t.Errorf("recorded options differ from the run's: %v %v", w, err)
	}
}

func tensorNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return sorted(f.Names())
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// Changing an adapter-shaping setting is refused with an error naming the key.
func TestResumeRefusesAdapterShapeChanges(t *testing.T) {
	o := trainedRun(t)
	for key, change := range map[string]func(*Options){
		"adapter.r":              func(o *Options) { o.Adapter.R = 8 },
		"adapter.k":              func(o *Options) { o.Adapter.K = 16 },
		"adapter.method":         func(o *Options) { o.Adapter.Method = "lora" },
		"adapter.basis":          func(o *Options) { o.Adapter.Basis = "gaussian" },
		"adapter.target_modules": func(o *Options) { o.Adapter.TargetModules = adapter.Targets{Names: []string{"q_proj", "v_proj"}} },
	} {
		c := o
		c.Train.MaxSteps = 8
		change(&c)
		_, err := Run(context.Background(), c, Env{Console: io.Discard})
		if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s changed: err = %v, want ErrMismatch naming %s", key, err, key)
		}
	}
}

// Schedule and logging settings may change: the configuration wins, with a warning
// naming each changed key; resuming a finished run with nothing more to do is a no-op.
func TestResumeTakesNewScheduleWithWarning(t *testing.T) {
	o := trainedRun(t)
	res, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil || res.Reason != "already finished" || res.Step != 6 {
		t.Fatalf("resuming a finished run: %+v, %v", res, err)
	}
	o.Train.LR, o.Train.MaxSteps, o.Train.Schedule = 5e-3, 8, "cosine"
	res, err = Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 8 || res.ResumedFrom != ckptDir(o, 6) {
		t.Errorf("result %+v", res)
	}
	log, _ := os.ReadFile(filepath.Join(o.Output.Dir, LogFile))
	for _, key := range []string{"train.lr changed", "train.max_steps changed", "train.schedule changed"} {
		if !strings.Contains(string(log), key) {
			t.Errorf("train.log has no warning %q", key)
		}
	}
	steps, _ := metricsOf(t, o.Output.Dir)
	if last := steps[len(steps)-1]; last["step"].(float64) != 8 || last["lr"].(float64) == 0 {
		t.Errorf("last step record %v", last)
	}
}

// Another base model is refused before anything is loaded; the same model at another
// path is accepted with a warning.
func TestResumeChecksTheBaseModel(t *testing.T) {
	o := trainedRun(t)
	other := filepath.Join(t.TempDir(), "qwen")
	tinymodel.WriteTo(t, other, hfinit.Options{Arch: "qwen2", Preset: "tiny", Seed: 1})
	c := o
	c.Model.Path, c.Train.MaxSteps = other, 8
	_, err := Run(context.Background(), c, Env{Console: io.Discard})
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "model.path") {
		t.Fatalf("other base model: err = %v, want ErrMismatch naming model.path", err)
	}
	if err := VerifyBaseModel(ckptDir(o, 6), other); !errors.Is(err, ErrMismatch) {
		t.Errorf("VerifyBaseModel(other) = %v", err)
	}

	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.CopyFS(moved, os.DirFS(o.Model.Path)); err != nil {
		t.Fatal(err)
	}
	c.Model.Path = moved
	if _, err := Run(context.Background(), c, Env{Console: io.Discard}); err != nil {
		t.Fatalf("moved base model: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(o.Output.Dir, LogFile))
	if !strings.Contains(string(log), "base model moved") {
		t.Error("no warning about the moved base model")
	}
}

// LoadAdapters restores exactly the saved tensors and refuses a model that already has
// adapters or has another architecture.
func TestLoadAdaptersRestoresTheSavedTensors(t *testing.T) {
	o := trainedRun(t)
	dir := ckptDir(o, 6)
	m, err := model.Load(o.Model.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a, err := OpenAdapters(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, err := safetensors.Open(filepath.Join(dir, AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, nt := range a.Tensors {
		h, err := readHost(nt.Name, nt.Tensor)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := f.Bytes(nt.Name)
		if !slices.Equal(h.data, want) {
			t.Errorf("%s differs from the file", nt.Name)
		}
	}
	if err := LoadAdapters(dir, m); err == nil {
		t.Error("loading adapters twice succeeded")
	}
	other := filepath.Join(t.TempDir(), "qwen")
	tinymodel.WriteTo(t, other, hfinit.Options{Arch: "qwen2", Preset: "tiny", Seed: 1})
	q, err := model.Load(other)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := LoadAdapters(dir, q); !errors.Is(err, ErrMismatch) {
		t.Errorf("LoadAdapters into a Qwen2: %v, want ErrMismatch", err)
	}
}

// A run resumed from a checkpoint at or past a lowered max_steps ends at once, without
// writing that checkpoint again.
func TestResumeAtLoweredMaxSteps(t *testing.T) {
	o := trainedRun(t)
	o.Checkpoint.Resume, o.Train.MaxSteps = ckptDir(o, 4), 4
	res, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil || res.Reason != "max_steps" || res.Step != 4 || res.Checkpoint != "" {
		t.Errorf("result %+v, %v", res, err)
	}
}

// resume: never refuses to start over checkpoints it would collide with.
func TestResumeNeverRefusesExistingCheckpoints(t *testing.T) {
	o := trainedRun(t)
	o.Checkpoint.Resume = "never"
	_, err := Run(context.Background(), o, Env{Console: io.Discard})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
}
