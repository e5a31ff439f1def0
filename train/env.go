package train

import (
	"context"
	"io"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// Env is what a run takes from its surroundings rather than from its options.
type Env struct {
	// Group is the data-parallel process group; nil means a single process (a group
	// of size 1, whose collectives are the identity).
	Group collective.ProcessGroup
	// Console receives human-readable logs and, when it is a terminal, a progress bar;
	// nil means os.Stderr.
	Console io.Writer
	// JSONConsole writes JSON lines to Console even on a terminal.
	JSONConsole bool
	// Config is the resolved YAML configuration, recorded in every checkpoint.
	Config string
	Hooks  Hooks
	// ShardGroup, when it has more than one rank, partitions the frozen backbone across
	// its ranks (shard/): each holds about 1/Size of the frozen weights and all-gathers
	// every block around its use. The ranks of a shard group are ranks of Group that
	// take different data; every rank of Group belongs to one shard group. Nil keeps
	// the whole backbone on every rank. An Eval hook must then run the same forward
	// passes on every rank of the shard group.
	ShardGroup collective.ProcessGroup
	// LocalRank is the worker's rank on its node: with train.device cuda and several
	// GPUs visible, it picks cuda:LocalRank (see ResolveDevice).
	LocalRank int
	// Device, when set, is the device the caller already resolved (dist/worker does, to
	// pick the collective backend); Run then uses it instead of resolving
	// Options.Train.Device again.
	Device *gotch.Device
}

// Hooks let a caller observe a run and add metrics. They run on the training goroutine
// of every rank.
type Hooks struct {
	// Eval runs after each evaluation loss is computed and returns extra metrics
	// (accuracy, MCC, …), which are logged and written to metrics.jsonl (rank 0's).
	Eval func(EvalContext) (map[string]float64, error)
	// Step is called after every optimizer step.
	Step func(StepMetrics)
}

// StepMetrics describes one optimizer step, all ranks together.
type StepMetrics struct {
	Step        int64   `json:"step"`
	Epoch       int     `json:"epoch"`
	Loss        float64 `json:"loss"`
	LR          float64 `json:"lr"`
	GradNorm    float64 `json:"grad_norm"` // before clipping
	Tokens      int64   `json:"tokens"`    // input tokens of the step, all ranks
	Targets     int64   `json:"targets"`   // loss targets (tokens or examples), all ranks
	TokensPerS  float64 `json:"tokens_per_s"`
	StepSeconds float64 `json:"step_s"`
}

// Result is how a run ended.
type Result struct {
	Step         int64    // optimizer steps taken in total
	Reason       string   // "max_steps", "epochs", "early stopping", "already finished"
	Loss         float64  // last step's training loss
	BestEvalLoss *float64 // nil without evaluation
	Checkpoint   string   // the last checkpoint written (rank 0), or ""
	ResumedFrom  string   // the checkpoint the run resumed from, or ""
}

// single is the process group of a run without peers: every collective is the identity.
type single struct{}

func (single) Rank() int { return 0 }
func (single) Size() int { return 1 }
func (single) AllReduceFloat64(context.Context, []float64, collective.ReduceOp) error {
	return nil
}
func (single) AllGather(_ context.Context, send, recv []float32) error {
	copy(recv, send)
	return nil
}
func (single) Broadcast(context.Context, []byte, int) error { return nil }
