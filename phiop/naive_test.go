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

// result holds φ(M) and the gradients of L = Σ W ⊙ φ(M).
type result struct {
	y, dm, da, dbeta []float64
}

type phiFunc func(m, a, beta, g *ts.Tensor, basis adapter.Basis, scale float64) (*ts.Tensor, error)

// evaluate runs fn on fresh leaves built from mv, wv and p.
func evaluate(t *testing.T, fn phiFunc, mv, wv []float64, shape []int64, p phiParams, dtype gotch.DType) result {
	t.Helper()
	m := newTensor(t, mv, shape, dtype, true)
	w := newTensor(t, wv, shape, dtype, false)
	a, beta, g := p.tensors(t, dtype)
	y, err := fn(m, a, beta, g, p.basis, p.scale)
	if err != nil {
		t.Fatal(err)
	}
	defer y.MustDrop()
	if err := weightedSum(t, y, w).Backward(); err != nil {
		t.Fatal(err)
	}
	return result{y: values(y), dm: gradValues(m), da: gradValues(a), dbeta: gradValues(beta)}
}

// compare checks every field of got against want: max |diff| ≤ rel · max |want|,
// with relDM for dL/dM.
func compare(t *testing.T, got, want result, rel, relDM float64) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want []float64
	}{{"phi", got.y, want.y}, {"dL/dM", got.dm, want.dm}, {"dL/da", got.da, want.da}, {"dL/dbeta", got.dbeta, want.dbeta}} {
		diff, scale := maxAbsDiff(t, f.got, f.want)
		allowed := rel * scale
		if f.name == "dL/dM" {
			allowed = relDM * scale
		}
		if diff > allowed || math.IsNaN(diff) {
			t.Errorf("%s: fused and naive differ by %.3g (max |naive| %.3g, allowed %.3g)", f.name, diff, scale, allowed)
		}
	}
}

// Fused vs Naive on one 33×47 M (a third of it on or next to grid points),
// all bases, K = 20, |a_k| ≤ 1.2.
//
// float64: agreement to rounding, 1e-12 of the largest entry. One exception:
// libtorch's sinc backward, (πt·cos πt − sin πt)/(πt²), cancels for small t
// and is off by about 2^-52/|t| (2e-10 at the |t| ≈ 1e-6 entries), so the
// naive sinc dL/dM is held to 1e-9 only; the finite-difference test holds the
// fused one to 1e-7 absolute there on its own.
//
// float32: the fused float32 result is compared with the float64 naive one
// (the truth) at 4e-6 of the largest entry. Rounding M, a, β, g to 24 bits
// moves t by ~3·2^-24·|t| and f' turns that into a few 1e-7 of the O(1)
// values (measured: ≤ 4e-7 for every field), so 4e-6 is a 10× margin. Against
// the float32 naive result the bound is 1e-4: both sides carry that rounding,
// and they sum the ∂a, ∂β reductions in different orders (libtorch's float
// sums vs float blocks of 1024 then double). libtorch's float32 sinc backward
// cancels as above with 2^-24/|t|: up to 6e-2 at |t| ≈ 1e-6, times |a_k| ≤ 1.2
// and |w| ≲ 4.5 (the largest of 1551 normal draws), ≤ 0.33 per entry, 2e-2 of
// the largest entry (16.4), so the naive float32 sinc dL/dM is held to 2e-2.
// How much of that bound shows depends on libtorch's float32 sin/cos kernels:
// measured 6e-5 with Debian's libtorch 1.13, 4.8e-2 (2.9e-3 of the largest)
// with trixie's 2.6. The fused float32 dL/dM is held to 4e-6 of the float64
// truth either way.
func TestFusedMatchesNaive(t *testing.T) {
	lockThread(t)
	for bi, basis := range []adapter.Basis{adapter.Sinc, adapter.Gaussian, adapter.BSpline} {
		rng := rand.New(rand.NewPCG(11, uint64(bi)))
		const K, L = 20, 3.0
		scale := 1.0
		if basis == adapter.BSpline {
			scale = (K - 1) / (2 * L) // 1/h, h the grid spacing
		}
		p := randomParams(rng, K, L, basis, scale)
		shape := []int64{33, 47}
		mv := gridHeavyM(rng, 33*47, p.g, 3)
		wv := make([]float64, len(mv))
		for i := range wv {
			wv[i] = rng.NormFloat64()
		}
		naive64 := evaluate(t, Naive, mv, wv, shape, p, gotch.Double)
		t.Run(fmt.Sprintf("%v/float64", basis), func(t *testing.T) {
			fused := evaluate(t, Apply, mv, wv, shape, p, gotch.Double)
			relDM := 1e-12
			if basis == adapter.Sinc {
				relDM = 1e-9
			}
			compare(t, fused, naive64, 1e-12, relDM)
		})
		t.Run(fmt.Sprintf("%v/float32", basis), func(t *testing.T) {
			fused := evaluate(t, Apply, mv, wv, shape, p, gotch.Float)
			naive := evaluate(t, Naive, mv, wv, shape, p, gotch.Float)
			relDM := 1e-4
			if basis == adapter.Sinc {
				relDM = 2e-2
			}
			compare(t, fused, naive, 1e-4, relDM)
			compare(t, fused, naive64, 4e-6, 4e-6)
		})
	}
}

