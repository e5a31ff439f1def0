package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// parityCase is one input set for the CUDA-vs-CPU comparison.
type parityCase struct {
	name  string
	basis adapter.Basis
	p     phiParams
	mv    []float64 // M
	wv    []float64 // ∂L/∂φ
	v     Variant   // φ's variant (the kernels' centred and residual flags)
}

// parityCases returns, for each basis: finite edges (0, ±tiny, exact grid
// points and their neighbours, large |x| beyond float32 sinc's 2^22 range
// limit), one case per non-finite input (NaN, +Inf, −Inf: each poisons the
// ∂a and ∂β sums, so each gets its own case), ±1e30, and K = 2048, where the
// float64 K-vectors (48 KiB) no longer fit the kernels' shared memory and are
// read from global memory instead. The variants' flags run on the finite edges
// (with M = 0 among them) and on the NaN case, centred and residual.
func parityCases() []parityCase {
	var out []parityCase
	for bi, basis := range []adapter.Basis{adapter.Sinc, adapter.Gaussian, adapter.BSpline} {
		rng := rand.New(rand.NewPCG(41, uint64(bi)))
		const K, L = 20, 3.0
		scale := 1.0
		if basis == adapter.BSpline {
			scale = (K - 1) / (2 * L)
		}
		p := randomParams(rng, K, L, basis, scale)
		regular := gridHeavyM(rng, 120, p.g, L)
		edges := []float64{0, 1e-30, -1e-30, 1e-8, -1e-8, p.g[0], p.g[K-1], p.g[7],
			p.g[7] + 1e-7, p.g[7] - 1e-7, p.g[12] + 1e-12, 1e3, -2.5e4, 3e7, -3e7}
		addV := func(name string, p phiParams, mv []float64, v Variant) {
			wv := make([]float64, len(mv))
			for i := range wv {
				wv[i] = rng.NormFloat64()
			}
			out = append(out, parityCase{name: fmt.Sprintf("%v/%s", basis, name), basis: basis, p: p, mv: mv, wv: wv, v: v})
		}
		add := func(name string, p phiParams, mv []float64) { addV(name, p, mv, Variant{}) }
		add("finite-edges", p, append(append([]float64{}, regular...), edges...))
		for _, e := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			add(fmt.Sprint(e), p, append(append([]float64{}, regular[:24]...), e, 0.25))
		}
		for _, v := range []Variant{{Center: true}, {Residual: true}} {
			addV(v.String()+"/finite-edges", p, append(append([]float64{}, regular...), edges...), v)
			addV(v.String()+"/NaN", p, append(append([]float64{}, regular[:24]...), math.NaN(), 0), v)
		}
		add("1e30", p, append(append([]float64{}, regular[:24]...), 1e30, -1e30))
		const bigK = 2048
		bigScale := 1.0
		if basis == adapter.BSpline {
			bigScale = (bigK - 1) / (2 * L)
		}
		big := randomParams(rng, bigK, L, basis, bigScale)
		add("K=2048", big, gridHeavyM(rng, 300, big.g, L))
	}
	return out
}

// evaluateOn runs Apply on device for one case and returns φ(M) and the
// gradients of L = Σ W ⊙ φ(M), copied back as float64.
func evaluateOn(t *testing.T, device gotch.Device, c parityCase, dtype gotch.DType) result {
	t.Helper()
	shape := []int64{int64(len(c.mv))}
	K := []int64{int64(len(c.p.a))}
	leaf := func(vals []float64, shape []int64, grad bool) *ts.Tensor {
		x := newTensor(t, vals, shape, dtype, false).MustTo(device, false)
		if grad {
			x = x.MustSetRequiresGrad(true, true)
		}
		t.Cleanup(func() { x.MustDrop() })
		return x
	}
	m, w := leaf(c.mv, shape, true), leaf(c.wv, shape, false)
	a, beta, g := leaf(c.p.a, K, true), leaf(c.p.beta, K, true), leaf(c.p.g, K, false)
	y, err := ApplyVariant(m, a, beta, g, c.basis, c.p.scale, c.v)
	if err != nil {
		t.Fatalf("Apply on %v: %v", device, err)
	}
	defer y.MustDrop()
	if err := weightedSum(t, y, w).Backward(); err != nil {
		t.Fatalf("backward on %v: %v", device, err)
	}
	return result{y: values(y), dm: gradValues(m), da: gradValues(a), dbeta: gradValues(beta)}
}

