package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sugarme/gotch"
)

// Backward sums ∂a and ∂β (and, centred, Σ G) per fixed 8192-element chunk and
// then in chunk order, so repeated runs and different thread counts give the same
// bits, for the plain op and each variant. M has 300×301 elements: 12 chunks, the
// last one partial.
func TestBackwardIsDeterministic(t *testing.T) {
	lockThread(t)
	prev := NumThreads()
	t.Cleanup(func() { SetNumThreads(prev) })
	rng := rand.New(rand.NewPCG(5, 6))
	p := randomParams(rng, 50, 3, adapter.Sinc, 1)
	shape := []int64{300, 301}
	mv := gridHeavyM(rng, 300*301, p.g, 3)
	wv := make([]float64, len(mv))
	for i := range wv {
		wv[i] = rng.NormFloat64()
	}
	for _, c := range []struct {
		v     Variant
		dtype gotch.DType
	}{{Variant{}, gotch.Float}, {Variant{}, gotch.Double}, {Variant{Center: true}, gotch.Float}, {Variant{Residual: true}, gotch.Double}} {
		dtype := c.dtype
		t.Run(fmt.Sprintf("%v/%v", c.v, dtype), func(t *testing.T) {
			run := func(threads int) result {
				SetNumThreads(threads)
				if got := NumThreads(); got != threads {
					t.Fatalf("NumThreads() = %d after SetNumThreads(%d)", got, threads)
				}
				return evaluate(t, variantFn(ApplyVariant, c.v), mv, wv, shape, p, dtype)
			}
			first := run(2)
			for _, other := range []struct {
				name string
				r    result
			}{{"second run, 2 threads", run(2)}, {"1 thread", run(1)}} {
				for _, f := range []struct {
					name      string
					got, want []float64
				}{{"dL/da", other.r.da, first.da}, {"dL/dbeta", other.r.dbeta, first.dbeta}, {"dL/dM", other.r.dm, first.dm}} {
					for i := range f.want {
						if math.Float64bits(f.got[i]) != math.Float64bits(f.want[i]) {
							t.Fatalf("%s: %s[%d] = %.17g, first run gave %.17g", other.name, f.name, i, f.got[i], f.want[i])
						}
					}
				}
			}
		})
	}
}
