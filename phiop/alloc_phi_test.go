package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"math"
	"math/rand/v2"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// allocSide is the side of M in these tests: 1024² float32 is 4 MiB, so M, φ(M),
// the upstream gradient and ∂M all go through the cache.
const allocSide = 1024

// phiRun is one φ forward and backward, L = Σ W ⊙ φ(M), on fresh leaves built
// from mv, wv and p; it returns φ(M), ∂M, ∂a and ∂β as float64 (exact copies of
// the float32 values) and frees every tensor it made.
func phiRun(t *testing.T, mv, wv []float64, p phiParams) [4][]float64 {
	t.Helper()
	shape := []int64{allocSide, allocSide}
	K := []int64{int64(len(p.a))}
	m := ts.MustOfSlice(mv).MustReshape(shape, true).MustTotype(gotch.Float, true).MustSetRequiresGrad(true, true)
	w := ts.MustOfSlice(wv).MustReshape(shape, true).MustTotype(gotch.Float, true)
	a := ts.MustOfSlice(p.a).MustReshape(K, true).MustTotype(gotch.Float, true).MustSetRequiresGrad(true, true)
	beta := ts.MustOfSlice(p.beta).MustReshape(K, true).MustTotype(gotch.Float, true).MustSetRequiresGrad(true, true)
	g := ts.MustOfSlice(p.g).MustReshape(K, true).MustTotype(gotch.Float, true)
	defer func() {
		for _, x := range []*ts.Tensor{m, w, a, beta, g} {
			x.MustDrop()
		}
	}()
	y, err := Apply(m, a, beta, g, p.basis, p.scale)
	if err != nil {
		t.Fatal(err)
	}
	defer y.MustDrop()
	loss := y.MustMul(w, false).MustSum(gotch.Float, true)
	defer loss.MustDrop()
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	return [4][]float64{values(y), gradValues(m), gradValues(a), gradValues(beta)}
}

// allocCase is a φ problem with M spread over the grid and a non-uniform W.
func allocCase() (mv, wv []float64, p phiParams) {
	rng := rand.New(rand.NewPCG(13, 5))
	p = randomParams(rng, 24, 3, adapter.Sinc, 1.3)
	mv = make([]float64, allocSide*allocSide)
	wv = make([]float64, len(mv))
	for i := range mv {
		mv[i] = 6*rng.Float64() - 3
		wv[i] = rng.NormFloat64()
	}
	return mv, wv, p
}

// φ computed through the cache is bit-for-bit φ computed without it: the same
// kernels run on the same inputs, only the memory differs. The cached run gets
// blocks that earlier tensors left full of NaN, so a kernel that read memory
// it had not written (relying on fresh, zeroed pages) would show here; the
// uncached run (bound 0) maps fresh pages for every block, as glibc does for
// blocks this large.
func TestCacheBitIdentical(t *testing.T) {
	lockThread(t)
	mv, wv, p := allocCase()
	withCache(t, 0)
	want := phiRun(t, mv, wv, p)

	base := withCache(t, 1<<30)
	var dirty []*ts.Tensor
	for range 12 { // more 4 MiB blocks than one run holds at once
		dirty = append(dirty, ts.MustFull([]int64{allocSide, allocSide}, ts.FloatScalar(math.NaN()), gotch.Float, gotch.CPU))
	}
	for _, x := range dirty {
		x.MustDrop()
	}
	got := phiRun(t, mv, wv, p)
	if s := CachingAllocatorStats(); s.Hits-base.Hits < 4 {
		t.Fatalf("the cached run took %d blocks from the cache, want at least M, W, φ(M), ∂M", s.Hits-base.Hits)
	}
	for k, name := range []string{"φ(M)", "∂M", "∂a", "∂β"} {
		if len(got[k]) != len(want[k]) {
			t.Fatalf("%s: %d values, want %d", name, len(got[k]), len(want[k]))
		}
		for i := range want[k] {
			if math.Float64bits(got[k][i]) != math.Float64bits(want[k][i]) {
				t.Errorf("%s[%d] = %v through the cache, %v without", name, i, got[k][i], want[k][i])
				break
			}
		}
	}
}

// Many steps of φ forward and backward: after two steps every block comes
// from the cache (no misses, no growth of the allocator's footprint), and
// under a bound smaller than a step's working set the cache never holds more
// than the bound.
func TestCacheMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("many φ steps; runs without -short")
	}
	lockThread(t)
	rng := rand.New(rand.NewPCG(2, 9))
	p := randomParams(rng, 8, 3, adapter.Sinc, 1)
	m := ts.MustRandn([]int64{allocSide, allocSide}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)
	defer m.MustDrop()
	a, beta, g := p.tensors(t, gotch.Float)
	step := func() {
		y, err := Apply(m, a, beta, g, p.basis, p.scale)
		if err != nil {
			t.Fatal(err)
		}
		loss := y.MustSum(gotch.Float, false)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		loss.MustDrop()
		y.MustDrop()
		for _, x := range []*ts.Tensor{m, a, beta} {
			x.ZeroGrad()
		}
	}
	const steps = 25

	withCache(t, 1<<30)
	// Two warm-up steps: the first backward stores ∂M as M.grad; from the second
	// on, backward accumulates into it through a temporary of its own.
	step()
	step()
	warm := CachingAllocatorStats()
	for range steps {
		step()
	}
	s := CachingAllocatorStats()
	t.Logf("unbounded, after %d steps: %v", steps+2, s)
	if s.Misses != warm.Misses || s.PeakBytes != warm.PeakBytes {
		t.Errorf("steady state: misses %d → %d, footprint peak %d → %d bytes; want both unchanged",
			warm.Misses, s.Misses, warm.PeakBytes, s.PeakBytes)
	}
	if s.Hits-warm.Hits < steps {
		t.Errorf("%d hits in %d steps, want at least one per step", s.Hits-warm.Hits, steps)
	}

	const bound = 6 * mib // one and a half 4 MiB blocks
	base := withCache(t, bound)
	for range steps {
		step()
	}
	s = CachingAllocatorStats()
	t.Logf("bound %d MiB, %d steps: %v", bound/mib, steps, s)
	if s.PeakCached > bound || s.CachedBytes > bound {
		t.Errorf("cache held up to %d bytes (%d now), bound %d", s.PeakCached, s.CachedBytes, bound)
	}
	if s.Evictions == base.Evictions {
		t.Errorf("bound %d below a step's blocks, yet no evictions in %d steps", bound, steps)
	}
}
