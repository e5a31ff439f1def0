package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/adapter"
)

func TestDecodeEmptyIsDefaultResolved(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "~\n", "model:\n"} {
		c, err := Decode([]byte(src), "cfg.yaml", nil)
		if err != nil {
			t.Fatalf("Decode(%q): %v", src, err)
		}
		want := Default()
		want.resolve(map[string]bool{})
		if !reflect.DeepEqual(withoutWhere(c), withoutWhere(want)) {
			t.Errorf("Decode(%q) = %+v, want the resolved defaults %+v", src, c, want)
		}
	}
}

func TestDecodeReadsEveryKind(t *testing.T) {
	src := `
model: {path: m, dtype: bfloat16, activation_checkpointing: true, recompute_delta: true, delta_per_step: false, split_delta: true, fused_loss: false, loss_chunk: 64}
adapter:
  method: sinelora
  r: 16
  rslora: true
  dropout: 0.05
  target_modules: all-linear
  modules_to_save: [score]
  phi: {k: 20, l: 2.5, grid: chebyshev, basis: gaussian, share: bandwidth, center: true, residual: true, init: small, init_value: 0.1, lr_scale: 4}
  sine_omega: 100
data:
  format: commonsense_json
  train: [a.json, b.json]
  eval: c.json
  max_len: 1e3
  packing: true
  template: {with_input: "I={instruction} X={input}", no_input: "I={instruction}"}
  seed: 18446744073709551615
train:
  seed: 3
  max_steps: 100
  micro_batch_size: 2
  grad_accum_steps: 8
  lr: 3e-4
  weight_decay: 0.01
  betas: [0.9, 0.95]
  eps: 1.0e-6
  warmup_ratio: 0.03
  schedule: cosine
  grad_clip: 0
  eval_every: 50
  early_stopping_patience: 2
  log_every: 1
  compute_dtype: bfloat16
  device: cuda:1
checkpoint: {dir: ck, every: 25, keep_last: 0, resume: never}
export: {dir: out, dtype: float16, max_shard_size: 2GB}
output: {dir: run}
dist: {backend: gloo, timeout: 90s, shard_group_size: 4, shared_memory: false}
`
	c, err := Decode([]byte(src), "cfg.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Model: Model{Path: "m", DType: "bfloat16", ActivationCheckpointing: true, RecomputeDelta: true, SplitDelta: true, LossChunk: 64},
		Adapter: adapter.Spec{Method: "sinelora", R: 16, Alpha: 32, RSLoRA: true, Dropout: 0.05,
			TargetModules: adapter.Targets{AllLinear: true}, ModulesToSave: []string{"score"},
			Phi: adapter.Phi{K: 20, L: 2.5, Grid: "chebyshev", Basis: "gaussian", Share: "bandwidth",
				Center: true, Residual: true, Init: "small", InitValue: 0.1, LRScale: 4},
			SineOmega: 100},
		Data: Data{Format: "commonsense_json", Train: Paths{"a.json", "b.json"}, Eval: Paths{"c.json"},
			MaxLen: 1000, Packing: true,
			Template: Template{WithInput: "I={instruction} X={input}", NoInput: "I={instruction}"},
			Shuffle:  true, Seed: 18446744073709551615, LastBatch: "pad"},
		Train: Train{Seed: 3, MaxSteps: 100, MicroBatchSize: 2, GradAccumSteps: 8, LR: 3e-4,
			WeightDecay: 0.01, Betas: [2]float64{0.9, 0.95}, Eps: 1e-6, WarmupRatio: 0.03,
			Schedule: "cosine", GradClip: 0, EvalEvery: 50, EarlyStoppingPatience: 2, LogEvery: 1,
			ComputeDType: "bfloat16", Device: "cuda:1"},
		Checkpoint: Checkpoint{Dir: "ck", Every: 25, KeepLast: 0, Resume: "never"},
		Export:     Export{Dir: "out", DType: "float16", MaxShardSize: "2GB"},
		Output:     Output{Dir: "run"},
		Dist:       Dist{Backend: "gloo", Timeout: 90 * time.Second, ShardGroupSize: 4, ShardPrefetch: 1},
	}
	if got := withoutWhere(c); !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if got := c.Where("train.lr"); got != "cfg.yaml:25" {
		t.Errorf("Where(train.lr) = %q, want cfg.yaml:25", got)
	}
	if got := c.Where("train.eps"); got != "cfg.yaml:28" {
		t.Errorf("Where(train.eps) = %q, want cfg.yaml:28", got)
	}
}

