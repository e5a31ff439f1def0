package phiop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
)

// composedDelta is lrlora's composed merged weight: φ_v(B·A), α·, and W0 + ΔW when w0
// is given.
func composedDelta(t *testing.T, l leanLeaves, w0 *ts.Tensor, basis adapter.Basis, scale float64, v Variant, alpha float64) *ts.Tensor {
	m := l.b.MustMm(l.a, false)
	phi, err := ApplyVariant(m, l.amp, l.beta, l.grid, basis, scale, v)
	m.MustDrop()
	if err != nil {
		t.Fatal(err)
	}
	if alpha != 1 {
		phi = phi.MustMulScalar(ts.FloatScalar(alpha), true)
	}
	if w0 == nil {
		return phi
	}
	defer phi.MustDrop()
	return w0.MustAdd(phi, false)
}

// runDelta returns the weight and the gradients of B, A, a and β of L = Σ w ⊙ out,
// and drops out.
func (l leanLeaves) runDelta(t *testing.T, out, w *ts.Tensor) [][]float64 {
	loss := weightedSum(t, out, w)
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	res := [][]float64{values(out)}
	for _, p := range []*ts.Tensor{l.b, l.a, l.amp, l.beta} {
		res = append(res, gradValues(p))
	}
	out.MustDrop()
	return res
}

// LeanDelta computes the composed merged weight (W_eff, or ΔW without W0) and its
// gradients: the weight with the same calls on the same inputs (bit-identical), the
// gradients with the same products, whose GEMMs may block their sums another way
// (64 ulps of each gradient's scale, as for LeanLinear).
func TestLeanDeltaMatchesComposed(t *testing.T) {
	lockThread(t)
	for _, dtype := range []gotch.DType{gotch.Double, gotch.Float} {
		ulp := 2 * unitRoundoff(dtype) // the spacing of floats at 1: 2⁻²³, 2⁻⁵²
		for _, basis := range []adapter.Basis{adapter.Sinc, adapter.Gaussian, adapter.BSpline} {
			for _, v := range []Variant{{}, {Center: true}, {Residual: true}} {
				for _, alpha := range []float64{1, 0.7} {
					for _, withW0 := range []bool{true, false} {
						name := fmt.Sprintf("%v/%s/%v/alpha=%v/w0=%v", dtype, basis, v, alpha, withW0)
						t.Run(name, func(t *testing.T) {
							c := newLeanCase(uint64(len(name)), basis)
							compareLeanDelta(t, c, gotch.CPU, dtype, withW0, basis, v, alpha, ulp)
						})
					}
				}
			}
		}
	}
}

// compareLeanDelta checks LeanDelta against the composed weight on dev: the weight
// bit-identical, every gradient within 64 ulps of its scale.
func compareLeanDelta(t *testing.T, c leanCase, dev gotch.Device, dtype gotch.DType, withW0 bool, basis adapter.Basis, v Variant, alpha, ulp float64) {
	rng := rand.New(rand.NewPCG(uint64(c.dout), 17))
	up := make([]float64, c.dout*c.din)
	for i := range up {
		up[i] = rng.NormFloat64()
	}
	w := newTensor(t, up, []int64{int64(c.dout), int64(c.din)}, dtype, false).MustTo(dev, true)
	t.Cleanup(func() { w.MustDrop() })
	ref := c.leavesOn(t, dev, dtype, false)
	l := c.leavesOn(t, dev, dtype, false)
	w0ref, w0 := ref.w0, l.w0
	if !withW0 {
		w0ref, w0 = nil, nil
	}
	want := ref.runDelta(t, composedDelta(t, ref, w0ref, basis, c.p.scale, v, alpha), w)
	out, err := LeanDelta(w0, l.b, l.a, l.amp, l.beta, l.grid, basis, c.p.scale, v, alpha)
	if err != nil {
		t.Fatal(err)
	}
	got := l.runDelta(t, out, w)
	for i, name := range []string{"weight", "∂B", "∂A", "∂a", "∂β"} {
		diff, scale := maxAbsDiff(t, got[i], want[i])
		tol := 64 * ulp * scale
		if i == 0 {
			tol = 0
		}
		if diff > tol || math.IsNaN(diff) {
			t.Errorf("%s: max |lean − composed| %.3g, scale %.3g, tolerance %.3g", name, diff, scale, tol)
		}
	}
}

