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

// refVariant is v's φ for one element in float64: [x] + φ(x) − φ(0).
func (p phiParams) refVariant(v Variant, x float64) float64 {
	y := p.refPhi(x)
	if v.Centred() {
		y -= p.refPhi(0)
	}
	if v.Residual {
		y += x
	}
	return y
}

var variants = []Variant{{Center: true}, {Residual: true}, {Center: true, Residual: true}}

// Every gradient of each variant (M, a, β), fused and naive, against central
// differences of the independent float64 reference, with M entries on and next to
// grid points and exactly 0 (where φ(M) − φ(0) vanishes).
func TestVariantGradientsMatchFiniteDifferences(t *testing.T) {
	lockThread(t)
	impls := map[string]func(m, a, beta, g *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error){
		"fused": ApplyVariant, "naive": NaiveVariant}
	for _, v := range variants {
		for ci, c := range fdCases {
			for name, fn := range impls {
				t.Run(fmt.Sprintf("%v/%s/%v/K=%d", v, name, c.basis, c.K), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(11, uint64(ci)))
					p := randomParams(rng, c.K, c.L, c.basis, c.scale)
					rows, cols := 4, 9
					mv := gridHeavyM(rng, rows*cols, p.g, c.L)
					mv[3], mv[17] = 0, 0
					wv := make([]float64, rows*cols)
					for i := range wv {
						wv[i] = rng.Float64()*2 - 1
					}
					shape := []int64{int64(rows), int64(cols)}
					m := newTensor(t, mv, shape, gotch.Double, true)
					w := newTensor(t, wv, shape, gotch.Double, false)
					a, beta, g := p.tensors(t, gotch.Double)
					y, err := fn(m, a, beta, g, c.basis, c.scale, v)
					if err != nil {
						t.Fatal(err)
					}
					defer y.MustDrop()
					if err := weightedSum(t, y, w).Backward(); err != nil {
						t.Fatal(err)
					}
					for i, got := range values(y) {
						if want := p.refVariant(v, mv[i]); math.Abs(got-want) > 1e-13*(1+math.Abs(want)) {
							t.Errorf("φ(%.9g) = %.17g, want %.17g", mv[i], got, want)
						}
					}
					const h = 1e-6
					// libtorch's own sinc backward cancels near t = 0 (naive_test.go): 1e-9 there.
					relM := 1e-7
					if name == "naive" && c.basis == adapter.Sinc {
						relM = 1e-6
					}
					dm := gradValues(m)
					for i, x := range mv {
						fd := wv[i] * (p.refVariant(v, x+h) - p.refVariant(v, x-h)) / (2 * h)
						checkClose(t, fmt.Sprintf("dL/dM at M=%.9g", x), dm[i], fd, relM)
					}
					loss := func(q phiParams) float64 {
						var s float64
						for i, x := range mv {
							s += wv[i] * q.refVariant(v, x)
						}
						return s
					}
					da, dbeta := gradValues(a), gradValues(beta)
					for k := range p.a {
						checkClose(t, fmt.Sprintf("dL/da_%d", k), da[k], centralDiff(loss, p, p.a, k, h), 1e-7)
						checkClose(t, fmt.Sprintf("dL/dbeta_%d", k), dbeta[k], centralDiff(loss, p, p.beta, k, h), 1e-7)
					}
				})
			}
		}
	}
}

