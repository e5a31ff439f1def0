package train

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/data"
)

// Options is one training run, resolved: every field holds its final value. It mirrors
// the sections of package config (FromConfig maps a config onto it) and is what a
// checkpoint's manifest records under "options". The JSON keys are config's keys.
type Options struct {
	Model      ModelOptions      `json:"model"`
	Adapter    adapter.Spec      `json:"adapter"`
	Data       DataOptions       `json:"data"`
	Train      TrainOptions      `json:"train"`
	Checkpoint CheckpointOptions `json:"checkpoint"`
	Output     OutputOptions     `json:"output"`
}

// ModelOptions is the base model.
type ModelOptions struct {
	Path                    string `json:"path"`  // Hugging Face model directory
	DType                   string `json:"dtype"` // compute dtype of the backbone: float32, bfloat16 (float64 for tests)
	ActivationCheckpointing bool   `json:"activation_checkpointing"`
	RecomputeDelta          bool   `json:"recompute_delta"` // lrlora.Adapter.SetRecomputeDelta on every adapter
	DeltaPerStep            bool   `json:"delta_per_step"`  // model.HoldDeltas over a step's micro-batches (more than one)
	SplitDelta              bool   `json:"split_delta"`     // data-parallel ranks split the held ΔW by layer (splitdelta.go)
	FusedLoss               bool   `json:"fused_loss"`      // model.SetFusedLoss: a causal LM's loss computed in its head
	LossChunk               int    `json:"loss_chunk"`      // vocabulary rows per chunk of FusedLoss; 0 chooses
	NumLabels               int    `json:"num_labels"`      // classifiers: 0 means len(data.labels), 1 with data.regression, else config.json's
}

// DataOptions say which records to read and how they become examples.
type DataOptions struct {
	Format         string        `json:"format"`
	Train          []string      `json:"train"`
	Eval           []string      `json:"eval,omitempty"`
	MaxLen         int           `json:"max_len"`
	Packing        bool          `json:"packing"`
	Template       data.Template `json:"template"` // zero: alpaca
	Labels         []string      `json:"labels,omitempty"`
	Regression     bool          `json:"regression"`
	SkipBadRecords bool          `json:"skip_bad_records"`
	Shuffle        bool          `json:"shuffle"`
	Seed           uint64        `json:"seed"`
	LastBatch      string        `json:"last_batch"` // pad or drop
}

// TrainOptions is the optimisation.
type TrainOptions struct {
	Seed           uint64     `json:"seed"`
	MaxSteps       int        `json:"max_steps"` // optimizer steps; 0: Epochs decides
	Epochs         int        `json:"epochs"`
	MicroBatchSize int        `json:"micro_batch_size"`
	GradAccumSteps int        `json:"grad_accum_steps"`
	LR             float64    `json:"lr"`
	WeightDecay    float64    `json:"weight_decay"`
	Betas          [2]float64 `json:"betas"`
	Eps            float64    `json:"eps"`
	WarmupRatio    float64    `json:"warmup_ratio"`
	Schedule       string     `json:"schedule"`  // linear, cosine, constant
	GradClip       float64    `json:"grad_clip"` // 0: no clipping (the norm is still computed)
	EvalEvery      int        `json:"eval_every"`
	Patience       int        `json:"early_stopping_patience"`
	LogEvery       int        `json:"log_every"`
	Device         string     `json:"device,omitempty"` // auto (""), cpu, cuda, cuda:N; see ResolveDevice
}

// CheckpointOptions say when and where training state is saved.
type CheckpointOptions struct {
	Dir      string `json:"dir"`       // empty: <output.dir>/checkpoints
	Every    int    `json:"every"`     // 0: only at the end
	KeepLast int    `json:"keep_last"` // 0: keep all
	Resume   string `json:"resume"`    // auto, never, or a checkpoint directory
}

// OutputOptions is the run directory (train.log, metrics.jsonl, checkpoints).
type OutputOptions struct {
	Dir string `json:"dir"`
}

// DefaultOptions are the paper's and the trainer's defaults; model path, data format
// and training files have none.
func DefaultOptions() Options {
	return Options{
		Model:   ModelOptions{DType: "float32", DeltaPerStep: true, FusedLoss: true},
		Adapter: adapter.Default(),
		Data:    DataOptions{MaxLen: 512, Shuffle: true, LastBatch: "pad"},
		Train: TrainOptions{Seed: 42, MicroBatchSize: 4, GradAccumSteps: 1, LR: 2e-4,
			Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, WarmupRatio: 0.1, Schedule: "linear",
			GradClip: 1, LogEvery: 10},
		Checkpoint: CheckpointOptions{KeepLast: 3, Resume: "auto"},
		Output:     OutputOptions{Dir: "runs/lrtrain"},
	}
}