// On a GPU the node runs the same libtorch products and the CUDA φ kernels: compared
// with the composed weight there, as on the CPU (go test -tags cuda -run CUDA ./phiop/
// after make -C phiop cuda, on a machine with a GPU).
func TestLeanDeltaCUDAMatchesComposed(t *testing.T) {
	requireCUDA(t)
	lockThread(t)
	for _, dtype := range []gotch.DType{gotch.Double, gotch.Float} {
		ulp := 2 * unitRoundoff(dtype) // the spacing of floats at 1: 2⁻²³, 2⁻⁵²
		for _, v := range []Variant{{}, {Center: true}, {Residual: true}} {
			for _, withW0 := range []bool{true, false} {
				t.Run(fmt.Sprintf("%v/%v/w0=%v", dtype, v, withW0), func(t *testing.T) {
					compareLeanDelta(t, newLeanCase(13, adapter.Sinc), gotch.CudaBuilder(0), dtype, withW0, adapter.Sinc, v, 0.7, ulp)
				})
			}
		}
	}
}

// Between forward and backward the composed merged weight keeps M beside W_eff (two
// d_out×d_in tensors) and the lean node only its output: the caching allocator's
// in-use bytes (blocks of 64 KiB or more; a 1024² float32 tensor is 4 MiB, B, A and
// the K-vectors are below 64 KiB). After backward and the drops both return to the
// start.
func TestLeanDeltaKeepsOnlyTheWeight(t *testing.T) {
	lockThread(t)
	withCache(t, 256*mib)
	c := bigLeanCase(9)
	p := c.p
	kept := func(lean bool) int64 {
		l := c.leaves(t, gotch.Float, false)
		before := CachingAllocatorStats().InUseBytes
		var out *ts.Tensor
		var err error
		if lean {
			out, err = LeanDelta(l.w0, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, p.scale, Variant{}, 1)
		} else {
			out = composedDelta(t, l, l.w0, adapter.Sinc, p.scale, Variant{}, 1)
		}
		if err != nil {
			t.Fatal(err)
		}
		held := CachingAllocatorStats().InUseBytes - before
		// Backward with an upstream gradient of ones; then the gradient and out go.
		ones := out.MustOnesLike(false)
		if err := Backward([]*ts.Tensor{out}, []*ts.Tensor{ones}); err != nil {
			t.Fatal(err)
		}
		ones.MustDrop()
		out.MustDrop()
		if after := CachingAllocatorStats().InUseBytes; after != before {
			t.Errorf("lean=%v: in use %d bytes after backward, want %d as before forward", lean, after, before)
		}
		return held
	}
	const block = bigSide * bigSide * 4 // float32
	if held := kept(false); held < 2*block {
		t.Fatalf("composed weight holds %d bytes until backward, want ≥ %d (M and W_eff): the measurement does not see them", held, 2*block)
	}
	if held := kept(true); held != block {
		t.Errorf("lean node holds %d bytes in blocks ≥ 64 KiB until backward, want %d (W_eff alone)", held, block)
	}
}

// Bad inputs are refused with a message naming what is wrong, and nothing is made.
func TestLeanDeltaRefusesBadInputs(t *testing.T) {
	lockThread(t)
	c := newLeanCase(5, adapter.Sinc)
	l := c.leaves(t, gotch.Float, false)
	checkRefusals(t, []refusal{
		{"W0 requires grad", "W0 must be frozen", func() (*ts.Tensor, error) {
			w := l.w0.MustDetach(false).MustSetRequiresGrad(true, true)
			defer w.MustDrop()
			return LeanDelta(w, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, 1, Variant{}, 1)
		}},
		{"B·A does not match W0", "does not match W0", func() (*ts.Tensor, error) {
			w := l.w0.MustT(false)
			defer w.MustDrop()
			return LeanDelta(w, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, 1, Variant{}, 1)
		}},
		{"B·A is no product", "is not a product", func() (*ts.Tensor, error) {
			return LeanDelta(nil, l.b, l.b, l.amp, l.beta, l.grid, adapter.Sinc, 1, Variant{}, 1)
		}},
		{"nil A", ErrNilTensor.Error() + ": A", func() (*ts.Tensor, error) {
			return LeanDelta(nil, l.b, nil, l.amp, l.beta, l.grid, adapter.Sinc, 1, Variant{}, 1)
		}},
		{"alpha", "alpha must be finite", func() (*ts.Tensor, error) {
			return LeanDelta(l.w0, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, 1, Variant{}, math.Inf(1))
		}},
	})
}

