// Package train is lrtrain's training loop: LR-LoRA (or LoRA, SineLoRA) adapters on a
// frozen Hugging Face model, trained on one process or data-parallel over a process
// group, with crash-safe checkpoints and exact resume. `lrtrain train --config cfg.yaml`
// runs it; FromConfig maps a config.Config onto Options.
//
// # The outline
//
// Run (loop.go) pins its goroutine to one OS thread (libtorch's grad mode is per
// thread) and: 0. resolves the options, the group and the device and opens the log
// (rank 0 locks output.dir); 1. picks the checkpoint to resume from and checks it
// against the options; 2. builds the same examples on every rank; 3. loads the model
// and injects the adapters; 4. builds AdamW over the trainable list; 5. restores the
// checkpoint or broadcasts rank 0's adapters; 6. loops; 7. evaluates a last time and
// writes the final checkpoint, marked finished. One step:
//
//   - forward and backward over this rank's micro-batches of the global batch
//     (micro_batch_size × grad_accum_steps × world size examples, in an order data.seed
//     fixes whatever the world size), each summed loss divided by the target count of
//     the whole global batch, so the gradients add up to those of the global mean loss
//     however the batch is cut;
//   - one all-reduce of the gradients, one of the loss and token counts;
//   - a non-finite loss or gradient norm stops the run with ErrNonFinite, naming the step
//     and the last good checkpoint, and saves nothing;
//   - clipping to train.grad_clip, AdamW at the scheduled rate (transformers' warmup and
//     linear, cosine or constant decay);
//   - rank 0 reports; every eval_every steps an evaluation (and early stopping after
//     early_stopping_patience evaluations without a lower loss); every checkpoint.every
//     steps a checkpoint.
//
// # What Run guarantees
//
// A checkpoint is written atomically (package checkpoint) with every file's SHA-256,
// and never holds a non-finite value. Loading checks everything before the run changes
// anything: checksums, missing and extra files and tensors, shapes, dtypes,
// finiteness, a complete AdamW state per parameter, and the base model's identity.
// resume: auto takes the newest checkpoint that verifies and sets newer invalid ones
// aside. When the options disagree with the checkpoint, adapter-shaping keys must match
// (ErrMismatch names each) and every other key follows the options with a warning
// (reconcile, compat.go).
//
// A resumed run continues bit for bit — the same per-step losses and the same final
// adapter and optimizer bytes as a run never interrupted — when nothing but the run
// directory carries over (same options, world size and thread count, float32 on the
// CPU): the checkpoint holds the data position, the PCG state and the dropout pass
// count (dropout masks come from (train.seed, rank, pass count)). Not bit-exact by
// construction: adapter dropout > 0 (lrlora draws its masks from libtorch's generator,
// which gotch cannot seed or save), and another world size or micro-batch split (the
// same examples summed in another order: equal up to rounding; with Adam's eps that
// rounding can flip the sign of an update of a gradient component that is only noise).
//
// A run stopped by a cancelled context (a signal), a failed collective or a failed
// evaluation loses no completed step: rank 0 holds the whole run's state between steps
// (adapters and optimizer are replicated) and saves the last completed step before
// returning, unless the newest checkpoint holds it. A step whose evaluation was cut
// short is saved with State.EvalDue and evaluated first on resume, so evaluations and
// early stopping are those of an uninterrupted run. On resume, rank 0 drops the
// metrics.jsonl records of steps after the checkpoint, so each step appears once.
//
// # Outputs
//
// Rank 0 writes <output.dir>/train.log (zerolog JSON lines) and metrics.jsonl (one
// record per step, one per evaluation). The console shows the same events readably on a
// terminal, with a progress bar instead of per-step lines; JSON lines otherwise. Other
// ranks log to their console only. OpenCheckpoint, LoadAdapters and VerifyBaseModel
// use a checkpoint elsewhere (evaluation, export). Measured step time and memory are in
// BENCHMARKS.md (trainer sections).
//
// # Threads
//
// On the CPU a step alternates between libtorch's OpenMP pool and OpenBLAS's threads;
// libgomp's default spin-wait lets the idle pool take the cores the busy one needs.
// A program that trains calls ExecWithThreadEnv first in main (lrtrain does): it
// re-executes itself once, same process ID and arguments, with OMP_WAIT_POLICY=PASSIVE
// unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set, and OPENBLAS_THREAD_TIMEOUT=4 unless
// that is set (ThreadEnv), since libgomp and OpenBLAS read them only when loaded.
package train
