// Package hfinit writes randomly initialised models in the exact Hugging Face layout,
// for tests and measurements (lrtrain init-model):
//
//   - config.json with the keys transformers' save_pretrained writes for the
//     architecture (its config class's own keys plus architectures, model_type,
//     torch_dtype, transformers_version, token ids, …), floats spelled as Python does;
//   - model.safetensors with every tensor model.Layout lists, drawn as transformers'
//     _init_weights does (normal(0, initializer_range) weights, zero biases, unit norm
//     weights), each from its own stream seeded by (seed, tensor name);
//   - tokenizer.json, tokenizer_config.json and special_tokens_map.json: a byte-level
//     BPE tokenizer (GPT-2's byte-to-rune map, 256 byte tokens, merges learned greedily
//     from a small built-in corpus) with the special tokens of the architecture's family;
//   - generation_config.json for causal LMs.
//
// Presets: tiny (hidden 64, 2 layers, 4 heads, 2 KV heads, vocab 512), small (hidden
// 512, 8 layers, 8 heads, 4 KV heads, vocab 8192; encoders hidden 256, 4 layers) and
// qwen2-0.5b (the real shapes of Qwen2-0.5B: hidden 896, 24 layers, 14 heads, 2 KV heads,
// intermediate 4864, vocab 151936; 494,032,768 parameters). The same options give the
// same bytes.
package hfinit
