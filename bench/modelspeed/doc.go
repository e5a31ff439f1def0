// Command modelspeed measures one training step of lrtrain on a Qwen2-shaped model next
// to the same computation in PyTorch (torch_ref.py, Debian's python3-torch 1.13.1, the
// libtorch that gotch links here):
//
//	go run ./bench/modelspeed -rounds 3
//
// The model is a random checkpoint written by model/hfinit with Qwen2-0.5B's layer shapes
// (hidden 896, 14 heads, 2 KV heads, intermediate 4864, vocab 151936, tied embeddings,
// q/k/v biases) and fewer layers (-layers, default 4), float32. It is written once into
// -dir and reused while the options match. Adapters with r = 16, α = 32 and K = 50 sit on
// q,k,v,o,gate,up,down of every layer; their values (A, B, a, β, grid) come from one file
// that both sides load, away from initialisation so that every tensor has a gradient. A
// step is forward + causal-LM loss (sum / targets) + backward on a fixed batch (-batch ×
// -seq, default 1 × 256 tokens), no optimizer; -warmup untimed steps, then -steps timed
// ones, whose median is reported.
//
// Each measurement is a fresh process, so that its peak RSS (VmHWM) is its own: this
// program re-executed for lrtrain (model.Load, model.Inject, model.CausalLMLoss,
// Backward), torch_ref.py for PyTorch, with the same OMP_NUM_THREADS and the same intra-op
// thread count (phiop.SetNumThreads / torch.set_num_threads, -threads, default 2). Pairs of
// processes alternate, -rounds times, and their timed steps are pooled. Both sides report
// the RSS after loading, the peak over the process and the peak of the steps alone (VmHWM
// reset through /proc/self/clear_refs after loading).
//
// Methods, so that the comparison is like for like:
//   - lora: ΔW = s·B·A merged into W_eff = W0 + ΔW, one matmul per layer — what lrtrain
//     runs for LoRA, and the same ops in torch. lrtrain lora against PyTorch lora is the
//     pure framework comparison (target: lrtrain/PyTorch ≤ 1.1).
//   - lrlora: ΔW = s·φ(B·A), merged. lrtrain uses its fused op (package phiop); PyTorch has
//     none, so torch_ref.py writes φ in torch ops: a torch.autograd.Function that loops over
//     k with in-place ops and recomputes the terms in backward (it saves only M, a, β, g,
//     as the fused op does; autograd over a (d_out, d_in, K) broadcast would need tens of
//     GB here).
//   - PyTorch only (-torch-extra): lora-peft, LoRA unmerged as PEFT runs it (x·W0ᵀ +
//     s·(x·Aᵀ)·Bᵀ, no d_out×d_in weight gradient), and lrlora-naive, golden.py's broadcast φ
//     under autograd (tiny models only).
//
// Before any timing matters, the first step of every pair is compared: the loss and the
// norm of every adapter gradient must agree within float32 tolerance (result.go says why
// these bounds), or the program stops with CHECK FAILED. TestBothSidesComputeTheSameStep
// runs the same check on the tiny preset in a few seconds.
//
// -cpuprofile writes a Go CPU profile of lrtrain's timed steps; time inside libtorch shows
// as runtime.cgocall under the gotch call that entered it. `perf record -g` on a child
// (MODELSPEED_CHILD='{…runOpts…}' ./modelspeed) names the libraries and kernels.
//
// Results are in BENCHMARKS.md ("Training step: lrtrain vs PyTorch").
package main
