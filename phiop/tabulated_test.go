package phiop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
)

// tabulatedCase is an M large enough for the tabulated float32 sinc path: 512×512
// values, a tenth exactly 0, a fifth on or within 1e-6..1e-3 of a grid point, the
// rest uniform on [−2.5, 2.5]; upstream gradients in [0.5, 1.5]; K = 50 terms with s_k ∈ [0.3, 1.3] and |a_k| ≤ 1.2.
// Its table needs about 900 intervals of ~0.0055, far cheaper than 262,144 × 50
// terms; the same M at 1551 elements (TestFusedMatchesNaive) stays on the K-term
// kernel.
func tabulatedCase(seed uint64) (p phiParams, mv, wv []float64, shape []int64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	const K, L = 50, 2.0
	p = randomParams(rng, K, L, adapter.Sinc, 1)
	for k := range p.beta {
		p.beta[k] = betaForB(0.3 + rng.Float64())
	}
	shape = []int64{512, 512}
	n := 512 * 512
	near := gridHeavyM(rng, n, p.g, L)
	mv = make([]float64, n)
	wv = make([]float64, n)
	for i := range mv {
		switch {
		case i%10 == 0:
			mv[i] = 0
		case i%5 == 1:
			mv[i] = near[i&^3|1] // on or next to a grid point
		default:
			mv[i] = -2.5 + 5*rng.Float64()
		}
		wv[i] = 0.5 + rng.Float64() // one sign: ∂a and ∂β are O(n), their errors do not cancel
	}
	return p, mv, wv, shape
}

// referenceResult is φ_v(M) and the gradients of L = Σ W ⊙ φ_v(M) in float64 from
// the closed forms (refBasis), element by element in Go: independent of the
// kernels. The inputs are first rounded to float32, as the float32 op sees them.
func referenceResult(p phiParams, mv, wv []float64, v Variant) result {
	K := len(p.a)
	r := result{y: make([]float64, len(mv)), dm: make([]float64, len(mv)), da: make([]float64, K), dbeta: make([]float64, K)}
	f32 := func(x float64) float64 { return float64(float32(x)) }
	a, beta, g, s := make([]float64, K), make([]float64, K), make([]float64, K), make([]float64, K)
	for k := range K {
		a[k], beta[k], g[k] = f32(p.a[k]), f32(p.beta[k]), f32(p.g[k])
		s[k] = p.scale * softplus(beta[k])
	}
	var phi0 float64
	if v.Centred() {
		for k := range K {
			f, _ := refBasis(p.basis, s[k]*(0-g[k]))
			phi0 += a[k] * f
		}
	}
	du := make([]float64, K)
	for i := range mv {
		x, w := f32(mv[i]), f32(wv[i])
		var y, dy float64
		if v.Residual {
			y, dy = x, 1
		}
		for k := range K {
			f, fp := refBasis(p.basis, s[k]*(x-g[k]))
			y += a[k] * f
			dy += a[k] * s[k] * fp
			r.da[k] += w * f
			du[k] += w * (x - g[k]) * fp
		}
		r.y[i], r.dm[i] = y-phi0, w*dy
	}
	var sumW float64
	for i := range wv {
		sumW += f32(wv[i])
	}
	for k := range K {
		if v.Centred() {
			f0, fp0 := refBasis(p.basis, -s[k]*g[k])
			r.da[k] -= f0 * sumW
			du[k] += g[k] * fp0 * sumW
		}
		r.dbeta[k] = a[k] * p.scale * du[k] / (1 + math.Exp(-beta[k]))
	}
	return r
}