func TestUnknownKeysNameFileLineAndNearestKey(t *testing.T) {
	cases := []struct {
		src, key, want string
	}{
		// A misspelling of a name other trainers use.
		{"train:\n  seed: 1\n  learning_rat: 1e-4\n", "train.learning_rat",
			"unknown key `learning_rat` in section train at cfg.yaml:3; did you mean `lr`?"},
		// A name from PEFT / transformers.
		{"adapter:\n  lora_alpha: 32\n", "adapter.lora_alpha",
			"unknown key `lora_alpha` in section adapter at cfg.yaml:2; did you mean `alpha`?"},
		{"train:\n  gradient_accumulation_steps: 4\n", "train.gradient_accumulation_steps",
			"unknown key `gradient_accumulation_steps` in section train at cfg.yaml:2; did you mean `grad_accum_steps`?"},
		// A transposition counts as one edit.
		{"train:\n  scheduel: cosine\n", "train.scheduel",
			"unknown key `scheduel` in section train at cfg.yaml:2; did you mean `schedule`?"},
		// Case and dashes.
		{"train:\n  Max-Steps: 3\n", "train.Max-Steps",
			"unknown key `Max-Steps` in section train at cfg.yaml:2; did you mean `max_steps`?"},
		// A prefix of a key.
		{"train:\n  micro_batch: 3\n", "train.micro_batch",
			"unknown key `micro_batch` in section train at cfg.yaml:2; did you mean `micro_batch_size`?"},
		// A key of another section.
		{"adapter:\n  lr: 1e-4\n", "adapter.lr",
			"unknown key `lr` in section adapter at cfg.yaml:2; did you mean `train.lr`? (`lr` is in section train)"},
		{"lr: 1e-4\n", "lr",
			"unknown section `lr` at cfg.yaml:1; did you mean `train.lr`? (`lr` is in section train)"},
		// Nested sections.
		{"adapter:\n  phi:\n    grids: uniform\n", "adapter.phi.grids",
			"unknown key `grids` in section adapter.phi at cfg.yaml:3; did you mean `grid`?"},
		{"traning:\n  lr: 1\n", "traning", "unknown section `traning` at cfg.yaml:1; did you mean `train`?"},
		// Nothing close: the keys are listed.
		{"dist:\n  zzzzzz: 1\n", "dist.zzzzzz",
			"unknown key `zzzzzz` in section dist at cfg.yaml:2; the keys of section dist are backend, timeout, shard_group_size, shard_prefetch, shared_memory"},
	}
	for _, tc := range cases {
		_, err := Decode([]byte(tc.src), "cfg.yaml", nil)
		l := issuesOf(t, err)
		if len(l) != 1 || l[0].Key != tc.key || !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%q: issues %v, want one ErrUnknownKey for %s", tc.src, l, tc.key)
			continue
		}
		if got := l[0].Error(); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

func TestWrongTypesNameKeyAndExpectedType(t *testing.T) {
	cases := []struct{ src, key, want string }{
		{"train:\n  lr: fast\n", "train.lr", `expected a number, got the string "fast"`},
		{"train:\n  lr: \"1e-4\"\n", "train.lr", `expected a number, got the string "1e-4"`},
		{"train:\n  max_steps: 2.5\n", "train.max_steps", "expected an integer, got the number 2.5"},
		{"train:\n  max_steps: [1]\n", "train.max_steps", "expected an integer, got a list"},
		{"train:\n  seed: -1\n", "train.seed", "expected a non-negative integer, got the number -1"},
		{"train:\n  betas: [0.9]\n", "train.betas", "expected a list of 2 numbers, got a list"},
		{"train:\n  betas: [0.9, x]\n", "train.betas", "expected a list of 2 numbers, got a list"},
		{"model:\n  activation_checkpointing: 1\n", "model.activation_checkpointing", "expected true or false, got the number 1"},
		{"model:\n  path: {a: 1}\n", "model.path", "expected a string, got a mapping"},
		{"adapter:\n  target_modules: {q: 1}\n", "adapter.target_modules", "expected a list of module names, all-linear or regex:<expression>, got a mapping"},
		{"adapter:\n  modules_to_save: score\n", "adapter.modules_to_save", `expected a list of strings, got the string "score"`},
		{"data:\n  train: [[a]]\n", "data.train", "expected a list of strings, got a list"},
		{"dist:\n  timeout: 30\n", "dist.timeout", "expected a duration such as 30m or 90s, got the number 30"},
		{"train: 3\n", "train", "expected a mapping of keys, got the number 3"},
	}
	for _, tc := range cases {
		_, err := Decode([]byte(tc.src), "cfg.yaml", nil)
		l := issuesOf(t, err)
		if len(l) != 1 || l[0].Key != tc.key || !errors.Is(err, ErrType) {
			t.Errorf("%q: issues %v, want one ErrType for %s", tc.src, l, tc.key)
			continue
		}
		if msg := l[0].Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, "cfg.yaml:") {
			t.Errorf("%q: %s\nwant it to contain %q and the place", tc.src, msg, tc.want)
		}
	}
}

