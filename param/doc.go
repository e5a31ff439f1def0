// Package param is the one list of named tensors a fine-tune is described by: a model
// lists its bound weights with it (heads marked trainable), an adapter lists its own
// tensors (lora_A, lora_B, φ; the φ grid is a buffer), and the optimizer, the parameter
// count, the all-reduce and checkpoints all derive from such a list. It has no notion
// of adapters or architectures, so model and lrlora share it without depending on each
// other for it.
package param
