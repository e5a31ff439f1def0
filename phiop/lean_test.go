package phiop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
)

// leanCase is one adapted layer: x (2×3×din), W0, bias, B, A, the K-vectors and the
// upstream weights of L = Σ w ⊙ y.
type leanCase struct {
	din, dout, r int
	x, w0, bias  []float64
	b, a, w      []float64
	p            phiParams
}

func newLeanCase(seed uint64, basis adapter.Basis) leanCase {
	rng := rand.New(rand.NewPCG(seed, 3))
	c := leanCase{din: 12, dout: 10, r: 3}
	draw := func(n int, std float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = std * rng.NormFloat64()
		}
		return v
	}
	c.x = draw(6*c.din, 1)
	c.w0 = draw(c.dout*c.din, 0.3)
	c.bias = draw(c.dout, 0.1)
	c.b = draw(c.dout*c.r, 0.8)
	c.a = draw(c.r*c.din, 0.8)
	c.w = draw(6*c.dout, 1)
	c.p = randomParams(rng, 7, 2, basis, 1.1)
	return c
}

// leanLeaves are the case's tensors: x, B, A, a, β and the bias require grad.
type leanLeaves struct{ x, w0, bias, b, a, amp, beta, grid, w *ts.Tensor }

func (c leanCase) leaves(t *testing.T, dtype gotch.DType, withBias bool) leanLeaves {
	return c.leavesOn(t, gotch.CPU, dtype, withBias)
}

// leavesOn is leaves on device dev.
func (c leanCase) leavesOn(t *testing.T, dev gotch.Device, dtype gotch.DType, withBias bool) leanLeaves {
	leaf := func(vals []float64, shape []int64, grad bool) *ts.Tensor {
		x := newTensor(t, vals, shape, dtype, false).MustTo(dev, false)
		if grad {
			x = x.MustSetRequiresGrad(true, true)
		}
		t.Cleanup(func() { x.MustDrop() })
		return x
	}
	var l leanLeaves
	l.x = leaf(c.x, []int64{2, 3, int64(c.din)}, true)
	l.w0 = leaf(c.w0, []int64{int64(c.dout), int64(c.din)}, false)
	if withBias {
		l.bias = leaf(c.bias, []int64{int64(c.dout)}, true)
	}
	l.b = leaf(c.b, []int64{int64(c.dout), int64(c.r)}, true)
	l.a = leaf(c.a, []int64{int64(c.r), int64(c.din)}, true)
	K := []int64{int64(len(c.p.a))}
	l.amp, l.beta, l.grid = leaf(c.p.a, K, true), leaf(c.p.beta, K, true), leaf(c.p.g, K, false)
	l.w = leaf(c.w, []int64{2, 3, int64(c.dout)}, false)
	return l
}

// composedLinear is lrlora's default path: φ_v(B·A), α·, W0 + ΔW, a linear.
func composedLinear(t *testing.T, l leanLeaves, basis adapter.Basis, scale float64, v Variant, alpha float64) *ts.Tensor {
	m := l.b.MustMm(l.a, false)
	phi, err := ApplyVariant(m, l.amp, l.beta, l.grid, basis, scale, v)
	m.MustDrop()
	if err != nil {
		t.Fatal(err)
	}
	if alpha != 1 {
		phi = phi.MustMulScalar(ts.FloatScalar(alpha), true)
	}
	weff := l.w0.MustAdd(phi, false)
	phi.MustDrop()
	bias := l.bias
	if bias == nil {
		bias = ts.NewTensor()
		defer bias.MustDrop()
	}
	y := ts.MustLinear(l.x, weff, bias)
	weff.MustDrop()
	return y
}

// run returns y and the gradients of x, B, A, a, β (and the bias) of L = Σ w ⊙ y.
func (l leanLeaves) run(t *testing.T, y *ts.Tensor) [][]float64 {
	loss := weightedSum(t, y, l.w)
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	out := [][]float64{values(y)}
	for _, p := range []*ts.Tensor{l.x, l.b, l.a, l.amp, l.beta, l.bias} {
		if p != nil {
			out = append(out, gradValues(p))
		}
	}
	y.MustDrop()
	return out
}

