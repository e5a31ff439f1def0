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
//   - lora: PyTorch's `lora` is ΔW = s·B·A merged into W_eff = W0 + ΔW, one matmul per
//     layer. lrtrain trains plain LoRA unmerged (x·W0ᵀ + s·(x·Aᵀ)·Bᵀ, as PEFT; since the
//     second session), so its lora row is compared with PyTorch's lora-peft — the pure
//     framework comparison (target: lrtrain/PyTorch ≤ 1.1). The numbers below, from before
//     that change, compare merged with merged.
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
// Measured on the development VM (2 vCPUs of an AMD EPYC, shared with other builds, Debian
// libtorch 1.13.1 with OpenBLAS), 4 layers, 1×256 tokens, 2 threads, float32:
//
//	go run ./bench/modelspeed -rounds 3
//
//	method    side     tokens/s  step ms  min–max        fwd   bwd    RSS loaded  steps' peak  lrtrain/PyTorch
//	lora      lrtrain  92        2774     2445–3214      1206  1442   939 MiB     2327 MiB     1.04× (min 1.00×)
//	lora      pytorch  96        2669     2442–2973      1203  1470   982 MiB     2316 MiB
//	lrlora    lrtrain  65        3952     3687–4356      1594  2344   946 MiB     2595 MiB     0.26× (min 0.25×)
//	lrlora    pytorch  17        15435    14712–16004    4897  10633  982 MiB     2525 MiB
//	lora-peft pytorch  113       2261     2119–2570      1035  1225   982 MiB     1868 MiB
//
// The agreement check passed with identical losses and gradient norms within 2e-14 (lora),
// 4e-5 (lrlora) and 7e-7 (lora-peft against lrtrain's merged LoRA). Four more runs of
// lora alone gave 0.88–0.93× — while PyTorch always ran second; with the order
// alternating, 1.00–1.04×: the two run the same libtorch kernels in the same order, and
// Go's share of the step is under 1%. What the numbers say:
//   - A step is 69% GEMM (torch profiler on the same op sequence). The tied LM head alone
//     (256×896 by 896×151936, forward and input gradient) with its log-softmax is about
//     35% of a 4-layer step.
//   - LR-LoRA's fused φ costs 1.2 s a step over LoRA here (59.6 M elements of M at
//     ≈ 45 M/s, independent of the tokens), +42% at 256 tokens; φ in torch ops costs
//     12.8 s, 11× more.
//   - Merged LoRA (lrtrain, and PyTorch's lora) is 1.18–1.23× slower than PEFT's unmerged
//     form and peaks 450 MiB higher: the d_out×d_in weight gradients and W0 + ΔW.
//   - gotch v0.9.1 paired every tensor handle with a 100 kB Go allocation (ts.newTensor's
//     bigStruct): 500–640 handles, 51–65 MiB of Go garbage per step. Immaterial here; on
//     the tiny preset it doubled lrtrain's step. tools/gotchadapt now removes it.
//   - With these CPUs shared by others, single steps vary by 2×; compare medians over
//     several rounds, never single runs.
package main
