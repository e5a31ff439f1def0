#!/usr/bin/env bash
# The demo behind `make demo`: the whole product on a tiny bundled task, a few minutes
# on 2 cores. Every step is an ordinary lrtrain command; run them yourself to change
# anything. Starts from scratch each time (runs/demo is removed first).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LRTRAIN:-./bin/lrtrain}
out=runs/demo
rm -rf "$out"
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "environment" \
  $bin env
step "a tiny random Llama in the Hugging Face layout" \
  $bin init-model --arch llama --preset tiny --seed 1 --out $out/model
step "LR-LoRA fine-tuning on the bundled alpaca-style task (checkpoints every 20 steps)" \
  $bin train --config config/examples/alpaca-tiny.yaml
step "the same run on 2 data-parallel workers (embedded etcd, Gloo), same global batch" \
  $bin launch --standalone --nproc-per-node 2 --run-dir $out/launch -- \
  train --config config/examples/alpaca-tiny.yaml --set output.dir=$out/alpaca-tiny-2ranks
step "evaluation of the trained adapters" \
  $bin eval --run $out/alpaca-tiny --data data/testdata/alpaca_tiny_eval.json --task lm --out $out/eval-adapted.json
step "export: W0 + ΔW merged into a Hugging Face model" \
  $bin export --run $out/alpaca-tiny --out $out/merged
step "the merged model scores the same as the adapted one" \
  $bin eval --model $out/merged --data data/testdata/alpaca_tiny_eval.json --format alpaca_json --task lm --out $out/eval-merged.json
step "what was learned: stable ranks, φ curves, spectra, loss curve" \
  $bin inspect --run $out/alpaca-tiny --out $out/inspect
step "one layer, a rank-8 target, rank-2 adapters: lora vs sinelora vs lrlora" \
  $bin demo --out $out/layer

printf '\nDone. Outputs under %s: checkpoints, metrics.jsonl, merged/, inspect/*.png\n' "$out"
