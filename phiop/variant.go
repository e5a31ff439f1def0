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
// for m, amplitude and bandwidthRaw. It composes the fused op with libtorch
// elementwise ops under autograd: φ(0) is the fused op on a one-element zero tensor
// (its ∂a and ∂β are the f(t⁰) and f'(t⁰) terms above, through the same kernels),
// subtracted with a broadcast, and the identity term is an add. So it runs wherever
// Apply does (the CPU and CUDA kernels unchanged) at the cost of one or two more
// elementwise passes over m forward and backward, against K basis evaluations per
// entry in the fused op; BENCHMARKS.md has the measured ratio.
func ApplyVariant(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error) {
	return applyVariant(Apply, m, amplitude, bandwidthRaw, grid, basis, scale, v)
}

// NaiveVariant is ApplyVariant over the op-by-op reference Naive: the reference the
// variants are tested against.
func NaiveVariant(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error) {
	return applyVariant(Naive, m, amplitude, bandwidthRaw, grid, basis, scale, v)
}

type phiFn func(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64) (*ts.Tensor, error)

func applyVariant(fn phiFn, m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error) {
	phi, err := fn(m, amplitude, bandwidthRaw, grid, basis, scale)
	if err != nil || !v.Centred() {
		return phi, err
	}
	phi0, err := atZero(fn, m, amplitude, bandwidthRaw, grid, basis, scale)
	if err != nil {
		phi.Drop()
		return nil, err
	}
	// In place on φ's fresh output (the fused node saves its inputs, not its output),
	// so the variants allocate no d_out×d_in tensor of their own.
	err = phi.Sub_(phi0)
	phi0.Drop()
	if err != nil {
		phi.Drop()
		return nil, fmt.Errorf("phiop: %v: φ(M) − φ(0): %w", v, err)
	}
	if v.Residual {
		if err := phi.Add_(m); err != nil {
			phi.Drop()
			return nil, fmt.Errorf("phiop: %v: M + φ(M) − φ(0): %w", v, err)
		}
	}
	return phi, nil
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
