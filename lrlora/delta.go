package lrlora

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/phiop"
)

// DeltaWeight returns ΔW = s·φ(B·A) (d_out×d_in, in the adapter's parameter dtype;
// φ centred or residual as the spec's Phi says), recorded by autograd when grad mode
// is on. It is the one function that training
// (Forward), merging (Merged) and export use. The caller drops the result.
//
// For LR-LoRA it is one phiop.LeanDelta node (leanDelta): the fused φ kernels, and
// for backward B, A and the K-vectors, not M or K intermediate d_out×d_in tensors
// (docs/method.md §4, §4.2).
func (ad *Adapter) DeltaWeight() (*ts.Tensor, error) {
	if ad.spec.Method == adapter.LRLoRA {
		return ad.leanDelta(false)
	}
	t, alpha, err := ad.deltaParts()
	if err != nil {
		return nil, err
	}
	if alpha == 1 {
		return t, nil
	}
	dw, err := mulScalar(t, alpha, true)
	if err != nil {
		return nil, fmt.Errorf("lrlora: delta weight %q: scale: %w", ad.name, err)
	}
	return dw, nil
}

// deltaParts returns t and α with ΔW = α·t (t d_out×d_in, new) for LoRA and SineLoRA;
// LR-LoRA's ΔW is leanDelta's one node.
//
// Ops stay out of place on φ's output: an in-place W0 + ΔW on it (one allocation
// less) raised the small preset's peak RSS at 2×256 tokens from 0.86 to 1.38 GiB.
func (ad *Adapter) deltaParts() (*ts.Tensor, float64, error) {
	if ad.closed {
		return nil, 0, fmt.Errorf("lrlora: delta weight %q: %w", ad.name, ErrClosed)
	}
	m, err := ad.b.Mm(ad.a, false)
	if err != nil {
		return nil, 0, fmt.Errorf("lrlora: delta weight %q: B·A: %w", ad.name, err)
	}
	var t *ts.Tensor
	alpha := ad.scaling
	switch ad.spec.Method {
	case adapter.LoRA:
		// φ(x) = x: ΔW = s·B·A.
		t = m
	case adapter.SineLoRA:
		// φ(x) = sin(ω·x)/√d_in: ΔW = (s/√d_in)·sin(ω·B·A).
		alpha = ad.scaling / math.Sqrt(float64(ad.dIn))
		var wm *ts.Tensor
		if wm, err = mulScalar(m, ad.spec.SineOmega, true); err == nil {
			t, err = wm.Sin(true)
		}
	default:
		m.Drop()
		err = fmt.Errorf("%w: method %v", ErrConfig, ad.spec.Method)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("lrlora: delta weight %q: %w", ad.name, err)
	}
	return t, alpha, nil
}

// Forward computes the adapted layer for x (…×d_in, in W0's dtype).
//
// Plain LoRA in training mode runs unmerged, as PEFT does (forwardLowRank). Otherwise,
// with dropout 0, or in eval mode, it merges once and does one backbone-shaped
// matmul: y = x·(W0 + ΔW)ᵀ + bias. With dropout p > 0 in training mode the adapter
// path cannot be merged: y = x·W0ᵀ + dropout(x)·ΔWᵀ + bias (ΔW already holds s).
// Dropout draws from libtorch's global generator.
func (ad *Adapter) Forward(x *ts.Tensor) (*ts.Tensor, error) {
	lowRank := ad.spec.Method == adapter.LoRA && ad.training
	dropout := ad.spec.Dropout > 0 && ad.training
	if lowRank || dropout {
		xa := x
		if dropout {
			xd, err := ts.Dropout(x, ad.spec.Dropout, true)
			if err != nil {
				return nil, fmt.Errorf("lrlora: forward %q: dropout: %w", ad.name, err)
			}
			defer xd.Drop()
			xa = xd
		}
		if lowRank {
			return ad.forwardLowRank(x, xa)
		}
		return ad.forwardSplit(x, xa)
	}
	if ad.recompute && ad.training && ad.spec.Method == adapter.LRLoRA {
		return ad.forwardRecompute(x)
	}
	weff, err := ad.heldAs(true) // HoldDelta: formed once for the step
	if weff == nil && err == nil {
		weff, err = ad.mergedWeight()
	}
	if err != nil {
		return nil, err
	}
	defer weff.Drop()
	bias, dropBias := ad.biasOrUndefined()
	defer dropBias()
	y, err := ts.Linear(x, weff, bias)
	if err != nil {
		return nil, fmt.Errorf("lrlora: forward %q: x·W_effᵀ: %w", ad.name, err)
	}
	return y, nil
}

