package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// requireCUDA skips, saying so, unless this binary has the CUDA kernels and libtorch
// sees a GPU: the CUDA tests run on a GPU machine, where scripts/gpu-check.sh counts a
// skip as a failure.
func requireCUDA(t *testing.T) {
	t.Helper()
	if !BuiltWithCUDA() {
		t.Skip("SKIPPED, not run: this test binary has no CUDA kernels; on a GPU machine " +
			"run `make -C phiop cuda` and `go test -tags cuda -run CUDA ./phiop/`")
	}
	if !CUDAAvailable() {
		t.Skip("SKIPPED, not run: built with the CUDA kernels, but libtorch sees no CUDA device")
	}
}

// lockThread pins the test to one OS thread: libtorch's grad mode is per thread.
func lockThread(t testing.TB) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// newTensor makes a tensor of the given shape and dtype from float64 values;
// the test drops it at cleanup.
func newTensor(t testing.TB, vals []float64, shape []int64, dtype gotch.DType, requiresGrad bool) *ts.Tensor {
	t.Helper()
	x := ts.MustOfSlice(vals).MustReshape(shape, true).MustTotype(dtype, true)
	if requiresGrad {
		x = x.MustSetRequiresGrad(true, true)
	}
	t.Cleanup(func() { x.MustDrop() })
	return x
}

// values copies a tensor's elements out as float64 (row-major).
func values(x *ts.Tensor) []float64 {
	if x.Numel() == 0 {
		return []float64{}
	}
	d := x.MustDetach(false).MustTotype(gotch.Double, true).MustContiguous(true)
	defer d.MustDrop()
	out := make([]float64, d.Numel())
	d.MustCopyData(out, d.Numel())
	return out
}

// gradValues returns x.grad as float64 values.
func gradValues(x *ts.Tensor) []float64 {
	g := x.MustGrad(false)
	defer g.MustDrop()
	return values(g)
}

// phiParams are the K-vectors of one test case, in float64.
type phiParams struct {
	a, beta, g []float64
	basis      adapter.Basis
	scale      float64
}

func softplus(x float64) float64 {
	if x > 20 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// betaForB inverts softplus: softplus(betaForB(b)) = b.
func betaForB(b float64) float64 { return math.Log(math.Expm1(b)) }

// randomParams draws nonzero a in ±[0.2, 1.2], β in [-1, 1.5] and a uniform
// grid of K points on [-L, L].
func randomParams(rng *rand.Rand, K int, L float64, basis adapter.Basis, scale float64) phiParams {
	p := phiParams{a: make([]float64, K), beta: make([]float64, K), g: make([]float64, K), basis: basis, scale: scale}
	for k := range K {
		sign := 1.0
		if rng.IntN(2) == 0 {
			sign = -1
		}
		p.a[k] = sign * (0.2 + rng.Float64())
		p.beta[k] = -1 + 2.5*rng.Float64()
		p.g[k] = -L + 2*L*float64(k)/float64(K-1)
	}
	return p
}

// gridHeavyM draws n values of M: some exactly on grid points (t = 0 for that
// k), some within 1e-6..1e-3 of one, the rest uniform on [-L-1, L+1].
func gridHeavyM(rng *rand.Rand, n int, grid []float64, L float64) []float64 {
	offsets := []float64{1e-6, -3e-6, 1e-5, -1e-4, 3e-4, -1e-3}
	m := make([]float64, n)
	for i := range m {
		g := grid[rng.IntN(len(grid))]
		switch i % 4 {
		case 0:
			m[i] = g
		case 1:
			m[i] = g + offsets[rng.IntN(len(offsets))]
		default:
			m[i] = -L - 1 + (2*L+2)*rng.Float64()
		}
	}
	return m
}

// refBasis is an independent float64 evaluation of f and f' (closed forms,
// Taylor series only where the closed form cancels).
func refBasis(basis adapter.Basis, t float64) (f, fp float64) {
	switch basis {
	case adapter.Sinc:
		if math.Abs(t) < 1e-2 {
			p2 := math.Pi * math.Pi
			z := t * t
			f = 1 - p2*z/6 + p2*p2*z*z/120 - p2*p2*p2*z*z*z/5040
			fp = t * (-p2/3 + p2*p2*z/30 - p2*p2*p2*z*z/840)
			return f, fp
		}
		f = math.Sin(math.Pi*t) / (math.Pi * t)
		return f, (math.Cos(math.Pi*t) - f) / t
	case adapter.Gaussian:
		f = math.Exp(-t * t)
		return f, -2 * t * f
	default:
		pos := func(v float64) float64 { return math.Max(v, 0) }
		a := math.Abs(t)
		u2, u1 := pos(2-a), pos(1-a)
		f = (u2*u2*u2 - 4*u1*u1*u1) / 6
		fp = -(u2*u2 - 4*u1*u1) / 2
		if t < 0 {
			fp = -fp
		}
		return f, fp
	}
}

// refPhi is φ(x) for one element, in float64.
func (p phiParams) refPhi(x float64) float64 {
	var sum float64
	for k := range p.a {
		f, _ := refBasis(p.basis, p.scale*softplus(p.beta[k])*(x-p.g[k]))
		sum += p.a[k] * f
	}
	return sum
}

// tensors returns a, β (both requiring grad) and g as tensors of dtype.
func (p phiParams) tensors(t testing.TB, dtype gotch.DType) (a, beta, g *ts.Tensor) {
	K := []int64{int64(len(p.a))}
	return newTensor(t, p.a, K, dtype, true), newTensor(t, p.beta, K, dtype, true), newTensor(t, p.g, K, dtype, false)
}

// weightedSum is L = Σ w ⊙ y, so backward sees a non-uniform upstream gradient.
func weightedSum(t testing.TB, y, w *ts.Tensor) *ts.Tensor {
	t.Helper()
	prod := y.MustMul(w, false)
	loss := prod.MustSum(y.DType(), true)
	t.Cleanup(func() { loss.MustDrop() })
	return loss
}

// maxAbsDiff returns max_i |x_i − y_i| and max_i |y_i|.
func maxAbsDiff(t testing.TB, x, y []float64) (diff, scale float64) {
	t.Helper()
	if len(x) != len(y) {
		t.Fatalf("length %d vs %d", len(x), len(y))
	}
	for i := range x {
		diff = math.Max(diff, math.Abs(x[i]-y[i]))
		scale = math.Max(scale, math.Abs(y[i]))
	}
	return diff, scale
}