// The tabulated path (taken: TabulatedCalls counts its forward and backward) and
// the K-term kernel (SetTabulated(false)) both match the float64 closed forms on
// tabulatedCase, each output within a bound from float32's unit roundoff u = 2^-24:
//   - φ: the float32 inputs are exact in the reference, so what is left is the
//     evaluation: K terms summed in float (≈ K·u·Σ|a_k| worst case, a few u seen)
//     or the table (≤ 2^-26·Σ|a_k| by its spacing, plus the cubic's rounding);
//     allowed 32·u·Σ|a_k| (φ(0) is a second such value in the centred variants)
//     plus 4·u·|φ| for the last rounding.
//   - ∂M: per element |G_i| times the same for φ' (scale Σ|a_k s_k|): 16·u.
//   - ∂a: a sum over 262,144 elements of one sign. The K-term kernel sums blocks of
//     1024 in float, then double: ≤ (1024 + 24)·u·Σ|G| (the CUDA parity bound's
//     form). The table spreads in double and interpolates within 2^-26·Σ|G|: 4·u·Σ|G|.
//   - ∂β: a_k·c·σ(β_k) times ∂u_k, whose terms are bounded by 2/s_k, plus the
//     centred variants' g_k·f'(t⁰)·Σ G: the same factors times 2/s_k + 2|g_k|.
//
// Each output's error is also printed, tabulated beside K-term.
func TestTabulatedMatchesClosedForms(t *testing.T) {
	lockThread(t)
	p, mv, wv, shape := tabulatedCase(1)
	const u = 0x1p-24
	var sumA, sumAS, sumG float64
	for k := range p.a {
		s := p.scale * softplus(p.beta[k])
		sumA += math.Abs(p.a[k])
		sumAS += math.Abs(p.a[k] * s)
	}
	for _, w := range wv {
		sumG += math.Abs(float64(float32(w)))
	}
	for _, v := range []Variant{{}, {Center: true}, {Residual: true}} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			want := referenceResult(p, mv, wv, v)
			run := func(tabulate bool) result {
				prev := SetTabulated(tabulate)
				defer SetTabulated(prev)
				before := TabulatedCalls()
				r := evaluate(t, variantFn(ApplyVariant, v), mv, wv, shape, p, gotch.Float)
				if took, want := TabulatedCalls()-before, map[bool]int64{true: 2, false: 0}[tabulate]; took != want {
					t.Fatalf("SetTabulated(%v): %d of forward and backward took the table, want %d", tabulate, took, want)
				}
				return r
			}
			for _, path := range []struct {
				name string
				r    result
			}{{"tabulated", run(true)}, {"K-term", run(false)}} {
				worst := func(name string, got, want []float64, bound func(i int) float64) {
					var e, rel float64
					for i := range want {
						d := math.Abs(got[i] - want[i])
						if !(d <= bound(i)) {
							t.Errorf("%s %s[%d] = %.9g, closed form %.9g (|diff| %.3g > %.3g)", path.name, name, i, got[i], want[i], d, bound(i))
							return
						}
						e, rel = max(e, d), max(rel, d/bound(i))
					}
					t.Logf("%-9s %-8s max |diff| %.3g (%.2f of the bound)", path.name, name, e, rel)
				}
				worst("phi", path.r.y, want.y, func(i int) float64 { return 32*u*sumA + 4*u*math.Abs(want.y[i]) })
				worst("dL/dM", path.r.dm, want.dm, func(i int) float64 {
					return 16 * u * math.Abs(float64(float32(wv[i]))) * (sumAS + 1)
				})
				sums := (1024 + 24) * u * sumG
				if path.name == "tabulated" {
					sums = 4 * u * sumG
				}
				worst("dL/da", path.r.da, want.da, func(int) float64 { return sums })
				worst("dL/dbeta", path.r.dbeta, want.dbeta, func(k int) float64 {
					s := p.scale * softplus(p.beta[k])
					return sums * (2/s + 2*math.Abs(p.g[k])) * math.Abs(p.a[k]) * p.scale
				})
			}
		})
	}
}

// tabulatedRun evaluates v's φ on the case in float32 and checks how many of the
// forward and backward passes took the table.
func tabulatedRun(t *testing.T, p phiParams, mv, wv []float64, shape []int64, v Variant, wantTook int64) result {
	t.Helper()
	before := TabulatedCalls()
	r := evaluate(t, variantFn(ApplyVariant, v), mv, wv, shape, p, gotch.Float)
	if took := TabulatedCalls() - before; took != wantTook {
		t.Fatalf("%d of forward and backward took the table, want %d", took, wantTook)
	}
	return r
}

