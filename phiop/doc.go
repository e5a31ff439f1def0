// Package phiop is LR-LoRA's fused transfer-function op (docs/method.md §1, §2, §4):
//
//	φ(x) = Σ_{k=1..K} a_k · f(c · b_k · (x − g_k)),   b_k = softplus(β_k)
//
// applied elementwise to a matrix M (in LR-LoRA, M = B·A), with f one of
// Sinc (the paper's), Gaussian or BSpline, c a constant scale, a and β
// trained K-vectors and g a constant grid.
//
// Apply runs it as one libtorch autograd node (a C++
// torch::autograd::Function reached through cgo) that saves only M, a, β and
// g and recomputes the K terms in backward, so memory stays O(numel(M) + K)
// where the op-by-op form, Naive, keeps O(numel(M)·K). Backward returns
//
//	∂L/∂x   = G ⊙ Σ_k a_k c b_k f'(t)        t = c b_k (x − g_k)
//	∂L/∂a_k = Σ G f(t)
//	∂L/∂β_k = sigmoid(β_k) · Σ G a_k c (x − g_k) f'(t)
//
// The CPU kernels run one pass over M forward and one backward, parallel
// over fixed chunks of 8192 elements with at::parallel_for; ∂a and ∂β are
// summed per chunk and then in chunk order, so they are bit-identical for
// any thread count. float32 uses its own vectorised sin/cos (AVX-512, AVX2 or
// SSE2 clone picked at load time); float64 uses libm.
//
// Tabulated float32 sinc (phi_table.h, phi_table_cpu.cpp, phi_tabulated.cpp): on a
// large M spanning at least two intervals of its grid, φ and φ′ come from cubic
// tables over M's range and ∂a, ∂β from G's per-interval moments spread onto the
// nodes, with the node spacing bounded so every interpolation error stays below
// 2⁻²⁶ of its scale (docs/method.md §4.1). SetTabulated(false) forbids it;
// TabulatedCalls and Passes count which path the passes took.
//
// CUDA kernels live in cuda/phi_kernel.cu and are linked only with the
// `cuda` build tag (see the Makefile); otherwise CUDA tensors are rejected
// with ErrNoCUDA.
//
// Variants (ApplyVariant, docs/method.md §10): Center is φ(x) − φ(0) and Residual
// is x + φ(x) − φ(0), flags of the same fused node on every kernel (CPU float32 and
// float64, CUDA): φ(0) comes from the kernel itself on a one-element zero, so a zero
// entry of M gives exactly 0, and backward sums Σ G beside ∂a and ∂β in its one pass.
// NaiveVariant composes the variants over Naive with libtorch ops: the reference.
//
// The recomputing layer (lean.go, lean_shim.cpp, docs/method.md §4.2): LeanLinear is a
// whole LR-LoRA layer, x·(W0 + α·φ_v(B·A))ᵀ + bias, as one autograd node that keeps
// x, W0, B, A and the K-vectors instead of B·A and W0 + ΔW, and recomputes those two in
// backward with the calls forward made (any device: the products are libtorch's, φ the
// fused kernels). lrlora uses it under model.recompute_delta. LeanDelta is the merged
// weight alone, W0 + cast(α·φ_v(B·A)) (or α·φ_v(B·A)), as one node that keeps B, A and
// the K-vectors instead of B·A and recomputes that product in backward: lrlora's merged
// weight in training, and what it holds for a step under model.delta_per_step.
//
// A decoder block's elementwise pieces (fused.go, fused_shim.cpp): RMSNorm is Llama's
// norm, w ⊙ cast(x₃₂·rsqrt(mean(x₃₂²) + ε)), and SwiGLU the gated product
// silu(gate) ⊙ up, each as one autograd node whose forward runs the composed ops'
// own calls (the same bits). Composed, autograd keeps silu(gate) (for the product with
// up) and, with libtorch 1.13, the normalised x (for the product with the frozen weight;
// 2.x skips it), or in bfloat16 a float32 copy of x, until the block's backward; these
// nodes keep x and one rsqrt per row, and gate and up, which the block holds anyway,
// and recompute the rest in backward. SwiGLU's gradients are the
// composed ops' bit for bit; RMSNorm's backward is the closed form
// ∂x = r·(G − n·mean(G ⊙ n)) (n the normalised x, r the rsqrt, G the gradient
// reaching n), equal to the composed chain up to float32 rounding. model uses both.
//
// Caching CPU allocator (cpu_alloc.cpp, alloc.go): InstallCachingAllocator makes
// libtorch's CPU allocator (c10::SetCPUAllocator) one that keeps freed blocks of
// 64 KiB or more mapped, in 64 KiB size classes below 1 MiB and eight classes per
// doubling from there, and hands them to the next request that fits within an eighth of waste;
// without it, glibc maps and unmaps blocks of a megabyte or more on every allocation
// (each step page-faults its large tensors afresh) and keeps freed smaller ones
// resident in its arenas (100–140 MiB per process on the small Llama's step).
// Cached-but-free bytes are bounded (DefaultCacheLimit: 1 GiB, or an eighth of
// physical memory if less; LRTRAIN_CPU_CACHE_MB sets it, 0 keeps libtorch's own
// allocator), the oldest block going first; smaller requests go to libtorch's
// default allocator; memory is handed out 64-byte aligned and never zeroed.
// train.Run installs it through InstallCachingAllocatorFromEnv;
// CachingAllocatorStats reports hits, misses, evictions and bytes, and the peak of
// what live tensors held (PeakTensorBytes, small blocks included: the CPU's
// "max memory allocated"), which train's "training finished" line logs.
//
// Native AdamW (adamw.go, adamw_shim.cpp, cuda/adamw_kernel.cu): AdamW takes one
// decoupled-weight-decay Adam step for a whole list of parameters, their gradients
// and moments, in place and in one native call per dtype/device group (on the CPU
// one parallel loop over all elements of all entries, on a CUDA device one copy of
// the list and one kernel launch), with exactly the operations of optim.AdamW's
// libtorch path; the element arithmetic (cuda/adamw_device.cuh) is shared by both
// devices and by the host emulation of the CUDA walk that the tests run.
// AdamWCheck says whether an entry can go through it and which group it joins; a
// refused list leaves every tensor unchanged.
//
// Tests: go test ./phiop/ (finite differences in float64, fused vs Naive,
// determinism, retained memory); benchmarks: make -C phiop bench.
package phiop