// LeanLinear computes the composed layer's output and gradients. y is the same
// calls on the same inputs (bit-identical). The gradients may sum the same products
// in another order: the composed path's ∂W_eff is linear's (xᵀ·G)ᵀ where the node
// computes Gᵀ·x, and ∂x runs through another matmul entry, so a GEMM may block
// its sums differently. With at most 6 tokens per ∂W_eff entry and K = 7 terms, that
// moves each result by a few units of the dtype's rounding of its largest term;
// 64 ulps of the gradient's scale covers it and catches any wrong term.
func TestLeanLinearMatchesComposed(t *testing.T) {
	lockThread(t)
	for _, dtype := range []gotch.DType{gotch.Double, gotch.Float} {
		ulp := 2 * unitRoundoff(dtype) // the spacing of floats at 1: 2⁻²³, 2⁻⁵²
		for _, basis := range []adapter.Basis{adapter.Sinc, adapter.Gaussian, adapter.BSpline} {
			for _, v := range []Variant{{}, {Center: true}, {Residual: true}} {
				for _, alpha := range []float64{1, 0.7} {
					withBias := alpha == 1
					name := fmt.Sprintf("%v/%s/%v/alpha=%v", dtype, basis, v, alpha)
					t.Run(name, func(t *testing.T) {
						c := newLeanCase(uint64(len(name)), basis)
						compareLean(t, c, gotch.CPU, dtype, withBias, basis, v, alpha, ulp)
					})
				}
			}
		}
	}
}

// Between forward and backward the composed layer keeps M and W_eff (two d_out×d_in
// tensors) and the lean node keeps neither: measured as the caching allocator's
// in-use bytes (it counts every block of 64 KiB or more; a 1024² float32 tensor is
// 4 MiB, the layer's other tensors are below 64 KiB). After backward and the drops,
// both return to the start.
func TestLeanLinearKeepsNoWeightSizedTensor(t *testing.T) {
	lockThread(t)
	withCache(t, 256*mib)
	c := bigLeanCase(7)
	p := c.p
	kept := func(lean bool) int64 {
		l := c.leaves(t, gotch.Float, false)
		before := CachingAllocatorStats().InUseBytes
		var y *ts.Tensor
		var err error
		if lean {
			y, err = LeanLinear(l.x, l.w0, nil, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, p.scale, Variant{}, 1)
		} else {
			y = composedLinear(t, l, adapter.Sinc, p.scale, Variant{}, 1)
		}
		if err != nil {
			t.Fatal(err)
		}
		held := CachingAllocatorStats().InUseBytes - before
		l.run(t, y) // backward, then y dropped
		if after := CachingAllocatorStats().InUseBytes; after != before {
			t.Errorf("lean=%v: in use %d bytes after backward, want %d as before forward", lean, after, before)
		}
		return held
	}
	const block = bigSide * bigSide * 4 // float32
	if held := kept(false); held < 2*block {
		t.Fatalf("composed layer holds %d bytes between forward and backward, want ≥ %d (M and W_eff): the measurement does not see them", held, 2*block)
	}
	if held := kept(true); held != 0 {
		t.Errorf("lean node holds %d bytes in blocks ≥ 64 KiB between forward and backward, want 0", held)
	}
}

// bigSide is bigLeanCase's d_in = d_out: its d_out×d_in float32 tensors (4 MiB) are
// blocks the caching allocator counts, and its other tensors are below 64 KiB.
const bigSide = 1024

// bigLeanCase is a layer of bigSide² with rank 4, for measuring what a node keeps.
func bigLeanCase(seed uint64) leanCase {
	const r = 4
	rng := rand.New(rand.NewPCG(seed, seed))
	draw := func(n int, std float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = std * rng.NormFloat64()
		}
		return v
	}
	c := leanCase{din: bigSide, dout: bigSide, r: r, p: randomParams(rng, 5, 2, adapter.Sinc, 1)}
	c.x, c.w0, c.b, c.a = draw(6*bigSide, 1), draw(bigSide*bigSide, 0.03), draw(bigSide*r, 0.5), draw(r*bigSide, 0.5)
	c.w = draw(6*bigSide, 1)
	return c
}