// The tabulated backward spreads G per fixed segment of whole chunks (fixed by the
// element count alone) and adds the segments in order: 1 and 2 threads give the same
// bits, as on the K-term kernel (TestBackwardIsDeterministic).
func TestTabulatedIsDeterministic(t *testing.T) {
	lockThread(t)
	prev := NumThreads()
	t.Cleanup(func() { SetNumThreads(prev) })
	p, mv, wv, shape := tabulatedCase(2)
	for _, v := range []Variant{{}, {Center: true}} {
		SetNumThreads(2)
		first := tabulatedRun(t, p, mv, wv, shape, v, 2)
		SetNumThreads(1)
		one := tabulatedRun(t, p, mv, wv, shape, v, 2)
		for _, f := range []struct {
			name      string
			got, want []float64
		}{{"phi", one.y, first.y}, {"dL/dM", one.dm, first.dm}, {"dL/da", one.da, first.da}, {"dL/dbeta", one.dbeta, first.dbeta}} {
			for i := range f.want {
				if math.Float64bits(f.got[i]) != math.Float64bits(f.want[i]) {
					t.Fatalf("%v: 1 thread %s[%d] = %.17g, 2 threads %.17g", v, f.name, i, f.got[i], f.want[i])
				}
			}
		}
	}
}

// The tabulated path keeps the op's exact properties: centred φ is exactly 0 where M
// is 0 (φ(0) comes from the same table and instructions), the residual variant at
// a = 0 is exactly M (LoRA), a small M (TestFusedMatchesNaive's 33×47) and an M
// within one table interval (B ≈ 0: phi_table.h says why) stay on the K-term
// kernel, and a NaN in M (or in G, for the backward) sends the pass to the
// K-term kernel, whose NaN handling the other tests pin down.
func TestTabulatedEdges(t *testing.T) {
	lockThread(t)
	p, mv, wv, shape := tabulatedCase(3)
	centred := tabulatedRun(t, p, mv, wv, shape, Variant{Center: true}, 2)
	for i, x := range mv {
		if x == 0 && centred.y[i] != 0 {
			t.Fatalf("centred φ at M[%d] = 0 is %v, want exactly 0", i, centred.y[i])
		}
	}
	zero := p
	zero.a = make([]float64, len(p.a))
	residual := tabulatedRun(t, zero, mv, wv, shape, Variant{Residual: true}, 2)
	for i, x := range mv {
		if residual.y[i] != float64(float32(x)) {
			t.Fatalf("residual φ at a = 0: entry %d is %v, want M = %v exactly", i, residual.y[i], float32(x))
		}
	}
	small := tabulatedRun(t, p, mv[:33*47], wv[:33*47], []int64{33, 47}, Variant{}, 0)
	if len(small.y) != 33*47 {
		t.Fatalf("small M: %d values", len(small.y))
	}
	narrow := make([]float64, len(mv)) // B ≈ 0: M within one interval (~0.005 here)
	for i := range narrow {
		narrow[i] = 1e-4 * mv[i]
	}
	tabulatedRun(t, p, narrow, wv, shape, Variant{}, 0)
	before := Passes()
	tabulatedRun(t, p, make([]float64, len(mv)), wv, shape, Variant{}, 0) // B = 0
	if got := Passes() - before; got != 2 {
		t.Fatalf("Passes counted %d for one forward and backward, want 2", got)
	}
	nanM := append([]float64(nil), mv...)
	nanM[7] = math.NaN()
	r := tabulatedRun(t, p, nanM, wv, shape, Variant{}, 0)
	if !math.IsNaN(r.y[7]) || math.IsNaN(r.y[8]) {
		t.Fatalf("NaN in M[7]: φ[7] = %v, φ[8] = %v; want NaN and a number", r.y[7], r.y[8])
	}
	nanG := append([]float64(nil), wv...)
	nanG[9] = math.NaN()
	r = tabulatedRun(t, p, mv, nanG, shape, Variant{}, 1) // the forward only
	if !math.IsNaN(r.dm[9]) || math.IsNaN(r.dm[10]) || !math.IsNaN(r.da[0]) {
		t.Fatalf("NaN in G[9]: dL/dM[9] = %v, dL/dM[10] = %v, dL/da[0] = %v; want NaN, a number, NaN", r.dm[9], r.dm[10], r.da[0])
	}
}
