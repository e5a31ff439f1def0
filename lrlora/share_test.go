package lrlora

import (
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/phiop"
)

// Two "ranks" in one process, each with its own copy of the same adapter and its own
// micro-batch: rank 0 forms the held weight (HoldDeltaInto), rank 1 takes its values
// (HoldReceived; here a copy through zeros + slot, as the all-reduce does), both run
// forward and backward, their held gradients are summed and rank 0 alone runs the
// backward with the sum (BackwardHeldWith). Rank 0's parameter gradients must equal
// one adapter's over both micro-batches with ΔW formed per micro-batch (the
// independent reference: ∂L/∂(B, A, a, β) is linear in ∂L/∂ΔW; float64 sums in
// another order, 1e-12 allowed; float32 1e-5), the outputs bit for bit, rank 1 must
// run no φ pass and keep no gradient, and the two ranks together run φ twice against
// the reference's four.
func TestSharedHoldMatchesPerMicroBatch(t *testing.T) {
	lockThread(t)
	k8 := func(s *adapter.Spec) { s.K = 8 }
	for _, tc := range []struct {
		name  string
		dtype gotch.DType
		cfg   adapter.Spec
		tol   float64
	}{
		{"lrlora/float64", gotch.Double, spec(adapter.LRLoRA, 2, k8), 1e-12},
		// p = 1e-9: see TestHeldDeltaMatchesPerMicroBatch (the ΔW form, masks kept).
		{"lrlora-dropout/float64", gotch.Double, spec(adapter.LRLoRA, 2, k8, func(s *adapter.Spec) { s.Dropout = 1e-9 }), 1e-12},
		{"lrlora/float32", gotch.Float, spec(adapter.LRLoRA, 2, k8), 1e-5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayer(t, 6, 5, tc.dtype, 71)
			ref := trainedAdapter(t, l, tc.cfg, 72)
			ranks := []*Adapter{trainedAdapter(t, l, tc.cfg, 72), trainedAdapter(t, l, tc.cfg, 72)}
			var xs, rs []*ts.Tensor
			for n := range 2 {
				x := constTensor(t, randVals(uint64(73+2*n), 4*5), []int64{4, 5}, tc.dtype)
				r := constTensor(t, randVals(uint64(74+2*n), 4*6), []int64{4, 6}, tc.dtype)
				defer x.MustDrop()
				defer r.MustDrop()
				xs, rs = append(xs, x), append(rs, r)
			}
			want, refPasses := stepGrads(t, ref, xs, rs, false)

			passes := phiop.Passes()
			n, dt := ranks[0].HeldSize()
			if n != 30 || dt != tc.dtype {
				t.Fatalf("HeldSize %d %v, want 30 %v", n, dt, tc.dtype)
			}
			slot0 := ts.MustZeros([]int64{n}, dt, gotch.CPU)
			defer slot0.MustDrop()
			if err := ranks[0].HoldDeltaInto(slot0); err != nil {
				t.Fatal(err)
			}
			zeros := ts.MustZeros([]int64{n}, dt, gotch.CPU)
			defer zeros.MustDrop()
			slot1 := zeros.MustAdd(slot0, false)
			defer slot1.MustDrop()
			before := phiop.Passes()
			if err := ranks[1].HoldReceived(slot1); err != nil {
				t.Fatal(err)
			}
			if err := ranks[1].HoldReceived(slot1); err == nil {
				t.Error("a second HoldReceived was accepted")
			}
			if p := phiop.Passes() - before; p != 0 {
				t.Errorf("HoldReceived ran φ %d times", p)
			}
			// Rank 1 gathers its gradient in a buffer of its own (GatherGradInto), as the
			// trainer does for the collective; rank 0 in the leaf's .grad.
			gslot := ts.MustZeros([]int64{n}, dt, gotch.CPU)
			defer gslot.MustDrop()
			if err := ranks[1].GatherGradInto(gslot); err != nil {
				t.Fatal(err)
			}
			var got [][]float64
			for i, ad := range ranks {
				y, err := ad.Forward(xs[i])
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, read(t, y))
				s := weightedSum(t, y, rs[i])
				y.MustDrop()
				if err := s.Backward(); err != nil {
					t.Fatal(err)
				}
				s.MustDrop()
			}
			g0, err := ranks[0].HeldGrad()
			if err != nil || g0 == nil {
				t.Fatalf("rank 0's held gradient: %v, %v", g0, err)
			}
			late := ts.MustZeros([]int64{n}, dt, gotch.CPU)
			defer late.MustDrop()
			if err := ranks[0].GatherGradInto(late); err == nil || !strings.Contains(err.Error(), "after a backward") {
				t.Errorf("GatherGradInto after a backward: %v, want it refused", err)
			}
			g1, err := ranks[1].HeldGrad()
			if err != nil || g1 == nil {
				t.Fatalf("rank 1's held gradient: %v, %v", g1, err)
			}
			if d := maxRelDiff(read(t, g1), read(t, gslot)); d != 0 {
				t.Errorf("rank 1's HeldGrad differs from its gradient slot by %g", d)
			}
			g1.MustDrop()
			sum := g0.MustReshape([]int64{-1}, true).MustAdd(gslot, true) // any shape of n elements
			defer sum.MustDrop()
			if err := BackwardHeldWith(ranks, []*ts.Tensor{sum, sum}); err != nil {
				t.Fatal(err)
			}
			if ranks[0].held != nil || ranks[1].held != nil {
				t.Fatal("BackwardHeldWith left a weight held")
			}
			if p := phiop.Passes() - passes; p != 2 || refPasses != 4 {
				t.Errorf("φ passes: %d split over the two ranks, %d per micro-batch; want 2 and 4", p, refPasses)
			}
			for i, p := range ranks[0].TrainableParameters() {
				got = append(got, read(t, p.Tensor.MustGrad(false)))
				if g := ranks[1].TrainableParameters()[i].Tensor.MustGrad(false); g.MustDefined() {
					t.Errorf("rank 1's %s has a gradient; its owner computes it", p.Name)
				}
			}
			for i := range want {
				tol := tc.tol
				if i < len(xs) {
					tol = 0 // outputs: the same weight, the same product
				}
				if d := maxRelDiff(got[i], want[i]); d > tol {
					t.Errorf("output %d (first the 2 micro-batches' y, then the gradients): max relative difference %.3g, want ≤ %g", i, d, tol)
				}
				if i >= len(xs) && maxAbs(want[i]) == 0 {
					t.Errorf("output %d: gradient identically zero, the comparison proves nothing", i)
				}
			}
		})
	}
}

