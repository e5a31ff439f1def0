// Package lrlora implements LR-LoRA (Learnable-Rank LoRA) adapters for frozen
// linear layers, with plain LoRA and SineLoRA as variants of the same code path
// (docs/method.md §1, §5).
//
// For a frozen layer y = x·W0ᵀ + bias with W0 ∈ R^{d_out×d_in}:
//
//	M     = B·A                       A: r×d_in (Kaiming-uniform, a = √5), B: d_out×r (zeros)
//	φ(x)  = Σ_k a_k f(b_k (x − g_k))  elementwise; b_k = softplus(β_k); f = sinc by default
//	ΔW    = s·φ(M)                    s = α/r (α = 2r by default), or α/√r with rsLoRA
//	y     = x·(W0 + ΔW)ᵀ + bias
//
// At initialisation a = 0 and b = 1 (β = ln(e−1)), so ΔW = 0 and the adapted layer
// equals the frozen one; in the first optimizer step only a receives gradient, and
// from the second step on B and β do too. Because φ acts elementwise on M, the
// rank of ΔW is no longer bounded by r: the paper's "learnable rank", measured by
// StableRank.
//
// An adapter is made from an adapter.Spec (package adapter holds the settings, their
// defaults and checks; New validates the spec it is handed and uses its values as they
// are). Variants (Spec.Method): LoRA (Hu et al. 2021) is φ(x) = x, so ΔW = s·B·A;
// SineLoRA (Ji et al. 2025) is φ(x) = sin(ω·x)/√d_in with a fixed ω (default 200).
// The transfer function's basis (sinc, gaussian, bspline), grid (uniform, chebyshev)
// and cross-layer sharing (none, grid, bandwidth, all, see SharedPhi) are the fields of
// adapter.Phi. φ itself is computed by the fused op in package phiop. φ's variants
// (docs/method.md §10) are Phi's switches too: Center (ΔW = s·(φ(M) − φ(0))), Residual
// (φ(x) = x + φ(x) − φ(0), exactly LoRA while a = 0), Init (zero, small, identity:
// InitialAmplitudes) and LRScale (IsPhiParameter names the tensors it applies to);
// Adapter.Offset reports φ(0), φ'(0) and the constant share of ‖ΔW‖².
//
// One Adapter.DeltaWeight feeds training (Forward), merging (Merged, and the pure
// Merge with its finiteness check) and export. Adapter.Tensors names every tensor
// the adapter owns, in a fixed order, with a trainable flag; the optimizer's list
// (TrainableParameters), the parameter count (NumParameters) and checkpoints all
// derive from it.
//
// Over an optimizer step of several micro-batches, HoldDelta forms the merged weight
// once and BackwardHeld runs φ's backward once with the micro-batches' summed gradient
// (docs/method.md §4.3). Data-parallel ranks can share that work by layer (§4.4): the
// owner forms the weight into a buffer (HoldDeltaInto), the others hold what they
// receive (HoldReceived), gradients gather where the caller says (GatherGradInto) and
// the owner back-propagates the sum over ranks (BackwardHeldWith).
//
// Tensors are gotch tensors over libtorch. Every intermediate is dropped
// explicitly; W0 and bias stay owned by the model, the rest is freed by Close.
// libtorch's grad mode is per OS thread, so a goroutine that trains adapters
// should call runtime.LockOSThread.
package lrlora
