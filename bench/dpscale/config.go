package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeConfig writes dir/cfg.yaml: one run of f's training on base, with output.dir
// dir/out, and returns its path.
func writeConfig(f flags, base, data, dir string, accum int, ckpt, recompute, split bool, shardSize, prefetch int, shm bool) (string, error) {
	cfg := fmt.Sprintf(`model: {path: %s, activation_checkpointing: %t, recompute_delta: %t, delta_per_step: %t, split_delta: %t}
adapter: {method: %s, r: 8}
data: {format: alpaca_json, train: %s, max_len: %d, packing: %t}
train: {seed: 1, max_steps: %d, micro_batch_size: %d, grad_accum_steps: %d, lr: 1.0e-3, log_every: 1}
checkpoint: {every: 1000000}
dist: {backend: gloo, shard_group_size: %d, shard_prefetch: %d, shared_memory: %t}
output: {dir: %s}
`, base, ckpt, recompute, f.deltaPerStep, split, f.method, data, f.maxLen, f.packing, f.steps, f.micro, accum, shardSize, prefetch, shm, filepath.Join(dir, "out"))
	cfgPath := filepath.Join(dir, "cfg.yaml")
	return cfgPath, os.WriteFile(cfgPath, []byte(cfg), 0o644)
}