func TestDecodeListsAllProblemsInFileOrder(t *testing.T) {
	src := "model:\n  pth: x\ntrain:\n  lr: fast\n  lr: 2\n  epoch: 3\n"
	_, err := Decode([]byte(src), "cfg.yaml", nil)
	l := issuesOf(t, err)
	var keys []string
	for _, i := range l {
		keys = append(keys, i.Key)
	}
	want := []string{"model.pth", "train.lr", "train.lr", "train.epoch"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("issue keys %v, want %v (%v)", keys, want, err)
	}
	if !errors.Is(l[2], ErrDuplicateKey) || !strings.Contains(l[2].Error(), "first given at cfg.yaml:4") {
		t.Errorf("duplicate: %v", l[2])
	}
	if !strings.HasPrefix(err.Error(), "config: 4 problems:\n  - unknown key `pth` in section model at cfg.yaml:2; did you mean `path`?") {
		t.Errorf("message:\n%s", err)
	}
}

func TestSyntaxErrorNamesTheLine(t *testing.T) {
	_, err := Decode([]byte("model:\n  path: a\n  dtype: [x\n"), "cfg.yaml", nil)
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "cfg.yaml:") {
		t.Errorf("err = %v, want ErrSyntax at cfg.yaml:N", err)
	}
	_, err = Decode([]byte("model: {}\n---\ntrain: {}\n"), "cfg.yaml", nil)
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "second YAML document") {
		t.Errorf("two documents: err = %v", err)
	}
	_, err = Decode([]byte("- a\n- b\n"), "cfg.yaml", nil)
	if !errors.Is(err, ErrType) {
		t.Errorf("a list at the top: err = %v, want ErrType", err)
	}
}

func TestNullKeepsDefaultAndAnchorsWork(t *testing.T) {
	src := "train:\n  grad_clip:\n  lr: &x 0.5\n  weight_decay: *x\noutput:\n"
	c, err := Decode([]byte(src), "cfg.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Train.GradClip != DefaultGradClip || c.Train.LR != 0.5 || c.Train.WeightDecay != 0.5 {
		t.Errorf("grad_clip %v lr %v weight_decay %v", c.Train.GradClip, c.Train.LR, c.Train.WeightDecay)
	}
	if c.Output.Dir != "runs/lrtrain" {
		t.Errorf("an empty section changed output.dir to %q", c.Output.Dir)
	}
}

