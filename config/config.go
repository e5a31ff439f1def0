package config

import (
	"path/filepath"
	"time"

	"github.com/lrtrain/lrtrain/adapter"
)

// Config is one run: what to fine-tune, on what, how, and where the results go.
// The yaml tags are the keys of the file; the alias tags list names other trainers
// use for the same setting, which the loader suggests when it meets them.
type Config struct {
	Model      Model        `yaml:"model"`
	Adapter    adapter.Spec `yaml:"adapter"`
	Data       Data         `yaml:"data"`
	Train      Train        `yaml:"train"`
	Checkpoint Checkpoint   `yaml:"checkpoint"`
	Export     Export       `yaml:"export"`
	Output     Output       `yaml:"output"`
	Dist       Dist         `yaml:"dist"`

	// where maps a key path ("train.lr") to where its value came from
	// ("cfg.yaml:12" or "--set train.lr=1e-4"), for Validate's messages.
	where map[string]string
}

// Model is the pretrained checkpoint.
type Model struct {
	// Path is a Hugging Face model directory (config.json, *.safetensors, tokenizer.json).
	Path string `yaml:"path" alias:"model_name_or_path,base_model,model_path,pretrained_model"`
	// DType is the storage dtype of the frozen backbone: float32 or bfloat16.
	DType string `yaml:"dtype" alias:"torch_dtype"`
	// ActivationCheckpointing recomputes each block's activations in backward.
	ActivationCheckpointing bool `yaml:"activation_checkpointing" alias:"gradient_checkpointing"`
	// RecomputeDelta makes LR-LoRA layers recompute B·A and W0 + ΔW in backward instead
	// of keeping them from forward: two d_out×d_in tensors less per adapted layer.
	RecomputeDelta bool `yaml:"recompute_delta"`
	// DeltaPerStep forms ΔW once per optimizer step, not once per micro-batch, when
	// train.grad_accum_steps > 1: φ then runs forward and backward once per step, at the
	// price of the merged weight and its gradient per adapted layer for the whole step.
	DeltaPerStep bool `yaml:"delta_per_step"`
	// SplitDelta makes data-parallel ranks split that per-step work by layer: each
	// forms and back-propagates its share of the layers' ΔW, and two all-reduces per
	// step of every held layer's d_out×d_in elements share the weights and sum their
	// gradients. Needs DeltaPerStep; has no effect on one rank.
	SplitDelta bool `yaml:"split_delta"`
	// FusedLoss computes a causal LM's loss inside its head, a chunk of vocabulary rows
	// at a time, instead of forming the B×T×V logits (model.SetFusedLoss); the default.
	FusedLoss bool `yaml:"fused_loss" alias:"chunked_loss,fused_linear_cross_entropy"`
	// LossChunk is the number of vocabulary rows per chunk of FusedLoss; 0 (the
	// default) makes a chunk's logits hold max(N·H, 2²⁰) elements for N positions.
	LossChunk int `yaml:"loss_chunk" alias:"loss_chunk_size"`
}

// Data says which records to read and how they become examples (see package data).
type Data struct {
	// Format is one of data.Formats(); it is never guessed from the files.
	Format string `yaml:"format" alias:"dataset_format,data_format"`
	// Train and Eval are files (for text_file also directories); a single string is
	// accepted for a one-element list.
	Train Paths `yaml:"train" alias:"train_file,train_files,train_path,data_path,dataset"`
	Eval  Paths `yaml:"eval" alias:"eval_file,eval_files,eval_path,validation_file,val_path,validation"`
	// MaxLen is the most tokens per example (and the packed sequence length).
	MaxLen int `yaml:"max_len" alias:"max_length,max_seq_len,max_seq_length,cutoff_len,seq_len,sequence_len"`
	// Packing concatenates examples into MaxLen-token sequences (not for classification).
	Packing bool `yaml:"packing" alias:"pack,sample_packing"`
	// Template renders instruction prompts: a preset name or with_input/no_input strings.
	Template Template `yaml:"template" alias:"prompt_template"`
	// Labels maps string class labels to indices (classification_jsonl).
	Labels []string `yaml:"labels" alias:"label_names,classes,label_list"`
	// Regression reads numeric classification labels as scores (e.g. STS-B).
	Regression bool `yaml:"regression"`
	// SkipBadRecords skips and counts malformed records instead of failing.
	SkipBadRecords bool `yaml:"skip_bad_records" alias:"skip_bad,skip_invalid"`
	// Shuffle orders every epoch by a seeded permutation (false: file order).
	Shuffle bool `yaml:"shuffle"`
	// Seed selects the shuffle; when absent it resolves to train.seed.
	Seed uint64 `yaml:"seed" alias:"shuffle_seed"`
	// LastBatch is pad (the default: pad the epoch's last global batch with flagged
	// slots) or drop.
	LastBatch string `yaml:"last_batch" alias:"drop_last"`
}