// With a = 0 the residual variant is LoRA exactly: φ(M) = M bit for bit and
// ∂L/∂M = G bit for bit (so B and A get LoRA's gradients), in both dtypes. ∂a is
// Σ G f(t) − f(t⁰)·Σ G, which is 0 where M = 0 (LoRA's step 0, B = 0) up to the
// rounding of the two sums, n·ε·Σ|G| (ε the dtype's unit roundoff).
func TestResidualAtZeroAmplitudeIsLoRA(t *testing.T) {
	lockThread(t)
	for _, dtype := range []gotch.DType{gotch.Double, gotch.Float} {
		for _, mZero := range []bool{false, true} {
			rng := rand.New(rand.NewPCG(5, 1))
			p := randomParams(rng, 50, 3, adapter.Sinc, 1)
			p.a = make([]float64, 50)
			n := 6 * 7
			mv, wv := make([]float64, n), make([]float64, n)
			for i := range mv {
				if !mZero {
					mv[i] = rng.NormFloat64()
				}
				wv[i] = rng.NormFloat64()
			}
			shape := []int64{6, 7}
			m := newTensor(t, mv, shape, dtype, true)
			w := newTensor(t, wv, shape, dtype, false)
			a, beta, g := p.tensors(t, dtype)
			y, err := ApplyVariant(m, a, beta, g, adapter.Sinc, 1, Variant{Residual: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := weightedSum(t, y, w).Backward(); err != nil {
				t.Fatal(err)
			}
			got, dm, mr, wr := values(y), gradValues(m), values(m), values(w)
			y.MustDrop()
			for i := range got {
				if got[i] != mr[i] || dm[i] != wr[i] {
					t.Fatalf("%v: entry %d: φ %v (M %v), ∂M %v (G %v): not LoRA's", dtype, i, got[i], mr[i], dm[i], wr[i])
				}
			}
			if mZero {
				eps := math.Pow(2, -52)
				if dtype == gotch.Float {
					eps = math.Pow(2, -23)
				}
				var sumG float64
				for _, x := range wr {
					sumG += math.Abs(x)
				}
				for k, d := range gradValues(a) {
					if math.Abs(d) > float64(n)*eps*sumG {
						t.Fatalf("%v: M = 0 but ∂a_%d = %v", dtype, k, d)
					}
				}
			}
		}
	}
}

// Centring removes φ(0) exactly: entries with M = 0 are exactly 0 in both dtypes (the
// kernel computes the offset with the same code on a one-element zero), and every
// entry is the plain φ minus the float64 φ(0) to rounding: in float32 a few ulps of
// Σ|a_k| (|φ| ≤ Σ|a_k| for sinc; the kernel's offset is itself a float32 sum of K
// terms, and its sin/cos polynomials are accurate to about 2^-24), 8·2^-24·Σ|a_k|.
func TestCenterRemovesTheOffset(t *testing.T) {
	lockThread(t)
	for _, dtype := range []gotch.DType{gotch.Double, gotch.Float} {
		rng := rand.New(rand.NewPCG(9, 2))
		p := randomParams(rng, 50, 3, adapter.Sinc, 1)
		n := 64 * 33
		mv := make([]float64, n)
		for i := range mv {
			if i%5 != 0 {
				mv[i] = 0.3 * rng.NormFloat64()
			}
		}
		m := newTensor(t, mv, []int64{64, 33}, dtype, false)
		a, beta, g := p.tensors(t, dtype)
		plain, err := Apply(m, a, beta, g, adapter.Sinc, 1)
		if err != nil {
			t.Fatal(err)
		}
		centred, err := ApplyVariant(m, a, beta, g, adapter.Sinc, 1, Variant{Center: true})
		if err != nil {
			t.Fatal(err)
		}
		pv, cv := values(plain), values(centred)
		plain.MustDrop()
		centred.MustDrop()
		var sumA float64
		for _, x := range p.a {
			sumA += math.Abs(x)
		}
		tol := 0.0
		if dtype == gotch.Float {
			tol = 8 * math.Pow(2, -24) * sumA
		}
		phi0 := p.refPhi(0)
		if math.Abs(phi0) < 0.1 {
			t.Fatalf("test needs a visible offset, φ(0) = %v", phi0)
		}
		for i := range cv {
			if mv[i] == 0 && cv[i] != 0 {
				t.Fatalf("%v: entry %d: centred φ(0) = %v, want exactly 0", dtype, i, cv[i])
			}
			if d := cv[i] - (pv[i] - phi0); math.Abs(d) > tol+4e-15*(1+math.Abs(pv[i])) {
				t.Fatalf("%v: entry %d: centred %v, plain − φ(0) %v", dtype, i, cv[i], pv[i]-phi0)
			}
		}
	}
}

// variantFn adapts a variant implementation to evaluate's signature.
func variantFn(fn func(m, a, beta, g *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error), v Variant) phiFunc {
	return func(m, a, beta, g *ts.Tensor, basis adapter.Basis, scale float64) (*ts.Tensor, error) {
		return fn(m, a, beta, g, basis, scale, v)
	}
}

// composedApply is the variants composed over the fused plain op (the pre-kernel
// ApplyVariant): the same plain sum and φ(0), then libtorch's subtract and add.
func composedApply(m, a, beta, g *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error) {
	return composeVariant(Apply, m, a, beta, g, basis, scale, v)
}

// The variants in the kernels against the composed references, on TestFusedMatchesNaive's
// inputs (a third of M on or next to grid points, some entries exactly 0), every basis:
//   - float64 against NaiveVariant in float64, to rounding as TestFusedMatchesNaive
//     (1e-12 of the largest entry; naive sinc ∂M 1e-9, libtorch's cancelling sinc').
//   - float32 against NaiveVariant in float64 (the truth) at 4e-6 of the largest entry,
//     TestFusedMatchesNaive's bound: rounding the inputs to 24 bits moves t by about
//     3·2^-24·|t|, a few 1e-7 of the O(1) values. The variants add f(t⁰)·Σ G to ∂a and
//     g·f'(t⁰)·Σ G to ∂β, with Σ G summed in float over blocks of 1024 (relative error
//     about 2^-24·√1024 of Σ|G|); measured ≤ 6e-7 of the largest entry for every field.
//   - float32 φ bit for bit against the composition over Apply: the same kernel gives
//     the plain sum and φ(0), and the fused op subtracts and adds in the same order.
func TestVariantsFusedMatchReference(t *testing.T) {
	lockThread(t)
	for bi, basis := range []adapter.Basis{adapter.Sinc, adapter.Gaussian, adapter.BSpline} {
		rng := rand.New(rand.NewPCG(13, uint64(bi)))
		const K, L = 20, 3.0
		scale := 1.0
		if basis == adapter.BSpline {
			scale = (K - 1) / (2 * L)
		}
		p := randomParams(rng, K, L, basis, scale)
		shape := []int64{33, 47}
		mv := gridHeavyM(rng, 33*47, p.g, L)
		for i := 5; i < len(mv); i += 97 {
			mv[i] = 0
		}
		wv := make([]float64, len(mv))
		for i := range wv {
			wv[i] = rng.NormFloat64()
		}
		for _, v := range variants {
			naive64 := evaluate(t, variantFn(NaiveVariant, v), mv, wv, shape, p, gotch.Double)
			t.Run(fmt.Sprintf("%v/%v/float64", v, basis), func(t *testing.T) {
				fused := evaluate(t, variantFn(ApplyVariant, v), mv, wv, shape, p, gotch.Double)
				relDM := 1e-12
				if basis == adapter.Sinc {
					relDM = 1e-9
				}
				compare(t, fused, naive64, 1e-12, relDM)
			})
			t.Run(fmt.Sprintf("%v/%v/float32", v, basis), func(t *testing.T) {
				fused := evaluate(t, variantFn(ApplyVariant, v), mv, wv, shape, p, gotch.Float)
				compare(t, fused, naive64, 4e-6, 4e-6)
				composed := evaluate(t, variantFn(composedApply, v), mv, wv, shape, p, gotch.Float)
				for i := range fused.y {
					if math.Float64bits(fused.y[i]) != math.Float64bits(composed.y[i]) {
						t.Fatalf("φ[%d] (M = %v): fused %v, composed over Apply %v", i, mv[i], fused.y[i], composed.y[i])
					}
				}
			})
		}
	}
}