// mergedWeight returns W_eff = W0 + cast(ΔW), recorded by autograd. With s on φ's
// amplitudes (leanDelta) W_eff's gradient reaches φ's node with no d_out×d_in pass
// in between. For LR-LoRA it is one phiop.LeanDelta node (leanDelta): composed op by
// op, φ's node would keep M = B·A, a d_out×d_in tensor, until backward, beside the
// W_eff that the product keeps.
func (ad *Adapter) mergedWeight() (*ts.Tensor, error) {
	if ad.spec.Method == adapter.LRLoRA && ad.held == nil { // a held ΔW: deltaAs adds it
		return ad.leanDelta(true)
	}
	dw, err := ad.deltaAs(ad.w0)
	if err != nil {
		return nil, err
	}
	defer dw.Drop()
	weff, err := ad.w0.Add(dw, false)
	if err != nil {
		return nil, fmt.Errorf("lrlora: forward %q: W0 + ΔW: %w", ad.name, err)
	}
	return weff, nil
}

// leanDelta returns LR-LoRA's W_eff = W0 + cast(ΔW) (weff) or ΔW as one
// phiop.LeanDelta node, which keeps B, A and the K-vectors for backward and
// recomputes M = B·A there (one rank-r product): the values are those of φ, s and
// W0 + ΔW composed op by op (the same calls), the gradients the same products.
func (ad *Adapter) leanDelta(weff bool) (*ts.Tensor, error) { return ad.leanDeltaInto(nil, weff) }