// refusal is a call that must fail with an error mentioning want.
type refusal struct {
	name, want string
	call       func() (*ts.Tensor, error)
}

// checkRefusals runs each call: it must fail, naming what is wrong.
func checkRefusals(t *testing.T, cases []refusal) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			y, err := tc.call()
			if err == nil {
				y.MustDrop()
				t.Fatalf("no error, want one mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// compareLean checks LeanLinear against the composed layer on dev: y bit-identical,
// every gradient within 64 ulps of its scale (TestLeanLinearMatchesComposed says why).
func compareLean(t *testing.T, c leanCase, dev gotch.Device, dtype gotch.DType, withBias bool, basis adapter.Basis, v Variant, alpha, ulp float64) {
	ref := c.leavesOn(t, dev, dtype, withBias)
	want := ref.run(t, composedLinear(t, ref, basis, c.p.scale, v, alpha))
	l := c.leavesOn(t, dev, dtype, withBias)
	y, err := LeanLinear(l.x, l.w0, l.bias, l.b, l.a, l.amp, l.beta, l.grid, basis, c.p.scale, v, alpha)
	if err != nil {
		t.Fatal(err)
	}
	got := l.run(t, y)
	names := []string{"y", "∂x", "∂B", "∂A", "∂a", "∂β", "∂bias"}
	for i := range want {
		diff, scale := maxAbsDiff(t, got[i], want[i])
		tol := 64 * ulp * scale
		if i == 0 {
			tol = 0
		}
		if diff > tol || math.IsNaN(diff) {
			t.Errorf("%s: max |lean − composed| %.3g, scale %.3g, tolerance %.3g", names[i], diff, scale, tol)
		}
	}
}

// On a GPU the node runs the same libtorch products and the CUDA φ kernels:
// compared with the composed layer there, as on the CPU. Needs a binary built with
// -tags cuda (after make -C phiop cuda) and a GPU: go test -tags cuda -run CUDA ./phiop/
func TestLeanLinearCUDAMatchesComposed(t *testing.T) {
	requireCUDA(t)
	lockThread(t)
	for _, dtype := range []gotch.DType{gotch.Double, gotch.Float} {
		ulp := 2 * unitRoundoff(dtype) // the spacing of floats at 1: 2⁻²³, 2⁻⁵²
		for _, v := range []Variant{{}, {Center: true}, {Residual: true}} {
			t.Run(fmt.Sprintf("%v/%v", dtype, v), func(t *testing.T) {
				c := newLeanCase(11, adapter.Sinc)
				compareLean(t, c, gotch.CudaBuilder(0), dtype, true, adapter.Sinc, v, 1, ulp)
			})
		}
	}
}

// Bad inputs are refused with a message naming what is wrong, and nothing is made.
func TestLeanLinearRefusesBadInputs(t *testing.T) {
	lockThread(t)
	c := newLeanCase(5, adapter.Sinc)
	l := c.leaves(t, gotch.Float, false)
	checkRefusals(t, []refusal{
		{"W0 requires grad", "W0 must be frozen", func() (*ts.Tensor, error) {
			w := l.w0.MustDetach(false).MustSetRequiresGrad(true, true)
			defer w.MustDrop()
			return LeanLinear(l.x, w, nil, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, 1, Variant{}, 1)
		}},
		{"B·A does not match W0", "does not match W0", func() (*ts.Tensor, error) {
			return LeanLinear(l.x, l.w0, nil, l.a, l.b, l.amp, l.beta, l.grid, adapter.Sinc, 1, Variant{}, 1)
		}},
		{"x's last dimension", "does not end in d_in", func() (*ts.Tensor, error) {
			return LeanLinear(l.w, l.w0, nil, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, 1, Variant{}, 1)
		}},
		{"nil A", ErrNilTensor.Error() + ": A", func() (*ts.Tensor, error) {
			return LeanLinear(l.x, l.w0, nil, l.b, nil, l.amp, l.beta, l.grid, adapter.Sinc, 1, Variant{}, 1)
		}},
		{"scale", "scale", func() (*ts.Tensor, error) {
			return LeanLinear(l.x, l.w0, nil, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, -1, Variant{}, 1)
		}},
	})
}