// A slot of the wrong size, dtype or device is refused with the adapter's name, and
// nothing is left held; an adapter that does not hold (eval mode) ignores the calls.
func TestSharedHoldChecksSlots(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 6, 5, gotch.Float, 81)
	ad := trainedAdapter(t, l, spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 8 }), 82)
	for _, slot := range []*ts.Tensor{
		ts.MustZeros([]int64{29}, gotch.Float, gotch.CPU),
		ts.MustZeros([]int64{30}, gotch.Double, gotch.CPU),
	} {
		for name, hold := range map[string]func(*ts.Tensor) error{"HoldDeltaInto": ad.HoldDeltaInto, "HoldReceived": ad.HoldReceived} {
			err := hold(slot)
			if err == nil || !strings.Contains(err.Error(), "layers.0.proj") {
				t.Errorf("%s with a slot of %v %v: %v, want an error naming the layer", name, slot.MustSize(), slot.DType(), err)
			}
			if ad.held != nil {
				t.Fatalf("%s left a weight held after an error", name)
			}
		}
		slot.MustDrop()
	}
	if err := BackwardHeldWith([]*Adapter{ad}, nil); err == nil {
		t.Error("BackwardHeldWith with 1 adapter and 0 gradients was accepted")
	}
	ad.Train(false)
	slot := ts.MustZeros([]int64{30}, gotch.Float, gotch.CPU)
	defer slot.MustDrop()
	if err := ad.HoldReceived(slot); err != nil || ad.held != nil {
		t.Errorf("HoldReceived in eval mode: %v, held %v", err, ad.held != nil)
	}
}
