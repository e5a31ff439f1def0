package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/optim"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/safetensors"
)

// The files of a training checkpoint (besides checkpoint's manifest.json).
const (
	AdapterFile   = "adapter.safetensors"   // every tensor of the trainable list, buffers included
	OptimizerFile = "optimizer.safetensors" // <param>.exp_avg, <param>.exp_avg_sq, <param>.step
	TrainerFile   = "trainer.json"          // State
)

// Manifest identification of the trainer's part of a checkpoint.
const (
	TrainerFormat        = "lrtrain-trainer"
	TrainerFormatVersion = 1
	stepSuffix           = ".step" // optimizer step counts, I64 [1]
)

// Manifest is what the trainer adds to a checkpoint's manifest.json (package checkpoint
// adds the format, step, time and every file's size and SHA-256).
type Manifest struct {
	TrainerFormat        string    `json:"trainer_format"`
	TrainerFormatVersion int       `json:"trainer_format_version"`
	Options              Options   `json:"options"`          // the resolved options of the run
	Config               string    `json:"config,omitempty"` // the resolved YAML config, when the run had one
	BaseModel            BaseModel `json:"base_model"`
	Architecture         string    `json:"architecture"`
	WorldSize            int       `json:"world_size"`
	TrainableParameters  int64     `json:"trainable_parameters"`
}

// State is trainer.json: everything besides tensors that an exact resume needs.
type State struct {
	Step      int64       `json:"step"`  // optimizer steps taken
	Epoch     int         `json:"epoch"` // epoch of the next step
	Cursor    data.Cursor `json:"data_cursor"`
	WorldSize int         `json:"world_size"`
	// RNG is the Go PCG that drew the adapters' initial values (MarshalBinary).
	RNG []byte `json:"rng"`
	// DropoutPasses counts the training forward passes (model.SetDropoutSeed).
	DropoutPasses uint64 `json:"dropout_passes"`
	// Tokens counts the input tokens of all ranks so far.
	Tokens int64 `json:"tokens"`
	// BestEvalLoss is the lowest evaluation loss so far (nil before the first eval),
	// BestStep its step, and EvalsWithoutImprovement the early-stopping counter.
	BestEvalLoss            *float64 `json:"best_eval_loss"`
	BestStep                int64    `json:"best_step"`
	EvalsWithoutImprovement int      `json:"evals_without_improvement"`
	// EvalDue is set when the evaluation of Step did not complete (the run was stopped
	// during it): a resume evaluates first, so the run's evaluations and early stopping
	// are those of an uninterrupted run.
	EvalDue bool `json:"eval_due,omitempty"`
	// Finished is set in the last checkpoint of a run that ended (Reason says why); a
	// resume of it trains no further.
	Finished bool   `json:"finished"`
	Reason   string `json:"reason,omitempty"`
	// LossHistory is the tail of the per-step training losses.
	LossHistory []StepLoss `json:"loss_history"`
}

// StepLoss is one optimizer step's training loss.
type StepLoss struct {
	Step int64   `json:"step"`
	Loss float64 `json:"loss"`
}

// lossHistoryLen is how many steps State.LossHistory keeps.
const lossHistoryLen = 100

// snapshot copies the trainable tensors and the optimizer state to the host and checks
// that every value is finite: a checkpoint never holds a non-finite state.
func snapshot(params []param.Tensor, opt *optim.AdamW) (adapters, moments []hostTensor, err error) {
	for _, p := range params {
		h, err := readHost(p.Name, p.Tensor)
		if err != nil {
			return nil, nil, fmt.Errorf("train: checkpoint: %w", err)
		}
		if i := h.firstNonFinite(); i >= 0 {
			return nil, nil, fmt.Errorf("%w: parameter %s has a non-finite value at element %d", ErrNonFinite, p.Name, i)
		}
		adapters = append(adapters, h)
	}
	steps := opt.Steps()
	for _, st := range opt.StateTensors() {
		h, err := readHost(st.Name, st.Tensor)
		if err != nil {
			return nil, nil, fmt.Errorf("train: checkpoint: %w", err)
		}
		if i := h.firstNonFinite(); i >= 0 {
			return nil, nil, fmt.Errorf("%w: optimizer state %s has a non-finite value at element %d", ErrNonFinite, st.Name, i)
		}
		moments = append(moments, h)
	}
	for _, p := range opt.Params() {
		if n, ok := steps[p.Name]; ok {
			b, err := safetensors.EncodeInt64s(safetensors.I64, []int64{n})
			if err != nil {
				return nil, nil, fmt.Errorf("train: checkpoint: %w", err)
			}
			moments = append(moments, hostTensor{name: p.Name + stepSuffix, dtype: safetensors.I64, shape: []int64{1}, data: b})
		}
	}
	return adapters, moments, nil
}

