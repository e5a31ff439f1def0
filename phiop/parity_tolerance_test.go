package phiop

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
)

// The CUDA-vs-CPU parity check (cuda_parity_test.go) compares every output
// element by element: NaN only against NaN, ±Inf only against the same
// infinity, and finite values within a bound derived from the rounding unit u
// of the dtype (2^-24 or 2^-53). The two devices evaluate sin, cos and exp
// with different code (the CPU's float32 polynomials, CUDA's sincospif and
// expf), so they agree only to rounding, never bit for bit.
//
// The bound per output is u times a sum of magnitudes computed here in float64
// from the inputs, with these facts about every basis f (sinc, gaussian, cubic
// B-spline) for finite t: |f| ≤ 1, |t·f'| ≤ 2, |f'| ≤ π and |t·f''| ≤ 10.
//   - evaluating f costs a few u absolute on either device, f' at most 8πu;
//   - a sum of n terms in the dtype is off by at most n·u·Σ|term| (the CPU
//     sums up to 1024 elements in float before switching to double; CUDA 8);
//   - float32: the shim derives s = c·softplus(β) and a·s in double on both
//     devices and rounds once, so t = s·(x − g) is the same float on both;
//   - float64: s may differ by an ulp (device log1p/exp vs glibc), moving t by
//     u·|t|: f by |t f'|·u ≤ 2u, f' by |t f''|·u ≤ 10u, (x − g)·f' by 10u·|x − g|;
//   - float32 sinc treats |t| > 2^22 as 2^22 on both devices, where f' = ±2^-22
//     exactly, so (x − g)·f' there is |x − g|·2^-22 (not bounded by 2/s).
// The variants (centred, residual) add: φ(0), a second φ value off by the same bound
// as φ(M); the identity's 1 in ∂L/∂M (a rounding of |G|); f(t⁰)·Σ G in ∂a and
// g·f'(t⁰)·Σ G in ∂β, with f, f' at t⁰ in float64 on both devices and Σ G off by a
// sum's n·u·Σ|G|.
// The constants below carry a factor of 2 to 4 over these estimates.

// parityTol holds the allowed |CUDA − CPU| per element of each output.
type parityTol struct {
	y, dm, da, dbeta []float64
}

func unitRoundoff(dtype gotch.DType) float64 {
	if dtype == gotch.Float {
		return 0x1p-24
	}
	return 0x1p-53
}

// paritySigmoid is the logistic function, for ∂L/∂β's factor.
func paritySigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// tolerances computes the bounds for inputs mv (M), wv (∂L/∂φ), p and variant v;
// want is the CPU result, whose magnitude adds the last roundings (double → dtype).
func tolerances(p phiParams, mv, wv []float64, v Variant, dtype gotch.DType, want result) parityTol {
	u := unitRoundoff(dtype)
	f32 := dtype == gotch.Float
	K, n := len(p.a), len(mv)
	nblk := float64(min(n, 1024))
	s := make([]float64, K)
	var sumA, sumAS float64
	for k := range p.a {
		s[k] = p.scale * softplus(p.beta[k])
		sumA += math.Abs(p.a[k])
		sumAS += math.Abs(p.a[k] * s[k])
	}
	delta := 1.0
	if f32 {
		delta = 0
	}
	tol := parityTol{y: make([]float64, n), dm: make([]float64, n), da: make([]float64, K), dbeta: make([]float64, K)}
	var sumG float64
	for i := range mv {
		g := math.Abs(wv[i])
		sumG += g
		tol.y[i] = u*(2*float64(K)+32)*sumA + 4*u*math.Abs(want.y[i])
		tol.dm[i] = u*g*sumAS*(2*math.Pi*float64(K)+8*math.Pi+40*delta+8) + 4*u*math.Abs(want.dm[i])
		if v.Centred() {
			tol.y[i] += u * (2*float64(K) + 32) * sumA
		}
		if v.Residual {
			tol.dm[i] += 8 * u * g
		}
	}
	for k := range p.a {
		tol.da[k] = u*sumG*(nblk+24) + 4*u*math.Abs(want.da[k])
		var du float64
		for i, x := range mv {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				continue // the sums are then NaN or ±Inf: compared by class
			}
			ux := math.Abs(x - p.g[k])
			m := 2 / s[k]
			if f32 && s[k]*ux > 0x1p22 {
				m += ux * 0x1p-22
			}
			du += math.Abs(wv[i]) * ((nblk+8)*m + 16/s[k] + 40*delta*ux)
		}
		if v.Centred() {
			tol.da[k] += u * sumG * (nblk + 24)
			du += sumG * (nblk + 24) * math.Abs(p.g[k]) * (math.Pi + 10*delta)
		}
		tol.dbeta[k] = u*du*math.Abs(p.a[k])*p.scale*paritySigmoid(p.beta[k]) + 8*u*math.Abs(want.dbeta[k])
	}
	return tol
}

