package train

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/phiop"
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
	// ShardPrefetch is dist.shard_prefetch: with a ShardGroup, how many blocks are
	// all-gathered ahead of the one that computes (shard.Gatherer.SetPrefetch; 0, the
	// zero value, gathers each block when it is needed).
	ShardPrefetch int
	// LocalRank is the worker's rank on its node: with train.device cuda and several
	// GPUs visible, it picks cuda:LocalRank (see ResolveDevice).
	LocalRank int
	// InitAdapters, when set, gives a run that starts fresh (not resumed) its initial
	// adapter values: it is called once with the trainable list right after the
	// adapters are injected (see initadapter.go); lrtrain train --init-adapter loads a
	// PEFT adapter directory this way.
	InitAdapters func(params []param.Tensor) error
	// Device, when set, is the device the caller already resolved (dist/worker does, to
	// pick the collective backend); Run then uses it instead of resolving
	// Options.Train.Device again.
	Device *gotch.Device

	seams testSeams // set by this package's tests only
}

// testSeams let this package's tests reach paths a run does not otherwise take on a test
// machine. The zero value changes nothing.
type testSeams struct {
	// hostGrads sends CPU gradients through the float64 host bucket (allReduceHost), the
	// path of a group that cannot reduce memory in place, instead of the flat one.
	hostGrads bool
	// splitGather makes model.split_delta use the all-gather and reduce-scatter (the
	// GPU path) on a Gloo group too, which otherwise all-reduces.
	splitGather bool
	// splitExchange is called with the step number before model.split_delta's
	// exchange of the held weights.
	splitExchange func(step int64)
	// stepStart is called with the step number as each step starts.
	stepStart func(step int64)
	// saveHook is called with each checkpoint file's name once half of it is written.
	saveHook func(name string)
}

// Hooks let a caller observe a run and add metrics. They run on the training goroutine
// of every rank.
type Hooks struct {
	// Eval runs after each evaluation loss is computed and returns extra metrics
	// (accuracy, MCC, …), which are logged and written to metrics.jsonl (rank 0's).
	Eval func(EvalContext) (map[string]float64, error)
	// Step is called after every optimizer step.
	Step func(StepMetrics)
	// Evaluated is called after each evaluation is recorded, with its loss and the Eval
	// hook's metrics (rank 0 writes the same values to metrics.jsonl).
	Evaluated func(EvalResult)
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
	// PeakTensorMiB is the most this process's live CPU tensors held during the step
	// (phiop's allocator counts them; 0 where libtorch's own allocator is in place).
	PeakTensorMiB float64 `json:"peak_cpu_tensor_mib,omitempty"`
}

// Result is how a run ended.
type Result struct {
	Step         int64    // optimizer steps taken in total
	Reason       string   // "max_steps", "epochs", "early stopping", "already finished"
	Loss         float64  // last step's training loss
	BestEvalLoss *float64 // nil without evaluation
	Checkpoint   string   // the last checkpoint written (rank 0), or ""
	ResumedFrom  string   // the checkpoint the run resumed from, or ""
	// PeakTensorMiB is the most this process's live CPU tensors held at once over the
	// run (the finished line's peak_cpu_tensor_mib; 0 without phiop's allocator).
	PeakTensorMiB float64
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

// GPU training. The model, the adapters, the batches and the optimizer state live on the
// device train.device names; checkpoints, metrics and the host-side collectives copy to
// and from it. Gradients of GPU ranks are reduced in place on the device by a group that
// can (NCCL, see deviceReducer in dist.go); any other group gets host copies.

// ResolveDevice turns a train.device value into a libtorch device: "" or "auto" is the
// worker's GPU when libtorch sees one and the CPU otherwise; "cuda" is the worker's GPU;
// "cuda:N" is GPU N. The worker's GPU is cuda:0 when one GPU is visible (lrtrain launch
// gives each worker one through CUDA_VISIBLE_DEVICES) and cuda:<localRank> when the
// worker sees several (a torchrun-style launch).
func ResolveDevice(spec string, localRank int) (gotch.Device, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "auto" {
		if !gotch.CUDA.IsAvailable() {
			return gotch.CPU, nil
		}
		spec = "cuda"
	}
	if spec == "cpu" {
		return gotch.CPU, nil
	}
	idx, indexed := strings.CutPrefix(spec, "cuda:")
	if spec != "cuda" && !indexed {
		return gotch.CPU, fmt.Errorf("%w: train.device %q: want auto, cpu, cuda or cuda:N", ErrConfig, spec)
	}
	n := int(gotch.CUDA.DeviceCount())
	if n == 0 {
		return gotch.CPU, fmt.Errorf("%w: train.device %s: the linked libtorch sees no CUDA device "+
			"(a CPU build, or no GPU visible: check CUDA_VISIBLE_DEVICES and `lrtrain env`)", ErrConfig, spec)
	}
	i := 0
	switch {
	case indexed:
		v, err := strconv.Atoi(idx)
		if err != nil || v < 0 {
			return gotch.CPU, fmt.Errorf("%w: train.device %q: want auto, cpu, cuda or cuda:N", ErrConfig, spec)
		}
		i = v
	case n > 1:
		i = localRank
	}
	if i >= n {
		return gotch.CPU, fmt.Errorf("%w: train.device %s: GPU %d of %d visible (local rank %d)", ErrConfig, spec, i, n, localRank)
	}
	return gotch.CudaBuilder(uint(i)), nil
}

// checkDevice rejects a GPU run that this build cannot do: the fused φ op needs its CUDA
// kernels (the `cuda` build tag) for LR-LoRA adapters on a GPU.
func checkDevice(dev gotch.Device, o Options) error {
	if !dev.IsCuda() {
		return nil
	}
	if o.Adapter.Method == adapter.LRLoRA && !phiop.BuiltWithCUDA() {
		return fmt.Errorf("%w: train.device %v: LR-LoRA's fused φ op was built without its CUDA kernels; "+
			"build with `make -C phiop cuda` and `go build -tags cuda` (see README, GPUs)", ErrConfig, dev)
	}
	return nil
}
