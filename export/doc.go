// Package export writes what a fine-tune learned in forms other tools load.
//
// Merged writes a plain Hugging Face model: every tensor of the base model under its
// own name, W0 + ΔW in place of each adapted layer's W0 (ΔW from the adapter's one
// DeltaWeight, the sum checked for NaN and Inf by lrlora.Merge, which names the
// adapter), the trained classification head, the base config.json with torch_dtype
// set to the output dtype (float32, bfloat16 or float16), the tokenizer files and
// generation_config.json. Weights over the shard size (5 GB by default) are split into
// model-0000i-of-0000N.safetensors with model.safetensors.index.json, exactly as
// transformers' save_pretrained does, and every shard's header carries
// {"format": "pt"}, so transformers, vLLM and llama.cpp's converter load the result
// as they load the base. The merge runs in float32 whatever the compute dtype and
// rounds once (to nearest, ties to even, as torch) to the output dtype.
//
// AdapterOnly writes the adapters alone in PEFT's layout (package adapterio states
// it): adapter_model.safetensors with base_model.model.<module>.lora_A.weight [r, d_in]
// and lora_B.weight [d_out, r] and the head under its own names, and
// adapter_config.json with every key of PEFT's LoraConfig — target_modules as the
// shortest suffixes that select exactly the adapted layers, modules_to_save, PEFT's
// defaults elsewhere. A plain LoRA adapter says peft_type "LORA" and holds nothing
// else, so PEFT loads it as it is. LR-LoRA and SineLoRA adapters say "LRLORA", add φ's
// tensors as <module>.phi.{amplitude,bandwidth_raw,grid} (phi_shared.* under sharing)
// and an "lrlora" block (method, K, L, grid, basis, share, center, residual,
// sine_omega, scaling, modules); PEFT refuses that peft_type rather than silently
// dropping φ. adapterio reads both kinds back.
//
// Both write into a hidden temporary directory beside the output and rename it into
// place, so the output directory is never partial: an export that fails (a NaN
// adapter, a full disk) leaves nothing behind, and Overwrite replaces an old export
// only once the new one is complete.
//
// Tests: the merged model loaded fresh with model.Load gives bit-identical logits to
// the adapted model (llama LR-LoRA, qwen2 SineLoRA, roberta LoRA with its head); a
// bfloat16 export holds exactly the bfloat16 rounding of the float32 merge; shards
// and index cover every tensor once with the one-file export's bytes; a NaN adapter
// is refused by name with nothing left on disk; a LoRA adapter's config holds exactly
// PEFT 0.20.0's LoraConfig keys, value types and defaults, its tensors PEFT's names and
// shapes (tiny Llama and Qwen2).
package export