// resolve fills the defaults that depend on other fields and validates everything that
// can be checked without reading files. Errors wrap ErrConfig and name the key.
func (o Options) resolve() (Options, error) {
	o = o.withDefaults()
	return o, o.validate()
}

// withDefaults fills the defaults that depend on other fields.
func (o Options) withDefaults() Options {
	o.Adapter = o.Adapter.Resolved()
	if o.Train.MaxSteps == 0 && o.Train.Epochs == 0 {
		o.Train.Epochs = 1
	}
	if o.Train.GradAccumSteps == 0 {
		o.Train.GradAccumSteps = 1
	}
	if o.Checkpoint.Dir == "" {
		o.Checkpoint.Dir = filepath.Join(o.Output.Dir, "checkpoints")
	}
	if o.Checkpoint.Resume == "" {
		o.Checkpoint.Resume = "auto"
	}
	o.Model.NumLabels = o.numLabels() // recorded explicitly, for loaders of the checkpoint
	return o
}

// validate checks everything that can be checked without reading files.
func (o Options) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	t := o.Train
	switch {
	case o.Model.Path == "":
		return bad("model.path", "not set")
	case o.Model.SplitDelta && !o.Model.DeltaPerStep:
		return bad("model.split_delta", "set while model.delta_per_step is not (it splits what that holds)")
	case o.Model.LossChunk < 0:
		return bad("model.loss_chunk", "%d, want vocabulary rows per chunk or 0 to choose them", o.Model.LossChunk)
	case o.Output.Dir == "":
		return bad("output.dir", "not set")
	case len(o.Data.Train) == 0:
		return bad("data.train", "no training files")
	case o.Data.MaxLen < 2:
		return bad("data.max_len", "%d, need at least 2", o.Data.MaxLen)
	case t.MaxSteps < 0 || t.Epochs < 0:
		return bad("train.max_steps", "max_steps %d and epochs %d must not be negative", t.MaxSteps, t.Epochs)
	case t.MicroBatchSize < 1:
		return bad("train.micro_batch_size", "%d, need at least 1", t.MicroBatchSize)
	case t.GradAccumSteps < 1:
		return bad("train.grad_accum_steps", "%d, need at least 1", t.GradAccumSteps)
	case !(t.LR >= 0) || math.IsInf(t.LR, 0):
		return bad("train.lr", "%v", t.LR)
	case !(t.WarmupRatio >= 0 && t.WarmupRatio <= 1):
		return bad("train.warmup_ratio", "%v, need 0 ≤ ratio ≤ 1", t.WarmupRatio)
	case !(t.GradClip >= 0) || math.IsInf(t.GradClip, 0):
		return bad("train.grad_clip", "%v, need ≥ 0 (0 turns clipping off)", t.GradClip)
	case t.EvalEvery < 0 || t.Patience < 0 || t.LogEvery < 0:
		return bad("train.eval_every", "eval_every %d, early_stopping_patience %d and log_every %d must not be negative",
			t.EvalEvery, t.Patience, t.LogEvery)
	case o.Checkpoint.Every < 0 || o.Checkpoint.KeepLast < 0:
		return bad("checkpoint.every", "every %d and keep_last %d must not be negative", o.Checkpoint.Every, o.Checkpoint.KeepLast)
	}
	if _, err := scheduleOf(t.Schedule); err != nil {
		return bad("train.schedule", "%v", err)
	}
	if _, err := o.dtype(); err != nil {
		return bad("model.dtype", "%v", err)
	}
	if _, err := data.ParseFormat(o.Data.Format); err != nil {
		return bad("data.format", "%v", err)
	}
	if _, err := o.lastBatch(); err != nil {
		return bad("data.last_batch", "%v", err)
	}
	if err := o.Adapter.Validate(); err != nil { // names each bad key, adapter.r, adapter.phi.k, …
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// dtype is the backbone's compute dtype.
func (o Options) dtype() (gotch.DType, error) {
	switch strings.ToLower(o.Model.DType) {
	case "float32", "fp32", "":
		return gotch.Float, nil
	case "bfloat16", "bf16":
		return gotch.BFloat16, nil
	case "float64":
		return gotch.Double, nil
	}
	return gotch.Float, fmt.Errorf("%q (want float32 or bfloat16)", o.Model.DType)
}

func (o Options) lastBatch() (data.LastBatch, error) {
	switch o.Data.LastBatch {
	case "pad", "":
		return data.PadLastBatch, nil
	case "drop":
		return data.DropLastBatch, nil
	}
	return 0, fmt.Errorf("%q (want pad or drop)", o.Data.LastBatch)
}