// The CUDA kernels give what the CPU kernels give: φ(M), ∂L/∂M, ∂L/∂a and
// ∂L/∂β for float32 and float64, every basis, the edge inputs of parityCases,
// NaN and ±Inf in the same places, finite values within the rounding bound of
// parity_tolerance_test.go; and a second CUDA run repeats the first bit for bit.
// Needs a binary built with -tags cuda (after make -C phiop cuda) and a GPU:
//
//	go test -tags cuda -run CUDA -v ./phiop/
func TestCUDAMatchesCPU(t *testing.T) {
	requireCUDA(t)
	lockThread(t)
	gpu := gotch.CudaBuilder(0)
	for _, c := range parityCases() {
		for _, dtype := range []gotch.DType{gotch.Float, gotch.Double} {
			t.Run(fmt.Sprintf("%s/%v", c.name, dtype), func(t *testing.T) {
				want := evaluateOn(t, gotch.CPU, c, dtype)
				got := evaluateOn(t, gpu, c, dtype)
				compareParity(t, got, want, tolerances(c.p, c.mv, c.wv, c.v, dtype, want))
				again := evaluateOn(t, gpu, c, dtype)
				for _, f := range []struct {
					name   string
					g1, g2 []float64
				}{{"phi", got.y, again.y}, {"dL/dM", got.dm, again.dm}, {"dL/da", got.da, again.da}, {"dL/dbeta", got.dbeta, again.dbeta}} {
					for i := range f.g1 {
						if math.Float64bits(f.g1[i]) != math.Float64bits(f.g2[i]) {
							t.Fatalf("CUDA %s[%d]: %.17g, then %.17g on a second run", f.name, i, f.g1[i], f.g2[i])
						}
					}
				}
			})
		}
	}
}

// The CPU edge behaviour that the CUDA kernels copy (phi_kernel.cu), pinned
// here so that a change on one side cannot go unnoticed: with K = 1, a = 1,
// b = 1, g = 0 and c = 1, φ = f, ∂L/∂M = f' and ∂L/∂β ∝ M·f'(M).
func TestCPUEdgeSemanticsThatCUDACopies(t *testing.T) {
	lockThread(t)
	nan, inf := math.NaN(), math.Inf(1)
	type want struct{ f, fp, ufp float64 } // ufp: the sign class of ∂L/∂β
	cases := []struct {
		basis adapter.Basis
		dtype gotch.DType
		x     float64
		want  want
	}{
		// float32 sinc evaluates |t| > 2^22 at 2^22: f ≈ 0, f' = ±2^-22, so x·f'(x) = ±Inf.
		{adapter.Sinc, gotch.Float, inf, want{0, 0x1p-22, inf}},
		{adapter.Sinc, gotch.Float, -inf, want{0, -0x1p-22, inf}},
		{adapter.Sinc, gotch.Float, 3e7, want{0, 0x1p-22, 3e7 * 0x1p-22}},
		// float64 sinc takes the limit at ±Inf: f = f' = 0, x·f' = Inf·0 = NaN.
		{adapter.Sinc, gotch.Double, inf, want{0, 0, nan}},
		{adapter.Sinc, gotch.Double, -inf, want{0, 0, nan}},
		{adapter.Gaussian, gotch.Float, inf, want{0, nan, nan}},
		{adapter.Gaussian, gotch.Double, -inf, want{0, nan, nan}},
		{adapter.BSpline, gotch.Float, inf, want{0, 0, nan}},
		{adapter.BSpline, gotch.Double, -inf, want{0, 0, nan}},
	}
	for _, basis := range []adapter.Basis{adapter.Sinc, adapter.Gaussian, adapter.BSpline} {
		for _, dtype := range []gotch.DType{gotch.Float, gotch.Double} {
			cases = append(cases, struct {
				basis adapter.Basis
				dtype gotch.DType
				x     float64
				want  want
			}{basis, dtype, nan, want{nan, nan, nan}})
		}
	}
	p := phiParams{a: []float64{1}, beta: []float64{betaForB(1)}, g: []float64{0}, scale: 1}
	for _, c := range cases {
		p.basis = c.basis
		r := evaluateOn(t, gotch.CPU, parityCase{basis: c.basis, p: p, mv: []float64{c.x}, wv: []float64{1}}, c.dtype)
		sig := paritySigmoid(p.beta[0])
		got := want{r.y[0], r.dm[0], r.dbeta[0] / sig}
		ok := func(g, w float64) bool {
			if math.IsNaN(w) || math.IsInf(w, 0) {
				return math.IsNaN(g) == math.IsNaN(w) && (math.IsNaN(w) || g == w)
			}
			return math.Abs(g-w) <= 1e-6*math.Abs(w)+1e-30
		}
		if !ok(got.f, c.want.f) || !ok(got.fp, c.want.fp) || !ok(got.ufp, c.want.ufp) {
			t.Errorf("%v/%v at x=%v: f, f', x·f' = %v, %v, %v; want %v, %v, %v",
				c.basis, c.dtype, c.x, got.f, got.fp, got.ufp, c.want.f, c.want.fp, c.want.ufp)
		}
	}
}
