package phiop_test

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"
	"runtime"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/phiop"
)

// Run: go test ./phiop/ -run Example
func Example() {
	runtime.LockOSThread() // libtorch's grad mode is per OS thread
	defer runtime.UnlockOSThread()

	m := ts.MustOfSlice([]float64{-1, 0, 0.5, 2})
	m = m.MustSetRequiresGrad(true, true)
	amplitude := ts.MustOfSlice([]float64{0.5, 1, -0.25})
	amplitude = amplitude.MustSetRequiresGrad(true, true)
	bandwidthRaw := ts.MustOfSlice([]float64{0.5413248546129181, 0.5413248546129181, 0.5413248546129181}) // b = 1
	bandwidthRaw = bandwidthRaw.MustSetRequiresGrad(true, true)
	grid := ts.MustOfSlice([]float64{-1, 0, 1})

	phi, err := phiop.Apply(m, amplitude, bandwidthRaw, grid, adapter.Sinc, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	loss := phi.MustSum(phi.DType(), false)
	if err := loss.Backward(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("phi    %.4f\n", phi.Float64Values())
	fmt.Printf("dL/da  %.4f\n", amplitude.MustGrad(false).Float64Values())

	for _, t := range []*ts.Tensor{m, amplitude, bandwidthRaw, grid, phi, loss} {
		t.MustDrop()
	}
	// Output:
	// phi    [0.5000 1.0000 0.3714 0.0000]
	// dL/da  [0.7878 1.6366 0.6366]
}

// LeanLinear is a whole LR-LoRA layer, y = x·(W0 + φ(B·A))ᵀ, that keeps neither B·A
// nor W0 + ΔW for backward. Here W0 = 0 and B·A has the entries -1, 0, 0.5, 2 of the
// package example, so y's entries are sums of that example's φ values.
//
// Run: go test ./phiop/ -run ExampleLeanLinear
func ExampleLeanLinear() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	x := ts.MustOfSlice([]float64{1, 1}).MustReshape([]int64{1, 2}, true)        // one token, d_in = 2
	w0 := ts.MustOfSlice([]float64{0, 0, 0, 0}).MustReshape([]int64{2, 2}, true) // frozen
	b := ts.MustOfSlice([]float64{1, 2}).MustReshape([]int64{2, 1}, true)        // d_out×r, r = 1
	b = b.MustSetRequiresGrad(true, true)
	a := ts.MustOfSlice([]float64{-1, 0.25}).MustReshape([]int64{1, 2}, true) // r×d_in
	a = a.MustSetRequiresGrad(true, true)
	amplitude := ts.MustOfSlice([]float64{0.5, 1, -0.25})
	bandwidthRaw := ts.MustOfSlice([]float64{0.5413248546129181, 0.5413248546129181, 0.5413248546129181})
	grid := ts.MustOfSlice([]float64{-1, 0, 1})

	// B·A = [[-1, 0.25], [-2, 0.5]]; y_j = φ(M_j1) + φ(M_j2) with
	// φ(x) = 0.5·sinc(x + 1) + sinc(x) − 0.25·sinc(x − 1): φ(−1) = 0.5, φ(−2) = 0,
	// φ(0.5) = 0.3714 and φ(0.25) = −0.0900 + 0.9003 − 0.0750 = 0.7353.
	y, err := phiop.LeanLinear(x, w0, nil, b, a, amplitude, bandwidthRaw, grid, adapter.Sinc, 1, phiop.Variant{}, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	loss := y.MustSum(y.DType(), false)
	if err := loss.Backward(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("y      %.4f\n", y.Float64Values())
	fmt.Printf("dL/dB  %.4f\n", b.MustGrad(false).Float64Values())

	for _, t := range []*ts.Tensor{x, w0, b, a, amplitude, bandwidthRaw, grid, y, loss} {
		t.MustDrop()
	}
	// Output:
	// y      [1.2353 0.3714]
	// dL/dB  [-1.4548 -0.2969]
}

// Backward from two outputs at once, each with its own upstream gradient:
// y1 = 2x with gradient (1, 1) and y2 = x² with gradient (3, 0) give
// ∂/∂x = 2·(1, 1) + 2x·(3, 0).
func ExampleBackward() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := ts.MustOfSlice([]float64{1, 5}).MustSetRequiresGrad(true, true)
	defer x.MustDrop()
	y1 := x.MustMulScalar(ts.FloatScalar(2), false)
	defer y1.MustDrop()
	y2 := x.MustMul(x, false)
	defer y2.MustDrop()
	g1, g2 := ts.MustOfSlice([]float64{1, 1}), ts.MustOfSlice([]float64{3, 0})
	defer g1.MustDrop()
	defer g2.MustDrop()
	if err := phiop.Backward([]*ts.Tensor{y1, y2}, []*ts.Tensor{g1, g2}); err != nil {
		fmt.Println(err)
		return
	}
	g := x.MustGrad(false)
	defer g.MustDrop()
	fmt.Println(g.Float64Values())
	// Output: [8 2]
}

// RMSNorm and SwiGLU are a decoder block's norm and gated product as one autograd node
// each. One row x = (3, 4): mean(x²) = 12.5, so with ε = 0 the row is divided by
// √12.5 = 3.5355 and scaled by w = (1, 2). silu(g)·u for g = (0, 1), u = (5, 2):
// silu(0) = 0 and silu(1) = 1/(1 + e⁻¹) = 0.7311.
//
// Run: go test ./phiop/ -run ExampleRMSNorm
func ExampleRMSNorm() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := ts.MustOfSlice([]float64{3, 4}).MustReshape([]int64{1, 2}, true)
	defer x.MustDrop()
	w := ts.MustOfSlice([]float64{1, 2})
	defer w.MustDrop()
	y, err := phiop.RMSNorm(x, w, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer y.MustDrop()
	g, u := ts.MustOfSlice([]float64{0, 1}), ts.MustOfSlice([]float64{5, 2})
	defer g.MustDrop()
	defer u.MustDrop()
	s, err := phiop.SwiGLU(g, u)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.MustDrop()
	fmt.Printf("rms norm %.4f\n", y.Float64Values())
	fmt.Printf("swiglu   %.4f\n", s.Float64Values())
	// Output:
	// rms norm [0.8485 2.2627]
	// swiglu   [0.0000 1.4621]
}