// Gradients flow through M into whatever produced it: M = B·A (LoRA) and a
// transposed, non-contiguous M.
func TestGradientFlowsThroughProducer(t *testing.T) {
	lockThread(t)
	rng := rand.New(rand.NewPCG(3, 4))
	p := randomParams(rng, 15, 3, adapter.Sinc, 1)
	bv, av := make([]float64, 16*4), make([]float64, 4*24)
	for i := range bv {
		bv[i] = rng.NormFloat64()
	}
	for i := range av {
		av[i] = rng.NormFloat64()
	}
	run := func(fn phiFunc, transpose bool) (db, dA []float64) {
		B := newTensor(t, bv, []int64{16, 4}, gotch.Double, true)
		A := newTensor(t, av, []int64{4, 24}, gotch.Double, true)
		a, beta, g := p.tensors(t, gotch.Double)
		m := B.MustMm(A, false)
		defer m.MustDrop()
		if transpose {
			mt := m.MustT(false)
			defer mt.MustDrop()
			m = mt
		}
		y, err := fn(m, a, beta, g, adapter.Sinc, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer y.MustDrop()
		sq := y.MustSquare(false)
		defer sq.MustDrop()
		loss := sq.MustSum(gotch.Double, false)
		defer loss.MustDrop()
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		return gradValues(B), gradValues(A)
	}
	for _, transpose := range []bool{false, true} {
		fb, fa := run(Apply, transpose)
		nb, na := run(Naive, transpose)
		for name, pair := range map[string][2][]float64{"dL/dB": {fb, nb}, "dL/dA": {fa, na}} {
			diff, scale := maxAbsDiff(t, pair[0], pair[1])
			if scale == 0 || diff > 1e-12*scale {
				t.Errorf("transpose=%v %s: fused vs naive differ by %.3g (scale %.3g)", transpose, name, diff, scale)
			}
		}
	}
}

// M of any shape, including an empty matrix, keeps its shape. (gotch cannot
// reshape to a 0-dim tensor, so scalars are left out.)
func TestAnyShape(t *testing.T) {
	lockThread(t)
	p := randomParams(rand.New(rand.NewPCG(8, 9)), 6, 2, adapter.Gaussian, 1)
	for _, shape := range [][]int64{{7}, {0, 3}, {2, 3, 4}} {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		mv := make([]float64, n)
		for i := range mv {
			mv[i] = 0.37*float64(i) - 2
		}
		wv := make([]float64, n)
		for i := range wv {
			wv[i] = 1
		}
		fused := evaluate(t, Apply, mv, wv, shape, p, gotch.Double)
		naive := evaluate(t, Naive, mv, wv, shape, p, gotch.Double)
		if len(fused.y) != int(n) || len(fused.dm) != int(n) {
			t.Fatalf("shape %v: got %d values, %d gradients", shape, len(fused.y), len(fused.dm))
		}
		compare(t, fused, naive, 1e-12, 1e-12)
	}
}

// A NaN in M comes out as NaN (so that a finiteness check downstream sees it),
// for every basis and dtype; ±Inf gives finite values (sinc: its limit 0).
func TestNaNPropagates(t *testing.T) {
	lockThread(t)
	mv := []float64{math.NaN(), 0.5, math.Inf(1), math.Inf(-1)}
	for _, basis := range []adapter.Basis{adapter.Sinc, adapter.Gaussian, adapter.BSpline} {
		p := randomParams(rand.New(rand.NewPCG(1, 1)), 5, 2, basis, 1)
		for _, dtype := range []gotch.DType{gotch.Float, gotch.Double} {
			m := newTensor(t, mv, []int64{4}, dtype, false)
			a, beta, g := p.tensors(t, dtype)
			y, err := Apply(m, a, beta, g, basis, 1)
			if err != nil {
				t.Fatal(err)
			}
			got := values(y)
			y.MustDrop()
			if !math.IsNaN(got[0]) || math.IsNaN(got[1]) || math.IsInf(got[1], 0) {
				t.Errorf("%v/%v: phi(NaN, 0.5) = %v, %v", basis, dtype, got[0], got[1])
			}
			for i := 2; i < 4; i++ {
				if math.IsNaN(got[i]) || math.IsInf(got[i], 0) {
					t.Errorf("%v/%v: phi(%v) = %v, want finite", basis, dtype, mv[i], got[i])
				}
			}
		}
	}
}