// parityProblems compares got with want element by element and describes every
// element that differs in class (NaN, +Inf, −Inf, finite) or by more than tol.
func parityProblems(name string, got, want, tol []float64) []string {
	if len(got) != len(want) || len(tol) != len(want) {
		return []string{fmt.Sprintf("%s: %d values, want %d (%d bounds)", name, len(got), len(want), len(tol))}
	}
	var out []string
	for i, w := range want {
		g := got[i]
		switch {
		case math.IsNaN(w) || math.IsNaN(g):
			if !(math.IsNaN(w) && math.IsNaN(g)) {
				out = append(out, fmt.Sprintf("%s[%d] = %v, CPU %v", name, i, g, w))
			}
		case math.IsInf(w, 0) || math.IsInf(g, 0):
			if g != w {
				out = append(out, fmt.Sprintf("%s[%d] = %v, CPU %v", name, i, g, w))
			}
		case !(math.Abs(g-w) <= tol[i]):
			out = append(out, fmt.Sprintf("%s[%d] = %.17g, CPU %.17g: |diff| %.3g > %.3g", name, i, g, w, math.Abs(g-w), tol[i]))
		}
	}
	return out
}

// compareParity checks all four outputs and reports the first few problems.
func compareParity(t *testing.T, got, want result, tol parityTol) {
	t.Helper()
	var problems []string
	problems = append(problems, parityProblems("phi", got.y, want.y, tol.y)...)
	problems = append(problems, parityProblems("dL/dM", got.dm, want.dm, tol.dm)...)
	problems = append(problems, parityProblems("dL/da", got.da, want.da, tol.da)...)
	problems = append(problems, parityProblems("dL/dbeta", got.dbeta, want.dbeta, tol.dbeta)...)
	if len(problems) > 8 {
		problems = append(problems[:8], fmt.Sprintf("... and %d more", len(problems)-8))
	}
	if len(problems) > 0 {
		t.Error(strings.Join(problems, "\n"))
	}
}

// The comparison that the GPU test relies on rejects every kind of mismatch
// (it runs on the CPU, so that a comparison that cannot fail is caught here).
func TestParityComparisonRejectsMismatches(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	want := []float64{1, nan, inf, -inf, 0}
	tol := []float64{1e-6, 1e-6, 1e-6, 1e-6, 1e-6}
	if p := parityProblems("x", []float64{1 + 5e-7, nan, inf, -inf, -1e-6}, want, tol); len(p) != 0 {
		t.Errorf("equal classes within the bound were rejected: %v", p)
	}
	for i, got := range [][]float64{
		{1 + 2e-6, nan, inf, -inf, 0}, // beyond the bound
		{1, 0, inf, -inf, 0},          // NaN lost
		{1, nan, -inf, -inf, 0},       // wrong infinity
		{1, nan, inf, 1e308, 0},       // infinity lost
		{1, nan, inf, -inf, nan},      // NaN appeared
		{1, nan, inf, -inf, inf},      // infinity appeared
	} {
		if p := parityProblems("x", got, want, tol); len(p) != 1 {
			t.Errorf("case %d: %v gave %d problems %v, want exactly 1", i, got, len(p), p)
		}
	}
	if p := parityProblems("x", []float64{1}, want, tol); len(p) != 1 {
		t.Errorf("a length mismatch gave %v", p)
	}
}
