package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"

	"github.com/sugarme/gotch/ts"
)

// Variant shapes φ around the fused sum Σ_k a_k f(c·b_k·(x − g_k)) (docs/method.md
// §10). The zero Variant is the paper's φ.
//
//	Center:   φ_c(x) = φ(x) − φ(0)              no constant offset in ΔW
//	Residual: φ_r(x) = x + φ(x) − φ(0)          exactly x (LoRA) while a = 0
//
// Residual is always centred (Center is implied). Their gradients, with G the
// upstream gradient and t⁰_k = −c·b_k·g_k:
//
//	∂L/∂x   = G ⊙ ([Residual] + Σ_k a_k c b_k f'(t))
//	∂L/∂a_k = Σ G f(t) − f(t⁰_k)·Σ G
//	∂L/∂β_k = sigmoid(β_k)·(Σ G a_k c (x − g_k) f'(t) + a_k c g_k f'(t⁰_k)·Σ G)
type Variant struct {
	Center   bool
	Residual bool
}

// Centred reports whether φ(0) is subtracted (Center or Residual).
func (v Variant) Centred() bool { return v.Center || v.Residual }

// String names the variant as the config keys do: plain, center or residual.
func (v Variant) String() string {
	switch {
	case v.Residual:
		return "residual"
	case v.Center:
		return "center"
	}
	return "plain"
}

// ApplyVariant returns v's φ of m (Apply for the zero Variant), with exact gradients
// for m, amplitude and bandwidthRaw, as one fused node: the variants are flags of the
// kernels (CPU float32 and float64, CUDA). Forward subtracts φ(0), which the same
// kernel computes on a one-element zero (so an entry of m equal to 0 gives exactly 0),
// and adds m for Residual; backward starts ∂x at 1 for Residual and sums Σ G beside
// the per-k sums of the same pass, then adds the φ(0) terms above per k (f and f' at
// t⁰_k in float64). No libtorch op and no pass over m is added to Apply's.
func ApplyVariant(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error) {
	if err := validate(m, amplitude, bandwidthRaw, grid, basis, scale); err != nil {
		return nil, err
	}
	phi, err := applyFusedVariant(m, amplitude, bandwidthRaw, grid, basis, scale, v)
	if err != nil {
		return nil, fmt.Errorf("phiop: %v: %w", v, err)
	}
	return phi, nil
}

// NaiveVariant is the variants composed over the op-by-op reference Naive under
// autograd: φ(0) is Naive on a one-element zero, subtracted with a broadcast, and the
// identity is an add. It is the reference ApplyVariant is tested against.
func NaiveVariant(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error) {
	return composeVariant(Naive, m, amplitude, bandwidthRaw, grid, basis, scale, v)
}

type phiFn func(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64) (*ts.Tensor, error)

// composeVariant builds v's φ from fn (Apply or Naive) and libtorch elementwise ops.
func composeVariant(fn phiFn, m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error) {
	phi, err := fn(m, amplitude, bandwidthRaw, grid, basis, scale)
	if err != nil || !v.Centred() {
		return phi, err
	}
	phi0, err := atZero(fn, m, amplitude, bandwidthRaw, grid, basis, scale)
	if err != nil {
		phi.Drop()
		return nil, err
	}
	// New tensors, not gotch's in-place X_ methods (see tensorkit.Done).
	centred, err := phi.Sub(phi0, false)
	phi.Drop()
	phi0.Drop()
	if err != nil {
		return nil, fmt.Errorf("phiop: %v: φ(M) − φ(0): %w", v, err)
	}
	if !v.Residual {
		return centred, nil
	}
	out, err := centred.Add(m, false)
	centred.Drop()
	if err != nil {
		return nil, fmt.Errorf("phiop: %v: M + φ(M) − φ(0): %w", v, err)
	}
	return out, nil
}

// AtZero returns the paper's φ(0) = Σ_k a_k f(−c·b_k·g_k) as a one-element tensor of
// like's dtype and device, computed by the fused op, differentiable with respect to
// amplitude and bandwidthRaw.
func AtZero(like, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64) (*ts.Tensor, error) {
	return atZero(Apply, like, amplitude, bandwidthRaw, grid, basis, scale)
}

// atZero is AtZero computed by fn (Apply or Naive).
func atZero(fn phiFn, like, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64) (*ts.Tensor, error) {
	dev, err := like.Device()
	if err != nil {
		return nil, fmt.Errorf("phiop: φ(0): device of M: %w", err)
	}
	zero, err := ts.Zeros([]int64{1}, like.DType(), dev)
	if err != nil {
		return nil, fmt.Errorf("phiop: φ(0): zero input: %w", err)
	}
	defer zero.Drop()
	phi0, err := fn(zero, amplitude, bandwidthRaw, grid, basis, scale)
	if err != nil {
		return nil, fmt.Errorf("phiop: φ(0): %w", err)
	}
	return phi0, nil
}
