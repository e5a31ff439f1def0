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
)

// RMSNorm returns Llama's RMSNorm of x over its last dimension,
//
//	y = w ⊙ cast(x₃₂ · rsqrt(mean(x₃₂²) + ε)),   x₃₂ = x in float32 (float64 for float64),
//
// the cast back to x's dtype, as one autograd node. Composed op by op (square, mean,
// rsqrt, two products and the casts) the forward's values are the same bits, but
// autograd keeps, for x in bfloat16 or float16, x₃₂ (a float32 copy) for the product
// with the rsqrt, and with libtorch 1.13 also the normalised x₃₂·rsqrt(…) for the
// weight's product (2.x skips it when the weight is frozen). This node keeps x and the
// per-row rsqrt, and its backward recomputes the rest: with n = x₃₂·rsqrt(…) and G the
// gradient reaching n,
//
//	∂x = rsqrt(…) · (G − n · mean(G ⊙ n)),   ∂w = Σ_rows g ⊙ cast(n).
//
// w is 1-D, x's last dimension long, on x's device. Gradients reach x and w as far as
// they require them.
func RMSNorm(x, w *ts.Tensor, eps float64) (*ts.Tensor, error) {
	if err := nonNil([]string{"x", "weight"}, x, w); err != nil {
		return nil, err
	}
	var out unsafe.Pointer
	msg := C.phiop_rms_norm(x.Ctensor(), w.Ctensor(), C.double(eps), &out)
	runtime.KeepAlive(x) // gotch frees C objects in finalizers
	runtime.KeepAlive(w)
	if err := takeError(msg); err != nil {
		return nil, fmt.Errorf("phiop: rms norm: %w", err)
	}
	return ts.FromCtensor(out), nil
}

// SwiGLU returns silu(gate) ⊙ up, the gated product of a SwiGLU feed-forward block,
// as one autograd node. Composed of the two ops, autograd keeps gate (for silu's
// backward), silu(gate) and up (for the product's); this node keeps gate and up, and
// its backward recomputes silu(gate) and then runs the composed ops' own backward
// (∂up = g ⊙ silu(gate), ∂gate = silu′(gate) ⊙ g ⊙ up): the same values, bit for bit,
// one tensor of gate's size fewer held until backward. gate and up share shape,
// float dtype and device.
func SwiGLU(gate, up *ts.Tensor) (*ts.Tensor, error) {
	if err := nonNil([]string{"gate", "up"}, gate, up); err != nil {
		return nil, err
	}
	var out unsafe.Pointer
	msg := C.phiop_swiglu(gate.Ctensor(), up.Ctensor(), &out)
	runtime.KeepAlive(gate)
	runtime.KeepAlive(up)
	if err := takeError(msg); err != nil {
		return nil, fmt.Errorf("phiop: swiglu: %w", err)
	}
	return ts.FromCtensor(out), nil
}