// leanDeltaInto is leanDelta writing the weight into into (nil: none) and returning a
// tensor over into's memory (phiop.LeanDeltaInto).
func (ad *Adapter) leanDeltaInto(into *ts.Tensor, weff bool) (*ts.Tensor, error) {
	var w0 *ts.Tensor
	if weff {
		w0 = ad.w0
	}
	var d *ts.Tensor
	err := ad.withScaledPhi(func(v phiop.Variant, amp *ts.Tensor, alpha float64) error {
		var err error
		d, err = phiop.LeanDeltaInto(into, w0, ad.b, ad.a, amp, ad.phi.bandwidthRaw, ad.phi.grid, ad.spec.Basis, ad.phiScale, v, alpha)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lrlora: delta weight %q: %w", ad.name, err)
	}
	return d, nil
}

// forwardRecompute is Forward's merged path as one phiop.LeanLinear node
// (SetRecomputeDelta), with s placed as leanDelta places it: the same calls, so the
// same output.
func (ad *Adapter) forwardRecompute(x *ts.Tensor) (*ts.Tensor, error) {
	var y *ts.Tensor
	err := ad.withScaledPhi(func(v phiop.Variant, amp *ts.Tensor, alpha float64) error {
		var err error
		y, err = phiop.LeanLinear(x, ad.w0, ad.bias, ad.b, ad.a, amp, ad.phi.bandwidthRaw, ad.phi.grid,
			ad.spec.Basis, ad.phiScale, v, alpha)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lrlora: forward %q: %w", ad.name, err)
	}
	return y, nil
}

// withScaledPhi calls f with φ's variant (phi.center, phi.residual: docs/method.md
// §10) and the amplitudes and factor α with ΔW = α·φ_v(M; amp).
//
// Where s can ride on a small tensor it does: LR-LoRA's plain and centred φ are linear
// in the amplitudes, s·φ(M; a) = φ(M; s·a), so s multiplies the K amplitudes and
// α = 1 (no d_out×d_in pass forward, none in backward). With the default s = α/r = 2
// this is exact in floating point; otherwise the two differ by rounding only.
// Residual φ (M + φ(M) − φ(0)) is not linear in a, so s stays in α. The scaled
// amplitudes are recorded by autograd (their gradient reaches a) and dropped after f:
// a node f makes keeps its own reference.
func (ad *Adapter) withScaledPhi(f func(v phiop.Variant, amp *ts.Tensor, alpha float64) error) error {
	if ad.closed {
		return ErrClosed
	}
	v := phiop.Variant{Center: ad.spec.Center, Residual: ad.spec.Residual}
	if v.Residual {
		return f(v, ad.phi.amplitude, ad.scaling)
	}
	sa, err := mulScalar(ad.phi.amplitude, ad.scaling, false)
	if err != nil {
		return fmt.Errorf("s·a: %w", err)
	}
	defer sa.Drop()
	return f(v, sa, 1)
}

// forwardLowRank is plain LoRA's training path, as PEFT runs it:
// y = x·W0ᵀ + bias + s·(xa·Aᵀ)·Bᵀ, where xa is the adapter's input (dropout(x) or x).
// It never forms ΔW, so backward needs no d_out×d_in gradient: a backbone-sized GEMM
// less than the merged path. A and B are cast to x's dtype (autograd flows through).
func (ad *Adapter) forwardLowRank(x, xa *ts.Tensor) (*ts.Tensor, error) {
	a, b := ad.a, ad.b
	if a.DType() != x.DType() {
		var err error
		if a, err = ad.a.Totype(x.DType(), false); err != nil {
			return nil, fmt.Errorf("lrlora: forward %q: cast A: %w", ad.name, err)
		}
		defer a.Drop()
		if b, err = ad.b.Totype(x.DType(), false); err != nil {
			return nil, fmt.Errorf("lrlora: forward %q: cast B: %w", ad.name, err)
		}
		defer b.Drop()
	}
	h, err := ad.linearNoBias(xa, a, "x·Aᵀ")
	if err != nil {
		return nil, err
	}
	if h, err = mulScalar(h, ad.scaling, true); err != nil { // s on the rank-r side: cheapest
		return nil, fmt.Errorf("lrlora: forward %q: s·x·Aᵀ: %w", ad.name, err)
	}
	defer h.Drop()
	u, err := ad.linearNoBias(h, b, "(x·Aᵀ)·Bᵀ")
	if err != nil {
		return nil, err
	}
	defer u.Drop()
	return ad.frozenPlus(x, u)
}

// forwardSplit is the unmerged path y = x·W0ᵀ + xa·ΔWᵀ + bias, where xa is the
// adapter's input (dropout(x) in training).
func (ad *Adapter) forwardSplit(x, xa *ts.Tensor) (*ts.Tensor, error) {
	dw, err := ad.deltaAs(ad.w0)
	if err != nil {
		return nil, err
	}
	defer dw.Drop()
	upd, err := ad.linearNoBias(xa, dw, "dropout(x)·ΔWᵀ")
	if err != nil {
		return nil, err
	}
	defer upd.Drop()
	return ad.frozenPlus(x, upd)
}

// frozenPlus is the frozen layer plus an update: x·W0ᵀ + bias + upd.
func (ad *Adapter) frozenPlus(x, upd *ts.Tensor) (*ts.Tensor, error) {
	bias, dropBias := ad.biasOrUndefined()
	defer dropBias()
	base, err := ts.Linear(x, ad.w0, bias)
	if err != nil {
		return nil, fmt.Errorf("lrlora: forward %q: x·W0ᵀ: %w", ad.name, err)
	}
	defer base.Drop()
	y, err := base.Add(upd, false)
	if err != nil {
		return nil, fmt.Errorf("lrlora: forward %q: %w", ad.name, err)
	}
	return y, nil
}

// linearNoBias is x·wᵀ; what names the product in an error.
func (ad *Adapter) linearNoBias(x, w *ts.Tensor, what string) (*ts.Tensor, error) {
	noBias := ts.NewTensor()
	defer noBias.Drop()
	y, err := ts.Linear(x, w, noBias)
	if err != nil {
		return nil, fmt.Errorf("lrlora: forward %q: %s: %w", ad.name, what, err)
	}
	return y, nil
}

// biasOrUndefined returns the bias, or an undefined tensor (torch::linear's "no
// bias") together with the function that frees it.
func (ad *Adapter) biasOrUndefined() (*ts.Tensor, func()) {
	if ad.bias != nil {
		return ad.bias, func() {}
	}
	u := ts.NewTensor()
	return u, func() { u.Drop() }
}

// deltaAs returns DeltaWeight, or the ΔW HoldDelta holds, cast to like's dtype
// (autograd flows through the cast).
func (ad *Adapter) deltaAs(like *ts.Tensor) (*ts.Tensor, error) {
	dw, err := ad.heldAs(false)
	if dw == nil && err == nil {
		dw, err = ad.DeltaWeight()
	}
	if err != nil {
		return nil, err
	}
	if dw.DType() == like.DType() {
		return dw, nil
	}
	out, err := dw.Totype(like.DType(), true)
	if err != nil {
		return nil, fmt.Errorf("lrlora: delta weight %q: cast to %v: %w", ad.name, like.DType(), err)
	}
	return out, nil
}
