// Package config is the run configuration of lrtrain: one YAML file with the sections
// model, adapter, data, train, checkpoint, export, output and dist, read strictly and
// checked in full before any heavy work. config/examples holds runnable files; each
// begins with the command that runs it.
//
//	model:      path, dtype (float32|bfloat16), activation_checkpointing, recompute_delta,
//	            delta_per_step, split_delta, fused_loss, loss_chunk
//	adapter:    method (lrlora|lora|sinelora), r, alpha, rslora, dropout, target_modules,
//	            modules_to_save, phi {k, l, grid, basis, share}, sine_omega
//	data:       format, train, eval, max_len, packing, template, labels, regression,
//	            skip_bad_records, shuffle, seed, last_batch (pad|drop)
//	train:      seed, max_steps | epochs, micro_batch_size, grad_accum_steps, lr,
//	            weight_decay, betas, eps, warmup_ratio, schedule (linear|cosine|constant),
//	            grad_clip, eval_every, early_stopping_patience, log_every, compute_dtype,
//	            device (auto|cpu|cuda|cuda:N)
//	checkpoint: dir, every, keep_last, resume (auto|never|<checkpoint dir>)
//	export:     dir, dtype, max_shard_size
//	output:     dir, tensorboard (event files under <dir>/tensorboard)
//	dist:       backend (auto|nccl|gloo), timeout, shard_group_size, shard_prefetch,
//	            shared_memory
//
// The adapter section is an adapter.Spec, decoded in place: its keys, defaults
// (adapter.Default), checks and target-module rule live in package adapter. Other names
// follow the packages that consume them: data (format names, templates, pad/drop).
//
// Defaults (Default) are the paper's (docs/method.md §1, §9): K = 50 on [−3, 3], uniform
// grid, sinc basis, α = 2r, AdamW β = (0.9, 0.999), gradient clipping at 1.0, warmup ratio
// 0.1 then linear decay, target modules q,k,v,o,gate,up,down (adapter.LLMTargetModules;
// encoders use adapter.EncoderTargetModules). A few defaults depend on other keys and are
// resolved after reading: alpha = 2r when absent or 0 (adapter.Spec.Resolved), data.seed
// = train.seed when absent, one epoch when neither max_steps nor epochs is set,
// checkpoint.dir = <output.dir>/checkpoints, export.dir = <output.dir>/merged,
// export.dtype = model.dtype. A null (empty) value keeps the default.
//
// Reading is strict (Load, Decode). An unknown key, a duplicate key or a value of the
// wrong type is an error that names the file and line, the key and its section, and for
// unknown keys the nearest valid key, by Damerau–Levenshtein distance over the keys and
// the names other trainers use for them (learning_rate, lora_alpha, max_grad_norm, …):
//
//	unknown key `learning_rat` in section train at cfg.yaml:12; did you mean `lr`?
//
// Overrides "section.key=value" (the CLI's repeatable --set) are applied to the YAML tree
// before decoding, so they are checked the same way and errors name the override; the
// value is read as YAML (1e-4 a number, [q_proj, v_proj] a list; quote values that
// start with { or [ but are strings).
//
// Validate checks ranges, names and combinations (packing with classification, max_steps
// with epochs, early stopping without periodic evaluation, …) and that the model
// directory, data files and a resume checkpoint exist. Relative paths are relative to the
// working directory, which for the examples is the repository root. Every problem is
// reported at once: Load and Validate return Issues, whose entries wrap ErrUnknownKey,
// ErrType, ErrInvalid, … and say where each value came from.
//
// Marshal writes the fully resolved configuration (for checkpoint manifests); decoding
// its output gives the same Config.
package config
