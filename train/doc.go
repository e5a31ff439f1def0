// Package train is lrtrain's training loop: LR-LoRA (or LoRA, SineLoRA) adapters on a
// frozen Hugging Face model, trained on one process or data-parallel over a process
// group, with crash-safe checkpoints and exact resume. `lrtrain train --config cfg.yaml`
// runs it; FromConfig maps a config.Config onto Options.
//
// # The loop
//
// Run (loop.go, which reads top to bottom) pins its goroutine to one OS thread
// (libtorch's grad mode is per thread) and then: picks the checkpoint to resume from and
// checks it against the options; reads, tokenises and optionally packs the data;
// loads the model in the compute dtype (float32 or bfloat16; adapters and heads keep
// float32 masters) and injects the adapters, drawing their initial values from a Go PCG
// seeded by train.seed; builds AdamW (decoupled weight decay) over the trainable list;
// restores the checkpoint or broadcasts rank 0's adapters; and loops, one iteration
// per optimizer step:
//
//  1. the sampler gives this rank its micro-batches of the global batch
//     (micro_batch_size × grad_accum_steps × world size examples; data.seed fixes the
//     order, independently of the world size);
//  2. forward and backward per micro-batch (model.Begin/Pass.Backward, with activation
//     checkpointing when configured), each summed loss divided by the number of targets
//     of the whole global batch — tokens for language models, examples for classifiers —
//     summed over micro-batches and ranks (data's GlobalTargetTokens, computed locally),
//     so the accumulated gradient is the gradient of the global token-mean loss however
//     the batch is cut;
//  3. the gradients are all-reduced (summed) in one float64 bucket; loss and token counts
//     in a second, tiny all-reduce; a group of size 1 skips both;
//  4. a NaN or infinite loss or gradient norm stops the run with ErrNonFinite naming the
//     step and the last good checkpoint; nothing of that step is saved (a checkpoint
//     never holds a non-finite value: every tensor is checked before it is written);
//  5. the global gradient norm is clipped to train.grad_clip (0: measured, not clipped);
//  6. AdamW steps with transformers' schedules: ⌈warmup_ratio·steps⌉ linear warmup
//     steps from 0 (the first step of a warmed-up run has rate 0, as in transformers),
//     then linear or cosine decay to 0, or constant;
//  7. rank 0 reports, evaluates every eval_every steps (loss and perplexity over the
//     whole eval set, split across ranks; Hooks.Eval adds metrics such as accuracy),
//     stops early after early_stopping_patience evaluations without a lower loss, and
//     checkpoints every checkpoint.every steps.
//
// The run ends after max_steps (or epochs × steps per epoch), on early stopping, or when
// ctx is cancelled or a collective fails, evaluations included (rank 0 saves the last
// completed step first; a step whose evaluation was cut short is saved with EvalDue and
// evaluated first on resume). A last evaluation and a final checkpoint, marked finished,
// close it. Rank 0 locks output.dir (LockFile) for the run's life, and on resume drops the
// metrics.jsonl records of steps after the checkpoint. Dropout masks come from model's
// counter-based hash keyed by (train.seed, rank, pass count), so they survive a resume.
//
// # Checkpoints
//
// Package checkpoint writes each one atomically (temporary directory, fsync, rename,
// latest pointer last) with every file's SHA-256 in manifest.json, and keeps the last
// checkpoint.keep_last. A training checkpoint holds:
//
//	adapter.safetensors    every tensor of the trainable list — model.TrainableTensors
//	                       (adapters in module order: lora_A, lora_B, phi.amplitude,
//	                       phi.bandwidth_raw and the phi.grid buffer; then a classifier's
//	                       head) plus a shared φ's tensors. The list is the optimizer's,
//	                       the broadcast's and the count's too, so nothing can be left out.
//	optimizer.safetensors  <param>.exp_avg, <param>.exp_avg_sq (parameter dtype) and
//	                       <param>.step (I64[1]) for every parameter with AdamW state
//	trainer.json           State: step, epoch, data cursor (position, dataset size, seed),
//	                       the PCG state (MarshalBinary), the dropout pass count, tokens,
//	                       best eval loss and step, the patience counter, world size,
//	                       finished/reason, the last 100 step losses
//	manifest.json          checkpoint's fields plus Manifest: trainer format and version,
//	                       the resolved Options and YAML config, the base model's
//	                       identity (BaseModel: path, SHA-256 of config.json, of the
//	                       weight index or the safetensors header, and of the weights,
//	                       cached in output.dir's WeightsHashFile), architecture, world
//	                       size, trainable parameter count
//
// Loading validates everything before the run changes anything: checksums, missing and
// extra files (checkpoint.Load), the trainer format, trainer.json (strictly), missing
// and extra tensors, shapes, dtypes and finiteness of every tensor, a complete AdamW
// state per parameter, and the base model's identity. Errors name the file and, where
// one is at fault, the tensor. resume: auto takes the newest checkpoint that verifies;
// newer ones that do not are reported, renamed to invalid-step-NNNNNN-<time> and the
// latest pointer moved back, so the run can save those steps again.
//
// # When the configuration disagrees with the checkpoint
//
// The rule, applied by key path to the resolved options (reconcile):
//
//   - Adapter-shaping settings must match, or the resume is refused with ErrMismatch
//     naming every differing key: adapter.method, r, alpha, rslora, target_modules, k, l,
//     grid, basis, share, sine_omega and model.num_labels — and the base model, compared
//     by identity (another config.json, weight layout or weights are refused; the same
//     model at another path is accepted with a warning).
//   - Everything else may change: the configuration's value is used and a warning names
//     the key with both values. That covers the schedule (lr, max_steps, epochs,
//     warmup_ratio, schedule, weight_decay, betas, eps, grad_clip), evaluation and
//     logging (eval_every, early_stopping_patience, log_every), batch shape
//     (micro_batch_size, grad_accum_steps: the data position counts examples, so it
//     stays valid), adapter.dropout, model.dtype and data paths (output.dir,
//     checkpoint.dir and checkpoint.resume change silently). The data position is only
//     valid for the same number of examples and shuffle seed: changing the data so that
//     either differs fails the resume (data.ErrCursor).
//
// # Exact resume
//
// A resumed run continues bit for bit: the same per-step losses and the same final
// adapter and optimizer bytes as a run that was never interrupted, when nothing but the
// run directory carries over (same options, world size and thread count, float32 on the
// CPU). TestKilledRunResumesBitIdentically kills a child process with SIGKILL at a
// random step and compares; TestCrashDuringCheckpointWriteKeepsPreviousCheckpoint kills
// one half-way through writing a checkpoint. Not bit-exact, by construction: adapter
// dropout > 0 (lrlora draws its masks from libtorch's generator, which gotch cannot seed
// or save); a changed world size or micro-batch split (the same examples, summed in
// another order: equal up to rounding, 1e-11 relative in float64 in
// TestTwoRanksTrainLikeOne). In float32 with Adam's eps = 1e-8 that rounding can
// matter: a gradient component that is only rounding noise still gets an update of
// ±lr, its sign set by the noise, so runs on different world sizes drift apart by
// O(lr) in such components (train/e2e compares 4 ranks with 1 at eps = 1e-4: 3.7e-7).
//
// # Outputs
//
// Rank 0 writes <output.dir>/train.log (zerolog JSON lines) and metrics.jsonl (one
// record per step: step, epoch, loss, lr, grad_norm, tokens, targets, tokens_per_s,
// step_s; one per evaluation: eval_loss, eval_ppl, hook metrics). The console shows the
// same events readably on a terminal, with a progress bar (loss, tokens/s, ETA) instead
// of per-step lines; JSON lines otherwise. Other ranks log to their console only.
//
// # Using a checkpoint elsewhere
//
// OpenCheckpoint verifies a checkpoint and reads its manifest and state; LoadAdapters
// (or OpenAdapters) injects the recorded adapters into a freshly loaded base model and
// loads their tensors; VerifyBaseModel compares a model directory with the record.
//
// # Measurements (2-core VM shared with other jobs, libtorch 1.13.1 CPU)
//
// Memory: over 4,000 steps of the tiny Llama (1 × 32 tokens), gotch's count of live
// tensors stays at 206, the Go heap in use at 2.5 MiB and VmRSS after GC at 184–185 MiB
// (growth 0.5 MiB in 3,800 steps, 0.1 KiB per step). Before tools/gotchadapt freed the
// C.malloc(0) cell in which gotch's generated ops return their result, it grew by
// 54 KiB per step. Without a forced GC, VmRSS swings by about 2 MiB (40 MiB, and a Go
// heap of 22 MiB, while every gotch tensor carried a 100 kB Go allocation, which
// tools/gotchadapt now removes).
//
//	LRTRAIN_MEM_STEPS=4000 go test ./train -run TestMemoryStaysFlat -v
//
// Step time and peak RSS, LR-LoRA (K = 50) against LoRA, r = 8 on all seven
// projections of the small Llama (hidden 512, 8 layers), 2×256 packed tokens per step:
// the fastest step 1.74 s against 1.45 s (×1.2; medians varied from ×1.1 to ×1.6 with
// the machine's load), peak RSS 1039 against 893 MiB (×1.16; one float32 d_out×d_in
// tensor for every adapted module of this model is 93 MiB). Both are measured in one
// run, each method in its own process:
//
//	go run ./train/bench/stepbench -steps 6 -rounds 2
package train
