// Package model runs Hugging Face transformer checkpoints on gotch (libtorch): decoder
// LMs (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM, Phi3ForCausalLM) and
// encoder classifiers (RobertaForSequenceClassification, BertForSequenceClassification),
// with LR-LoRA adapters (package lrlora) injected into their linear layers.
//
// Loading. Load reads a model directory — config.json and model.safetensors or a
// sharded model.safetensors.index.json — and builds the architecture that config.json's
// architectures[0] names (LookupArchitecture; an unknown one is an error naming it and
// the file). Weights are bound by their Hugging Face tensor names (model.layers.0.
// self_attn.q_proj.weight, …), one file per concept: norms, rotary embeddings,
// attention, MLP, decoder, encoder. Tensors are copied once from the memory-mapped
// file into libtorch and converted from F32, BF16, F16 or F64 to the compute dtype
// (float32 by default, WithDType for bfloat16). Missing or unexpected tensors, wrong
// shapes, unsupported dtypes and corrupt files are errors that name the file and the
// tensor. Layout lists the tensors a config implies; package hfinit writes random
// checkpoints from it (lrtrain init-model).
//
// Computation follows transformers' modeling code: RMSNorm in float32, rotate-half
// RoPE with rope_theta and rope_scaling (linear, llama3), grouped-query attention with
// repeat_kv, a float32 softmax over scores masked with the dtype's lowest value
// (causal, padding, sliding window, packed segments), SwiGLU MLPs, Qwen2's q/k/v
// biases, Phi-3's fused projections split after the projection, tied embeddings;
// post-LN BERT encoders with RoBERTa's padding-aware position ids, a pooler (BERT) or
// dense+tanh head (RoBERTa), regression when num_labels is 1. libtorch's fused
// attention is used where it exists (libtorch ≥ 2.0; tried once per process), eager
// attention otherwise. CausalLMLoss, ClassificationLoss and RegressionLoss return a
// summed loss and the number of targets (counted on the device and read to the host),
// so that a trainer normalises over all its micro-batches; their *Sum forms read
// nothing, for a trainer that counts its host labels (CausalLMTargets, ClassTargets,
// RegressionTargets). With SetFusedLoss a training pass whose Inputs carry Labels
// computes a causal LM's summed loss in its head a chunk of vocabulary rows at a time
// (Pass.LossSum) instead of returning the B×T×V logits; its gradient is the
// cross-entropy's, up to the order of sums (lmloss.go states how). A block hook that
// is also a RowReader serves such a pass the vocabulary matrices' rows (the
// embeddings of the batch's ids, the head's a chunk at a time) instead of binding
// them whole.
//
// Adapters. Inject attaches lrlora adapters to the layers that Targets select (PEFT's
// rules: names matching the module path or its dotted suffix, a full-match regex, or
// all-linear) — never to the LM head or a classification head, whose tensors are
// trainable (like PEFT's modules_to_save) and listed by HeadTensors under their
// Hugging Face names. TrainableTensors is the one ordered list that optimising,
// counting (CountParameters: r·(d_in + d_out) + 2K per LR-LoRA module) and saving
// derive from.
//
// With a block hook that releases weights (a sharded backbone), SetRegather is the
// other way through backward: Begin keeps every block's graph and Pass.Backward has the
// hook gather each block again before its backward, instead of recomputing it. It needs
// every linear layer to be an LR-LoRA layer recomputing ΔW (their nodes hold W0 by
// reference; lrlora.Adapter.SetRecomputeDelta), and copies the norm weights per pass;
// Begin refuses otherwise, naming the layer (RegatherReady).
//
// Activation checkpointing (SetCheckpointing, Begin, Pass.Backward) keeps only each
// block's input in the forward pass and recomputes one block at a time in backward;
// the gradients are bit-identical to a pass without it (tested, also with dropout,
// whose masks come from a counter-based hash in checkpointed or seeded passes; see
// SetDropoutSeed). On the small preset (llama, hidden 512, 8 layers, batch 2 × 512
// tokens, all-linear rank 8, 2 CPU cores) peak RSS drops from 1313 MiB to 701 MiB and
// a step takes 5.5 s instead of 4.5 s:
//
//	LRTRAIN_MEM_PRESET=small LRTRAIN_MEM_BATCH=2 LRTRAIN_MEM_SEQ=512 \
//	  go test ./model/ -run TestCheckpointingLowersPeakMemory -v
//
// Block hooks. WithBlockHook installs a BlockHook that the model calls around the
// embeddings, each block and the head, and around each block's recomputation in a
// checkpointed backward; a hook that is also a WeightDeferrer supplies the frozen
// weights itself, which the model then binds as placeholders without reading them
// (package shard all-gathers them per block from the ranks of a shard group); a hook
// that is also a BlockScheduler hears the order of the next Before calls before each
// run of pieces, so that it can prepare the next blocks while one computes.
//
// Tests compare logits, losses and adapter gradients with golden files written by
// testdata/golden.py, an independent float64 PyTorch implementation (regenerate with
// go run ./model/testdata/gen && /usr/bin/python3 model/testdata/golden.py).
//
// Tensors are gotch tensors; every intermediate is dropped explicitly. libtorch's grad
// mode is per OS thread: train from one goroutine that called runtime.LockOSThread.
package model
