// Package adapterio reads and describes adapter directories in PEFT's layout:
// adapter_config.json and adapter_model.safetensors, as PEFT's save_pretrained writes
// them and as lrtrain's adapter-only export (package export) writes them.
//
// The layout, checked against PEFT's source (release PEFTVersion):
//
//   - adapter_config.json holds every field of PEFT's LoraConfig and PeftConfig by its
//     own name (Config): peft_type "LORA", task_type ("CAUSAL_LM", "SEQ_CLS"),
//     base_model_name_or_path, r, lora_alpha, lora_dropout, use_rslora,
//     target_modules (a list of module-name suffixes, or one string: a regular
//     expression over the whole module path, or "all-linear"), bias "none",
//     modules_to_save, init_lora_weights, … PEFT writes it with sorted keys and a
//     two-space indent, and so does Config.JSON.
//   - adapter_model.safetensors names each tensor by its path in PEFT's wrapper with
//     the adapter's name left out: base_model.model.<module>.lora_A.weight of shape
//     [r, d_in] and base_model.model.<module>.lora_B.weight of shape [d_out, r];
//     modules_to_save tensors (classification heads) under their own paths,
//     base_model.model.classifier.out_proj.weight. The adapter computes
//     y = W0·x + s·B·A·x with s = lora_alpha/r (lora_alpha/√r with use_rslora).
//
// LR-LoRA and SineLoRA adapters use the same layout with peft_type "LRLORA" and an
// "lrlora" block (LRLoRABlock: method, K, L, grid, basis, share, sine_omega, scaling,
// modules); their φ tensors are base_model.model.<module>.phi.{amplitude,
// bandwidth_raw,grid} (or phi_shared.* once under sharing). PEFT has no config class
// for "LRLORA" and stops with an error on it, instead of loading B·A without φ.
//
// Open reads a directory and derives the adapter.Spec that reproduces it, refusing
// with ErrUnsupported, by key, the PEFT features lrtrain's adapters do not have (DoRA,
// per-module ranks, LoRA biases, …). Dir.Attach injects the adapters into a model and
// loads the tensors (evaluation, lrtrain eval --adapter); Dir.LoadInto loads them into
// a training run's freshly injected adapters (lrtrain train --init-adapter), whose
// adapter section Dir.ConfigOverrides sets.
package adapterio