func TestResolvedDefaults(t *testing.T) {
	c, err := Decode([]byte("adapter: {r: 6}\ntrain: {seed: 9}\noutput: {dir: o}\nmodel: {dtype: bfloat16}\n"), "c", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Adapter.Alpha != 12 {
		t.Errorf("alpha = %v, want 2r = 12", c.Adapter.Alpha)
	}
	if c.Data.Seed != 9 {
		t.Errorf("data.seed = %d, want train.seed 9", c.Data.Seed)
	}
	if c.Train.Epochs != 1 || c.Train.MaxSteps != 0 {
		t.Errorf("epochs %d max_steps %d, want one epoch", c.Train.Epochs, c.Train.MaxSteps)
	}
	if c.Checkpoint.Dir != "o/checkpoints" || c.Export.Dir != "o/merged" || c.Export.DType != "bfloat16" {
		t.Errorf("checkpoint.dir %q export.dir %q export.dtype %q", c.Checkpoint.Dir, c.Export.Dir, c.Export.DType)
	}
	if c.Where("adapter.alpha") != "" {
		t.Errorf("a resolved default has a place: %q", c.Where("adapter.alpha"))
	}
	// An explicit data seed, even 0, is kept; an explicit alpha is kept.
	c, err = Decode([]byte("adapter: {r: 6, alpha: 1}\ntrain: {seed: 9, max_steps: 5}\ndata: {seed: 0}\n"), "c", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Adapter.Alpha != 1 || c.Data.Seed != 0 || c.Train.Epochs != 0 {
		t.Errorf("alpha %v data.seed %d epochs %d", c.Adapter.Alpha, c.Data.Seed, c.Train.Epochs)
	}
}

func TestTargetModulesForms(t *testing.T) {
	cases := map[string]adapter.Targets{
		"[q_proj, v_proj]":           {Names: []string{"q_proj", "v_proj"}},
		"q_proj, v_proj":             {Names: []string{"q_proj", "v_proj"}},
		"all-linear":                 {AllLinear: true},
		`'regex:.*\.(q|v)_proj'`:     {Regex: `.*\.(q|v)_proj`},
		`"re:layers\\.0\\..*"`:       {Regex: `layers\.0\..*`},
		"[]":                         {},
		"[attention.output.dense]":   {Names: []string{"attention.output.dense"}},
		"regex:model.layers.1.mlp.*": {Regex: "model.layers.1.mlp.*"},
	}
	for src, want := range cases {
		c, err := Decode([]byte("adapter:\n  target_modules: "+src+"\n"), "c", nil)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if !reflect.DeepEqual(c.Adapter.TargetModules, want) {
			t.Errorf("%s: %+v, want %+v", src, c.Adapter.TargetModules, want)
		}
	}
}

// output.tensorboard is a boolean: true turns TensorBoard files on, a non-boolean is a
// type error naming the key, and a near miss is suggested.
func TestOutputTensorBoardKey(t *testing.T) {
	c, err := Decode([]byte("output: {dir: o}\n"), "c", []string{"output.tensorboard=true"})
	if err != nil || !c.Output.TensorBoard {
		t.Fatalf("tensorboard = %v, err %v", c.Output.TensorBoard, err)
	}
	if c, _ := Decode([]byte("output: {dir: o}\n"), "c", nil); c.Output.TensorBoard {
		t.Error("tensorboard is on by default")
	}
	_, err = Decode([]byte("output:\n  tensorboard: often\n"), "c", nil)
	if !errors.Is(err, ErrType) || !strings.Contains(err.Error(), "tensorboard") {
		t.Errorf("a non-boolean: %v", err)
	}
	_, err = Decode([]byte("output:\n  tensorbord: true\n"), "c", nil)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "did you mean `tensorboard`") {
		t.Errorf("a near miss: %v", err)
	}
}
