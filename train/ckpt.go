package train

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

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

// saveHook is a test seam: called with each file's name after half of it is written.
var saveHook = func(name string) {}

// snapshot copies the trainable tensors and the optimizer state to the host and checks
// that every value is finite: a checkpoint never holds a non-finite state.
func snapshot(params []lrlora.NamedTensor, opt *optim.AdamW) (adapters, moments []hostTensor, err error) {
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

// saveCheckpoint writes one checkpoint under root and prunes to keepLast. Only rank 0
// calls it.
func saveCheckpoint(root string, keepLast int, man Manifest, st State, params []lrlora.NamedTensor, opt *optim.AdamW) (string, error) {
	adapters, moments, err := snapshot(params, opt)
	if err != nil {
		return "", err
	}
	trainer, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: encode %s: %w", TrainerFile, err)
	}
	meta := map[string]string{"format": TrainerFormat, "step": fmt.Sprint(st.Step)}
	files := []checkpoint.File{
		{Name: AdapterFile, Write: encodeTensors(AdapterFile, adapters, meta)},
		{Name: OptimizerFile, Write: encodeTensors(OptimizerFile, moments, meta)},
		{Name: TrainerFile, Write: func(w io.Writer) error {
			if _, err := w.Write(trainer[:len(trainer)/2]); err != nil {
				return err
			}
			saveHook(TrainerFile)
			_, err := w.Write(append(trainer[len(trainer)/2:], '\n'))
			return err
		}},
	}
	man.TrainerFormat, man.TrainerFormatVersion = TrainerFormat, TrainerFormatVersion
	dir, err := checkpoint.Save(root, st.Step, files, man)
	if err != nil {
		return dir, fmt.Errorf("train: %w", err)
	}
	if keepLast > 0 {
		if _, err := checkpoint.Prune(root, keepLast); err != nil {
			return dir, fmt.Errorf("train: prune checkpoints: %w", err)
		}
	}
	return dir, nil
}

// encodeTensors streams a safetensors file, calling saveHook half-way.
func encodeTensors(name string, list []hostTensor, meta map[string]string) func(io.Writer) error {
	return func(w io.Writer) error {
		tensors := make([]safetensors.Tensor, len(list))
		for i, h := range list {
			tensors[i] = h.safetensor()
		}
		return safetensors.Encode(&hookWriter{w: w, name: name, at: encodedSize(list) / 2}, tensors, meta)
	}
}

// hookWriter calls saveHook once the first `at` bytes have passed.
type hookWriter struct {
	w      io.Writer
	name   string
	n, at  int64
	called bool
}

func (h *hookWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.n += int64(n)
	if !h.called && h.n >= h.at {
		h.called = true
		saveHook(h.name)
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
func trainableList(tensors []lrlora.NamedTensor, shared *lrlora.SharedPhi) []lrlora.NamedTensor {
	list := slices.Clone(tensors)
	if shared != nil {
		list = append(list, shared.Tensors()...)
	}
	return list
}

// optimParams is the trainable subset of list, as the optimizer takes it.
func optimParams(list []lrlora.NamedTensor) []ts.NamedTensor { return param.Trainable(list) }