// Train is the optimisation: AdamW with warmup and a decay schedule.
type Train struct {
	Seed uint64 `yaml:"seed" alias:"random_seed"`
	// MaxSteps (optimizer steps) or Epochs says how long to train; set one of them.
	// When neither is set the run trains one epoch.
	MaxSteps int `yaml:"max_steps" alias:"steps,num_steps,total_steps,train_steps"`
	Epochs   int `yaml:"epochs" alias:"num_epochs,num_train_epochs,epoch"`
	// MicroBatchSize is the examples per rank per forward pass.
	MicroBatchSize int `yaml:"micro_batch_size" alias:"batch_size,per_device_train_batch_size,micro_batch,train_batch_size"`
	// GradAccumSteps is the micro batches per optimizer step.
	GradAccumSteps int `yaml:"grad_accum_steps" alias:"gradient_accumulation_steps,accumulation_steps,grad_accum"`
	// LR is the peak learning rate.
	LR          float64    `yaml:"lr" alias:"learning_rate"`
	WeightDecay float64    `yaml:"weight_decay" alias:"wd"`
	Betas       [2]float64 `yaml:"betas,flow" alias:"adam_betas,adam_beta1,adam_beta2"`
	Eps         float64    `yaml:"eps" alias:"adam_epsilon,adam_eps,epsilon"`
	// WarmupRatio is the fraction of the steps spent warming up linearly from 0.
	WarmupRatio float64 `yaml:"warmup_ratio" alias:"warmup,warmup_fraction"`
	// Schedule after warmup: linear (decay to 0), cosine (to 0) or constant.
	Schedule string `yaml:"schedule" alias:"lr_scheduler_type,scheduler,lr_schedule,lr_scheduler"`
	// GradClip is the global gradient-norm limit; 0 turns clipping off.
	GradClip float64 `yaml:"grad_clip" alias:"max_grad_norm,clip_grad_norm,gradient_clipping,clip"`
	// EvalEvery evaluates every N optimizer steps (0: only at the end).
	EvalEvery int `yaml:"eval_every" alias:"eval_steps,eval_interval"`
	// EarlyStoppingPatience stops after N evaluations without a lower eval loss (0: off).
	EarlyStoppingPatience int `yaml:"early_stopping_patience" alias:"patience,early_stopping"`
	// LogEvery logs (and appends to the metrics file) every N optimizer steps.
	LogEvery int `yaml:"log_every" alias:"logging_steps,log_interval"`
	// ComputeDType is the dtype of activations and matmuls: float32 or bfloat16.
	ComputeDType string `yaml:"compute_dtype" alias:"dtype,precision,mixed_precision,bf16"`
	// Device is where the model trains: auto (the worker's GPU when libtorch sees
	// one, else the CPU), cpu, cuda (the worker's GPU) or cuda:N.
	Device string `yaml:"device" alias:"accelerator"`
}

// Checkpoint is when and where training state is saved.
type Checkpoint struct {
	// Dir holds the checkpoints; when absent it resolves to <output.dir>/checkpoints.
	Dir string `yaml:"dir" alias:"save_dir,checkpoint_dir,path"`
	// Every saves every N optimizer steps (0: only at the end).
	Every int `yaml:"every" alias:"save_steps,save_every,interval"`
	// KeepLast keeps the newest N checkpoints (0: keep all).
	KeepLast int `yaml:"keep_last" alias:"save_total_limit,keep"`
	// Resume is auto (the newest complete checkpoint in Dir, if any), never, or the path
	// of a checkpoint directory.
	Resume string `yaml:"resume" alias:"resume_from_checkpoint,resume_from"`
}

