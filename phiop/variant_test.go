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

// Centring removes φ(0) exactly: entries with M = 0 are exactly 0 in float64 (the
// kernel evaluates φ(0) the same way for them and for the offset), and every entry is
// the plain φ minus the plain φ at 0 to rounding. float32 goes through vectorised
// sin/cos for the matrix and the scalar tail for the one-element φ(0), so there the
// bound is a few float32 ulps of Σ|a_k| (|φ| ≤ Σ|a_k| for sinc): 8·2^-24·Σ|a_k|.
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
			if mv[i] == 0 && math.Abs(cv[i]) > tol {
				t.Fatalf("%v: centred φ(0) = %v, want 0 (±%g)", dtype, cv[i], tol)
			}
			if d := cv[i] - (pv[i] - phi0); math.Abs(d) > tol+4e-15*(1+math.Abs(pv[i])) {
				t.Fatalf("%v: entry %d: centred %v, plain − φ(0) %v", dtype, i, cv[i], pv[i]-phi0)
			}
		}
	}
}
