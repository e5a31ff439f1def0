package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sugarme/gotch"
)

// basisPoints are t values where a basis is easy to get wrong: 0, tiny, the
// sinc Taylor boundary ±1/2, integers, half-integers, B-spline knots, plus a
// dense sweep over [-6, 6].
func basisPoints() []float64 {
	pts := []float64{0, 1e-30, -1e-30, 1e-12, -1e-8, 1e-6, -1e-4, 1e-3, 0.4999999, -0.5, 0.5000001,
		1, -1, 2, -2, 1.5, -2.5, 3, 1e-7 + 1, 2 - 1e-7, 7.25, -11.5}
	for t := -6.0; t <= 6.0; t += 0.0137 {
		pts = append(pts, t)
	}
	return pts
}

// With K = 1, a = 1, b = 1, g = 0 and c = 1, φ is f itself and dφ/dx is f'.
// float64 must match the closed forms to rounding; float32 to a few ulps of
// the O(1) values (its own sin/cos polynomials, 2^-24 ≈ 6e-8).
func TestBasisMatchesClosedForm(t *testing.T) {
	lockThread(t)
	tolerance := map[gotch.DType]float64{gotch.Double: 1e-13, gotch.Float: 1e-6}
	for _, basis := range []adapter.Basis{adapter.Sinc, adapter.Gaussian, adapter.BSpline} {
		for _, dtype := range []gotch.DType{gotch.Double, gotch.Float} {
			t.Run(fmt.Sprintf("%v/%v", basis, dtype), func(t *testing.T) {
				pts := basisPoints()
				m := newTensor(t, pts, []int64{int64(len(pts))}, dtype, true)
				p := phiParams{a: []float64{1}, beta: []float64{betaForB(1)}, g: []float64{0}, basis: basis, scale: 1}
				a, beta, g := p.tensors(t, dtype)
				y, err := Apply(m, a, beta, g, basis, 1)
				if err != nil {
					t.Fatal(err)
				}
				defer y.MustDrop()
				loss := y.MustSum(dtype, false)
				defer loss.MustDrop()
				if err := loss.Backward(); err != nil {
					t.Fatal(err)
				}
				got, dx, xs := values(y), gradValues(m), values(m)
				tol := tolerance[dtype]
				for i, x := range xs {
					f, fp := refBasis(basis, x)
					if math.Abs(got[i]-f) > tol*(1+math.Abs(f)) || math.Abs(dx[i]-fp) > 2*tol*(1+math.Abs(fp)) {
						t.Errorf("t=%.9g: f=%.17g f'=%.17g, want %.17g, %.17g", x, got[i], dx[i], f, fp)
					}
				}
			})
		}
	}
}

type fdCase struct {
	basis adapter.Basis
	K     int
	L     float64
	scale float64
}

var fdCases = []fdCase{
	{adapter.Sinc, 7, 3, 1},
	{adapter.Sinc, 11, 2, 1.7},
	{adapter.Gaussian, 9, 3, 1},
	{adapter.BSpline, 9, 2, 2}, // grid spacing h = 0.5, scale 1/h
}

// Gradients of L = Σ W ⊙ φ(M) for M, a and β against central differences of
// the independent float64 reference refPhi, with M entries exactly on grid
// points (t = 0) and within 1e-6..1e-3 of them. Values against refPhi too.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	lockThread(t)
	for ci, c := range fdCases {
		t.Run(fmt.Sprintf("%v/K=%d/c=%g", c.basis, c.K, c.scale), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(ci)))
			p := randomParams(rng, c.K, c.L, c.basis, c.scale)
			rows, cols := 5, 8
			mv := gridHeavyM(rng, rows*cols, p.g, c.L)
			wv := make([]float64, rows*cols)
			for i := range wv {
				wv[i] = rng.Float64()*2 - 1
			}
			shape := []int64{int64(rows), int64(cols)}
			m := newTensor(t, mv, shape, gotch.Double, true)
			w := newTensor(t, wv, shape, gotch.Double, false)
			a, beta, g := p.tensors(t, gotch.Double)
			y, err := Apply(m, a, beta, g, c.basis, c.scale)
			if err != nil {
				t.Fatal(err)
			}
			defer y.MustDrop()
			if err := weightedSum(t, y, w).Backward(); err != nil {
				t.Fatal(err)
			}

			for i, v := range values(y) {
				if want := p.refPhi(mv[i]); math.Abs(v-want) > 1e-13*(1+math.Abs(want)) {
					t.Errorf("phi(%.9g) = %.17g, want %.17g", mv[i], v, want)
				}
			}
			const h = 1e-6
			dm := gradValues(m)
			for i, x := range mv {
				fd := wv[i] * (p.refPhi(x+h) - p.refPhi(x-h)) / (2 * h)
				checkClose(t, fmt.Sprintf("dL/dM at M=%.9g", x), dm[i], fd, 1e-7)
			}
			loss := func(q phiParams) float64 {
				var s float64
				for i, x := range mv {
					s += wv[i] * q.refPhi(x)
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

// centralDiff perturbs vec[k] (a slice inside p) by ±h.
func centralDiff(loss func(phiParams) float64, p phiParams, vec []float64, k int, h float64) float64 {
	orig := vec[k]
	vec[k] = orig + h
	up := loss(p)
	vec[k] = orig - h
	down := loss(p)
	vec[k] = orig
	return (up - down) / (2 * h)
}

func checkClose(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if math.Abs(got-want) > rel*(1+math.Abs(want)) {
		t.Errorf("%s = %.12g, finite differences give %.12g (|diff| %.2g)", what, got, want, math.Abs(got-want))
	}
}