// Export is the merged model written after training (an HF-layout directory).
type Export struct {
	// Dir is where it goes; when absent it resolves to <output.dir>/merged.
	Dir string `yaml:"dir" alias:"path,export_dir"`
	// DType of the written weights: float32, bfloat16 or float16; when absent it
	// resolves to model.dtype.
	DType string `yaml:"dtype" alias:"torch_dtype"`
	// MaxShardSize is the largest safetensors shard, e.g. "5GB", "500MiB" (see ParseSize).
	MaxShardSize string `yaml:"max_shard_size" alias:"shard_size"`
}

// Output is the run directory: logs, metrics.jsonl, plots, the resolved config.
type Output struct {
	Dir string `yaml:"dir" alias:"output_dir,run_dir,path"`
	// TensorBoard writes the run's scalars (loss, lr, grad norm, tokens/s, evaluations,
	// stable ranks) as TensorBoard event files under <dir>/tensorboard (rank 0).
	TensorBoard bool `yaml:"tensorboard" alias:"report_to_tensorboard,tensorboard_logging,tb"`
}

// Dist is the collective backend for multi-process runs.
type Dist struct {
	// Backend is auto (nccl on GPUs, gloo on CPU), nccl or gloo.
	Backend string `yaml:"backend" alias:"ddp_backend"`
	// Timeout bounds every collective and barrier, e.g. "30m".
	Timeout time.Duration `yaml:"timeout" alias:"ddp_timeout,collective_timeout"`
	// ShardGroupSize partitions the frozen backbone across groups of that many
	// consecutive ranks (1: every rank holds the whole backbone). It must divide the
	// world size; CPU runs only for now.
	ShardGroupSize int `yaml:"shard_group_size" alias:"shard_size,fsdp_size"`
	// ShardPrefetch is how many blocks of a sharded backbone are all-gathered ahead of
	// the one that computes (0: each when it is needed); each holds one more gathered
	// block in memory.
	ShardPrefetch int `yaml:"shard_prefetch" alias:"prefetch,forward_prefetch"`
	// SharedMemory lets the Gloo groups of ranks that all run on one host move their
	// collectives through /dev/shm instead of loopback TCP (the default); false keeps
	// TCP. Ranks on several hosts use TCP either way.
	SharedMemory bool `yaml:"shared_memory" alias:"shm"`
}

// Defaults of the trainer that have a name (the adapter's are written in adapter.Default).
const (
	DefaultGradClip = 1.0
	DefaultWarmup   = 0.1
)

// Default returns the configuration every file starts from. Model path, data format and
// training files have no default.
func Default() *Config {
	return &Config{
		Model:   Model{DType: "float32", DeltaPerStep: true, FusedLoss: true},
		Adapter: adapter.Default(),
		Data:    Data{MaxLen: 512, Template: Template{Name: "alpaca"}, Shuffle: true, LastBatch: "pad"},
		Train: Train{
			Seed: 42, MicroBatchSize: 4, GradAccumSteps: 1, LR: 2e-4,
			Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, WarmupRatio: DefaultWarmup,
			Schedule: "linear", GradClip: DefaultGradClip, LogEvery: 10, ComputeDType: "float32",
			Device: "auto",
		},
		Checkpoint: Checkpoint{KeepLast: 3, Resume: "auto"},
		Export:     Export{MaxShardSize: "5GB"},
		Output:     Output{Dir: "runs/lrtrain"},
		Dist:       Dist{Backend: "auto", Timeout: 30 * time.Minute, ShardGroupSize: 1, ShardPrefetch: 1, SharedMemory: true},
	}
}

// resolve fills the defaults that depend on other keys; present holds the key paths
// the file or the overrides set.
func (c *Config) resolve(present map[string]bool) {
	c.Adapter = c.Adapter.Resolved()
	if !present["data.seed"] {
		c.Data.Seed = c.Train.Seed
	}
	if c.Train.MaxSteps == 0 && c.Train.Epochs == 0 {
		c.Train.Epochs = 1
	}
	if c.Checkpoint.Dir == "" && c.Output.Dir != "" {
		c.Checkpoint.Dir = filepath.Join(c.Output.Dir, "checkpoints")
	}
	if c.Export.Dir == "" && c.Output.Dir != "" {
		c.Export.Dir = filepath.Join(c.Output.Dir, "merged")
	}
	if c.Export.DType == "" {
		c.Export.DType = c.Model.DType
	}
}

// Where returns where the value of a key path such as "train.lr" was set ("cfg.yaml:12",
// "--set train.lr=1e-4"), or "" when it holds its default.
func (c *Config) Where(key string) string { return c.where[key] }
