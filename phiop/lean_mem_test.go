package phiop

import (
	"fmt"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
)

// LeanLinear's and LeanDelta's forward hold at most two d_out×d_in tensors at once:
// M = B·A is freed once φ(M) exists, and α and W0 are applied in φ's buffer. With
// the caching allocator counting what live tensors hold, the forward's peak above what
// was live before (inputs included) is measured for a 1024×1024 layer (4 MiB per
// d_out×d_in tensor in float32) with α ≠ 1: it must stay below 2.5 of them plus
// LeanLinear's output (M, φ(M) and α·φ(M) at once, as before, are 12 MiB and fail).
func TestLeanForwardHoldsTwoWeightSizedTensors(t *testing.T) {
	lockThread(t)
	withCache(t, 1<<30)
	const dout, din, r, k, tokens = 1024, 1024, 4, 8, 16
	randn := func(std float64, shape ...int64) *ts.Tensor {
		x := ts.MustRandn(shape, gotch.Float, gotch.CPU)
		return x.MustMulScalar(ts.FloatScalar(std), true)
	}
	x, w0 := randn(1, tokens, din), randn(0.02, dout, din)
	b, a := randn(0.3, dout, r), randn(0.3, r, din)
	amp, beta := randn(0.1, k), ts.MustZeros([]int64{k}, gotch.Float, gotch.CPU)
	grid := ts.MustLinspace(ts.FloatScalar(-3), ts.FloatScalar(3), k, gotch.Float, gotch.CPU)
	for _, v := range []*ts.Tensor{x, w0, b, a, amp, beta, grid} {
		defer v.MustDrop()
	}
	weight := int64(dout * din * 4)
	for _, c := range []struct {
		name string
		run  func() (*ts.Tensor, error)
		out  int64
	}{
		{"LeanLinear", func() (*ts.Tensor, error) {
			return LeanLinear(x, w0, nil, b, a, amp, beta, grid, adapter.Sinc, 1, Variant{}, 0.5)
		}, tokens * dout * 4},
		{"LeanDelta", func() (*ts.Tensor, error) {
			return LeanDelta(w0, b, a, amp, beta, grid, adapter.Sinc, 1, Variant{}, 0.5)
		}, 0}, // its output is W_eff, one of the two
	} {
		ReleaseCachedBlocks()
		base := CachingAllocatorStats()
		ResetAllocPeaks()
		y, err := c.run()
		if err != nil {
			t.Fatal(err)
		}
		s := CachingAllocatorStats()
		y.MustDrop()
		above := s.PeakTensorBytes - (base.InUseBytes + base.SmallInUseBytes)
		bound := c.out + weight*5/2
		t.Logf("%s: forward peak %.2f MiB above the inputs (bound %.2f MiB; one d_out×d_in tensor is %.2f MiB)",
			c.name, float64(above)/mib, float64(bound)/mib, float64(weight)/mib)
		if above > bound || above < weight {
			t.Errorf("%s: %s", c.name, fmt.Sprintf("forward peak %d bytes above the inputs, want between %d and %d", above, weight, bound))
		}
	}
}
