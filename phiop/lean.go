package phiop

/*
#include "phiop.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
)

// LeanLinear returns an LR-LoRA layer's output
//
//	y = x·W_effᵀ + bias,   W_eff = W0 + cast(α·φ_v(B·A))
//
// as one autograd node that keeps no d_out×d_in tensor for backward. Composed op by op
// (ApplyVariant on B·A, a cast, W0 + ΔW, a linear), autograd keeps two per layer: M =
// B·A for φ's backward and W_eff for the product's. This node keeps x, W0, B, A and
// the K-vectors, and its backward recomputes M and W_eff before the same gradient
// products: ∂W_eff = Gᵀ·x, φ's fused backward on (M, α·∂W_eff), ∂B = ∂M·Aᵀ,
// ∂A = Bᵀ·∂M, ∂x = G·W_eff. φ(M) for W_eff comes out of φ's backward pass where the
// K-term kernels run (they evaluate every term anyway); the tabulated path and CUDA
// run φ's forward for it. It costs one B·A and one W0 + ΔW more per layer and step,
// plus that forward where it runs.
//
// x is …×d_in in W0's dtype; W0 (d_out×d_in) must not require grad; bias is nil or
// d_out; B (d_out×r), A (r×d_in) and the K-vectors share one float dtype and W0's
// device; ΔW is cast to W0's dtype, as lrlora does. α scales φ's output (1 when the
// layer's scaling rides on the amplitudes). Gradients reach x, bias, B, A, amplitude
// and bandwidthRaw as far as they require them.
func LeanLinear(x, w0, bias, b, a, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant, alpha float64) (*ts.Tensor, error) {
	if err := validate(b, amplitude, bandwidthRaw, grid, basis, scale); err != nil {
		return nil, err
	}
	if err := nonNil([]string{"x", "W0", "A"}, x, w0, a); err != nil {
		return nil, err
	}
	var cbias unsafe.Pointer
	if bias != nil {
		cbias = unsafe.Pointer(bias.Ctensor())
	}
	var out unsafe.Pointer
	msg := C.phiop_lean_linear(x.Ctensor(), w0.Ctensor(), cbias, b.Ctensor(), a.Ctensor(),
		amplitude.Ctensor(), bandwidthRaw.Ctensor(), grid.Ctensor(), C.int(basisCodes[basis]),
		C.double(scale), cFlag(v.Centred()), cFlag(v.Residual), C.double(alpha), &out)
	for _, t := range []*ts.Tensor{x, w0, bias, b, a, amplitude, bandwidthRaw, grid} {
		runtime.KeepAlive(t) // gotch frees C objects in finalizers
	}
	if err := takeError(msg); err != nil {
		return nil, fmt.Errorf("phiop: lean linear (%v): %w", v, err)
	}
	return ts.FromCtensor(out), nil
}

// LeanDelta returns an LR-LoRA layer's merged weight
//
//	W_eff = W0 + cast(α·φ_v(B·A))   (w0 given)
//	ΔW    = α·φ_v(B·A)              (w0 nil; in B's dtype)
//
// as one autograd node that keeps B, A and the K-vectors for backward, not M = B·A:
// backward recomputes the rank-r product, then runs φ's fused backward on (M, α·G)
// (G cast to B's dtype first) and ∂B = ∂M·Aᵀ, ∂A = Bᵀ·∂M. Composed op by op
// (ApplyVariant on B·A, a scale, a cast, W0 + ΔW) the values are the same calls on the
// same inputs, and φ's node keeps M, a d_out×d_in tensor, until backward: this is
// what lrlora holds for a whole optimizer step (Adapter.HoldDelta), where that is one
// d_out×d_in tensor per layer besides the held weight and its gradient.
//
// W0 (d_out×d_in) must not require grad; B (d_out×r), A (r×d_in) and the K-vectors
// share one float dtype and W0's device. Gradients reach B, A, amplitude and
// bandwidthRaw as far as they require them.
func LeanDelta(w0, b, a, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant, alpha float64) (*ts.Tensor, error) {
	return LeanDeltaInto(nil, w0, b, a, amplitude, bandwidthRaw, grid, basis, scale, v, alpha)
}

// LeanDeltaInto is LeanDelta with the weight's values written into into (a contiguous
// tensor of its d_out·d_in elements, dtype and device, not requiring grad; nil: none)
// and the node's output a tensor over into's memory, which keeps into's storage
// alive: no second copy of the weight exists. Data-parallel ranks that exchange the
// merged weights in one flat buffer (model.split_delta) hold them so. into must not
// change before the output's backward has run (the node does not read it; the caller's
// own uses of the weight do).
func LeanDeltaInto(into, w0, b, a, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant, alpha float64) (*ts.Tensor, error) {
	if err := validate(b, amplitude, bandwidthRaw, grid, basis, scale); err != nil {
		return nil, err
	}
	if err := nonNil([]string{"A"}, a); err != nil {
		return nil, err
	}
	var cw0, cinto unsafe.Pointer
	if w0 != nil {
		cw0 = unsafe.Pointer(w0.Ctensor())
	}
	if into != nil {
		cinto = unsafe.Pointer(into.Ctensor())
	}
	var out unsafe.Pointer
	msg := C.phiop_lean_delta(cw0, b.Ctensor(), a.Ctensor(), amplitude.Ctensor(), bandwidthRaw.Ctensor(),
		grid.Ctensor(), cinto, C.int(basisCodes[basis]), C.double(scale), cFlag(v.Centred()), cFlag(v.Residual),
		C.double(alpha), &out)
	for _, t := range []*ts.Tensor{into, w0, b, a, amplitude, bandwidthRaw, grid} {
		runtime.KeepAlive(t)
	}
	if err := takeError(msg); err != nil {
		return nil, fmt.Errorf("phiop: lean delta (%v): %w", v, err)
	}
	return ts.FromCtensor(out), nil
}