// LeanDeltaInto writes the weight into a slot of a flat buffer and its output is that
// memory: the same values and gradients as LeanDelta's, no block of its own (the
// caching allocator's in-use bytes do not grow), the buffer's later contents visible
// through it, and the buffer's storage alive until the output goes.
func TestLeanDeltaIntoSharesTheBuffer(t *testing.T) {
	lockThread(t)
	withCache(t, 256*mib)
	c := bigLeanCase(11)
	n := int64(bigSide * bigSide)
	want := func() [][]float64 {
		l := c.leaves(t, gotch.Float, false)
		out, err := LeanDelta(l.w0, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, c.p.scale, Variant{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return l.runDelta(t, out, l.w0) // any fixed d_out×d_in upstream weights
	}()
	l := c.leaves(t, gotch.Float, false)
	flat := ts.MustZeros([]int64{2 * n}, gotch.Float, gotch.CPU)
	slot := flat.MustNarrow(0, n, n, false) // the second half
	before := CachingAllocatorStats().InUseBytes
	out, err := LeanDeltaInto(slot, l.w0, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, c.p.scale, Variant{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if grew := CachingAllocatorStats().InUseBytes - before; grew != 0 {
		t.Errorf("in use grew by %d bytes, want 0: the output has a block of its own", grew)
	}
	head := flat.MustNarrow(0, 0, n, false)
	if v := values(head); slices.Max(v) != 0 || slices.Min(v) != 0 {
		t.Error("the first half of the buffer was written")
	}
	head.MustDrop()
	if diff, _ := maxAbsDiff(t, values(slot), want[0]); diff != 0 {
		t.Errorf("slot differs from LeanDelta's weight by %g", diff)
	}
	// The output is the slot's memory: a change there shows through it. (Written with
	// CopyOut, which leaves the slot's handle as it is; gotch's Fill_ swaps in a new
	// handle and leaks the old one, which would keep the buffer alive.)
	half := ts.MustFull([]int64{n}, ts.FloatScalar(0.5), gotch.Float, gotch.CPU)
	slot.MustCopyOut(slot, half, false, false).MustDrop()
	half.MustDrop()
	if v := values(out); v[0] != 0.5 || v[len(v)-1] != 0.5 {
		t.Errorf("output reads %g … %g after the slot was filled with 0.5", v[0], v[len(v)-1])
	}
	slot.MustDrop()
	flat.MustDrop() // the output keeps the storage
	if v := values(out); v[0] != 0.5 {
		t.Errorf("output reads %g after the buffer's handles were dropped, want 0.5", v[0])
	}
	got := l.runDelta(t, out, l.w0)
	for i, name := range []string{"∂B", "∂A", "∂a", "∂β"} {
		if diff, scale := maxAbsDiff(t, got[i+1], want[i+1]); diff != 0 {
			t.Errorf("%s differs from LeanDelta's by %g (scale %g), want the same bits", name, diff, scale)
		}
	}
	if after := CachingAllocatorStats().InUseBytes; after != before-2*n*4 {
		t.Errorf("in use %d bytes after backward and the drops, want %d (the buffer freed)", after, before-2*n*4)
	}
	bad := ts.MustZeros([]int64{n - 1}, gotch.Float, gotch.CPU)
	defer bad.MustDrop()
	if out, err := LeanDeltaInto(bad, l.w0, l.b, l.a, l.amp, l.beta, l.grid, adapter.Sinc, c.p.scale, Variant{}, 1); err == nil {
		out.MustDrop()
		t.Error("a slot one element short was accepted")
	} else if !strings.Contains(err.Error(), "into has") {
		t.Errorf("short slot: %v, want an error naming into", err)
	}
}