// save writes a checkpoint of the run's state (rank 0 only), prunes to
// checkpoint.keep_last and logs it.
func (r *run) save() (string, error) {
	begin := time.Now()
	dir, err := r.writeCheckpoint()
	if errors.Is(err, ErrNonFinite) {
		return "", fmt.Errorf("%w after step %d; stopped without saving (last good checkpoint: %s)", err, r.st.Step, r.lastCheckpoint())
	}
	if err != nil {
		return dir, fmt.Errorf("%w (at step %d)", err, r.st.Step)
	}
	r.log.Info().Int64("step", r.st.Step).Str("dir", dir).Dur("took", time.Since(begin)).Msg("checkpoint saved")
	return dir, nil
}

// stopped ends a run that a signal (a cancelled context) or a failed collective
// stopped between or inside optimizer steps: rank 0 first saves the state of the last
// completed step, unless the newest checkpoint holds it already. That state is the
// whole run's whatever the other ranks are doing: a rank that completed step N has
// every rank's gradients of step N (adapters and optimizer are replicated), and a step
// that failed part-way changed nothing but gradients. It returns cause, saying where
// the state went.
func (r *run) stopped(cause error) error {
	if r.rank != 0 || r.st.Step <= r.savedStep {
		return cause
	}
	dir, err := r.save()
	if err != nil {
		return fmt.Errorf("%w; saving step %d failed too: %w", cause, r.st.Step, err)
	}
	r.res.Checkpoint = dir
	return fmt.Errorf("%w (step %d saved in %s)", cause, r.st.Step, dir)
}

// lastCheckpoint names the checkpoint a failed run leaves for resuming.
func (r *run) lastCheckpoint() string {
	if r.res.Checkpoint != "" {
		return r.res.Checkpoint
	}
	if r.res.ResumedFrom != "" {
		return r.res.ResumedFrom
	}
	return "none under " + r.opts.Checkpoint.Dir
}

// writeCheckpoint writes one checkpoint of the run's state under checkpoint.dir and
// prunes to checkpoint.keep_last. A test's save hook is called with each file's name
// half-way through writing it.
func (r *run) writeCheckpoint() (string, error) {
	c, man, st := r.opts.Checkpoint, r.man, r.st
	adapters, moments, err := snapshot(r.params, r.opt)
	if err != nil {
		return "", err
	}
	trainer, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: encode %s: %w", TrainerFile, err)
	}
	hook := r.env.seams.saveHook
	if hook == nil {
		hook = func(string) {}
	}
	meta := map[string]string{"format": TrainerFormat, "step": fmt.Sprint(st.Step)}
	files := []checkpoint.File{
		{Name: AdapterFile, Write: encodeTensors(AdapterFile, adapters, meta, hook)},
		{Name: OptimizerFile, Write: encodeTensors(OptimizerFile, moments, meta, hook)},
		{Name: TrainerFile, Write: func(w io.Writer) error {
			if _, err := w.Write(trainer[:len(trainer)/2]); err != nil {
				return err
			}
			hook(TrainerFile)
			_, err := w.Write(append(trainer[len(trainer)/2:], '\n'))
			return err
		}},
	}
	man.TrainerFormat, man.TrainerFormatVersion = TrainerFormat, TrainerFormatVersion
	dir, err := checkpoint.Save(c.Dir, st.Step, files, man)
	if err != nil {
		return dir, fmt.Errorf("train: %w", err)
	}
	if c.KeepLast > 0 {
		if _, err := checkpoint.Prune(c.Dir, c.KeepLast); err != nil {
			return dir, fmt.Errorf("train: prune checkpoints: %w", err)
		}
	}
	return dir, nil
}

// encodeTensors streams a safetensors file, calling hook half-way.
func encodeTensors(name string, list []hostTensor, meta map[string]string, hook func(string)) func(io.Writer) error {
	return func(w io.Writer) error {
		tensors := make([]safetensors.Tensor, len(list))
		for i, h := range list {
			tensors[i] = h.safetensor()
		}
		return safetensors.Encode(&hookWriter{w: w, name: name, at: encodedSize(list) / 2, hook: hook}, tensors, meta)
	}
}

// hookWriter calls hook once the first `at` bytes have passed.
type hookWriter struct {
	w      io.Writer
	name   string
	n, at  int64
	hook   func(name string)
	called bool
}

func (h *hookWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.n += int64(n)
	if !h.called && h.n >= h.at {
		h.called = true
		h.hook(h.name)
	}
	return n, err
}

func encodedSize(list []hostTensor) int64 {
	var n int64
	for _, h := range list {
		n += int64(len(h.data))
	}
	return n
}

// trainableList is the one ordered list that the optimizer, checkpoints, broadcasts and
// counts derive from: the model's TrainableTensors (adapters in module order, then the
// classification head) followed by the tensors of a shared φ, if any.
func trainableList(tensors []param.Tensor, shared *lrlora.SharedPhi) []param.Tensor {
	list := slices.Clone(tensors)
	if shared != nil {
		list = append(list, shared.Tensors()...)
	}
	return list
}

// optimParams is the trainable subset of list, as the optimizer takes it.
func optimParams(list []param.Tensor) []ts.NamedTensor { return param.Trainable(list) }
