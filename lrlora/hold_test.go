package lrlora

import (
	"runtime/debug"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/phiop"
)

// stepGrads zeroes ad's gradients, runs backward of Σ ad(x_n)⊙r_n for each
// micro-batch n, with HoldDelta before the first and BackwardHeld after the last when
// hold is set, and returns every y_n, then every trainable parameter's gradient, and
// the φ op's CPU passes the step took.
func stepGrads(t *testing.T, ad *Adapter, xs, rs []*ts.Tensor, hold bool) ([][]float64, int64) {
	t.Helper()
	for _, p := range ad.TrainableParameters() {
		if g, err := p.Tensor.Grad(false); err == nil {
			if ok, _ := g.Defined(); ok {
				if err := g.Zero_(); err != nil {
					t.Fatal(err)
				}
			}
			g.Drop()
		}
	}
	passes := phiop.Passes()
	if hold {
		if err := ad.HoldDelta(); err != nil {
			t.Fatal(err)
		}
	}
	var out [][]float64
	for n := range xs {
		y, err := ad.Forward(xs[n])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, read(t, y))
		s := weightedSum(t, y, rs[n])
		y.Drop()
		if err := s.Backward(); err != nil {
			t.Fatal(err)
		}
		s.Drop()
	}
	if hold {
		if err := BackwardHeld([]*Adapter{ad}); err != nil {
			t.Fatal(err)
		}
	}
	passes = phiop.Passes() - passes
	for _, p := range ad.TrainableParameters() {
		g := p.Tensor.MustGrad(false)
		out = append(out, read(t, g))
		g.MustDrop()
	}
	return out, passes
}

// A step of three micro-batches with ΔW held (formed once, its backward run once
// with the summed gradient) gives the outputs and gradients of the same step with ΔW
// formed per micro-batch: ∂L/∂(B, A, a, β) is linear in ∂L/∂ΔW, so φ's backward on
// the sum equals the sum of its backwards. Only the order of the sums differs: in
// float64 a few roundings of 1e-16 relative (1e-12 allowed); with a bfloat16 backbone
// the per-micro-batch path rounds each ∂L/∂ΔW to bfloat16 before summing in float32
// and the held one sums in float32 after the same rounding, so they agree to float32
// rounding of three terms (1e-5 allowed; a wrong term is off by O(1)). The held W_eff
// form gives bit-identical outputs (the same W0 + ΔW, the same product); the ΔW form
// (dropout, or a backbone in another dtype) adds W0 per pass as the default path does,
// so it is bit-identical too. The φ op runs twice per step held, 2 × 3 times per
// micro-batch; SineLoRA has no φ op.
func TestHeldDeltaMatchesPerMicroBatch(t *testing.T) {
	lockThread(t)
	k8 := func(s *adapter.Spec) { s.K = 8 }
	for _, tc := range []struct {
		name   string
		dtype  gotch.DType
		cfg    adapter.Spec
		weff   bool
		passes int64 // φ op passes per step, held
		tol    float64
	}{
		{"lrlora/float64", gotch.Double, spec(adapter.LRLoRA, 2, k8), true, 2, 1e-12},
		{"lrlora-residual/float64", gotch.Double, spec(adapter.LRLoRA, 2, k8, func(s *adapter.Spec) { s.Residual = true }), true, 2, 1e-12},
		// The dropout (unmerged) path. lrlora draws its masks from libtorch's generator,
		// which gotch cannot seed, so p is 1e-9: both runs keep all 60 inputs but for a
		// chance of 6e-8, and scale them by the same 1/(1 − p).
		{"lrlora-dropout/float64", gotch.Double, spec(adapter.LRLoRA, 2, k8, func(s *adapter.Spec) { s.Dropout = 1e-9 }), false, 2, 1e-12},
		{"sinelora/float64", gotch.Double, spec(adapter.SineLoRA, 2), true, 0, 1e-12},
		{"lrlora/float32", gotch.Float, spec(adapter.LRLoRA, 2, k8), true, 2, 1e-5},
		{"lrlora/bfloat16", gotch.BFloat16, spec(adapter.LRLoRA, 2, k8), false, 2, 1e-5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayer(t, 6, 5, tc.dtype, 41)
			ad := trainedAdapter(t, l, tc.cfg, 42)
			var xs, rs []*ts.Tensor
			for n := range 3 {
				x := constTensor(t, randVals(uint64(43+2*n), 4*5), []int64{4, 5}, tc.dtype)
				r := constTensor(t, randVals(uint64(44+2*n), 4*6), []int64{4, 6}, tc.dtype)
				defer x.MustDrop()
				defer r.MustDrop()
				xs, rs = append(xs, x), append(rs, r)
			}
			want, perPasses := stepGrads(t, ad, xs, rs, false)
			if err := ad.HoldDelta(); err != nil {
				t.Fatal(err)
			}
			if ad.held == nil || ad.held.weff != tc.weff {
				t.Fatalf("held %+v, want the W_eff form %v", ad.held, tc.weff)
			}
			ad.ReleaseDelta()
			got, heldPasses := stepGrads(t, ad, xs, rs, true)
			if ad.held != nil {
				t.Fatal("BackwardHeld left the weight held")
			}
			if heldPasses != tc.passes || perPasses != 3*tc.passes {
				t.Errorf("φ passes: %d held, %d per micro-batch; want %d and %d", heldPasses, perPasses, tc.passes, 3*tc.passes)
			}
			for i := range want {
				tol := tc.tol
				if i < len(xs) {
					tol = 0 // outputs
				}
				if d := maxRelDiff(got[i], want[i]); d > tol {
					t.Errorf("output %d (first the %d micro-batches' y, then the gradients): max relative difference %.3g, want ≤ %g", i, len(xs), d, tol)
				}
				if i >= len(xs) && maxAbs(want[i]) == 0 {
					t.Errorf("output %d: gradient identically zero, the comparison proves nothing", i)
				}
			}
		})
	}
}

// Holds: only training adapters whose forward forms ΔW hold it.
func TestHoldsOnlyWhereForwardFormsDelta(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 6, 5, gotch.Float, 51)
	for _, tc := range []struct {
		name  string
		cfg   adapter.Spec
		setup func(*Adapter)
		want  bool
	}{
		{"lrlora", spec(adapter.LRLoRA, 2), func(*Adapter) {}, true},
		{"lrlora eval", spec(adapter.LRLoRA, 2), func(a *Adapter) { a.Train(false) }, false},
		{"lrlora recompute_delta", spec(adapter.LRLoRA, 2), func(a *Adapter) { a.SetRecomputeDelta(true) }, false},
		{"lrlora recompute_delta with dropout", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.Dropout = 0.1 }),
			func(a *Adapter) { a.SetRecomputeDelta(true) }, true},
		{"lora (trains unmerged)", spec(adapter.LoRA, 2), func(*Adapter) {}, false},
		{"sinelora", spec(adapter.SineLoRA, 2), func(*Adapter) {}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ad := newAdapter(t, l, tc.cfg, 52)
			tc.setup(ad)
			if got := ad.Holds(); got != tc.want {
				t.Fatalf("Holds() = %v, want %v", got, tc.want)
			}
			if err := ad.HoldDelta(); err != nil {
				t.Fatal(err)
			}
			if (ad.held != nil) != tc.want {
				t.Fatalf("HoldDelta held %v, want %v", ad.held != nil, tc.want)
			}
			ad.ReleaseDelta()
		})
	}
}

// The held weight's life: a second HoldDelta is refused, BackwardHeld with no pass in
// between changes no gradient and releases it, Close releases it too, and none of it
// leaves a tensor behind.
func TestHeldDeltaLifecycle(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 6, 5, gotch.Float, 61)
	ad := trainedAdapter(t, l, spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 8 }), 62)
	old := debug.SetGCPercent(-1) // finalizers would hide a leaked handle
	defer debug.SetGCPercent(old)
	live := len(ts.ExistingTensors)
	if err := ad.HoldDelta(); err != nil {
		t.Fatal(err)
	}
	if err := ad.HoldDelta(); err == nil {
		t.Fatal("a second HoldDelta was accepted")
	}
	if err := BackwardHeld([]*Adapter{ad}); err != nil {
		t.Fatalf("BackwardHeld without a pass: %v", err)
	}
	if ad.held != nil {
		t.Fatal("still held")
	}
	for _, p := range ad.TrainableParameters() {
		g := p.Tensor.MustGrad(false)
		if g.MustDefined() {
			t.Errorf("%s has a gradient after a step without passes", p.Name)
		}
		g.MustDrop()
	}
	if err := ad.HoldDelta(); err != nil {
		t.Fatalf("HoldDelta after BackwardHeld: %v", err)
	}
	ad.Close()
	if ad.held != nil {
		t.Fatal("Close left the weight held")
	}
	if err := BackwardHeld([]*Adapter{ad}); err != nil {
		t.Fatalf("BackwardHeld on a closed adapter: %v", err)
	}
	// Close dropped the adapter's own tensors (A, B, a, β, the grid): 5 handles.
	if n := len(ts.ExistingTensors); n != live-5 {
		t.Errorf("%d live tensor handles, want %d (before: %d, less the adapter's 5)", n, live-5, live)
	}
}

// side is the d_in = d_out of weightSizedAdapter's layer: its d_out×d_in float32
// tensors (1 MiB) are blocks the caching allocator counts (64 KiB or more), while B, A
// and the K-vectors are below 64 KiB.
const side = 512

// weightSizedAdapter installs the caching allocator (its in-use bytes measure what a
// weight keeps) and returns a trained-looking rank-4 LR-LoRA adapter on a side×side
// float32 layer, drawn from seed.
func weightSizedAdapter(t *testing.T, seed uint64) *Adapter {
	t.Helper()
	if err := phiop.InstallCachingAllocator(64 << 20); err != nil {
		t.Fatal(err)
	}
	return trainedAdapter(t, newLayer(t, side, side, gotch.Float, seed), spec(adapter.LRLoRA, 4), seed+1)
}

// What a held LR-LoRA weight keeps for the step: W_eff alone (the leaf shares the
// node's output), not M = B·A beside it, which the node recomputes in backward. The
// caching allocator's in-use bytes count blocks of 64 KiB or more: a 512² float32
// tensor is 1 MiB; B, A and the K-vectors are below 64 KiB. After BackwardHeld the
// gradients of B, A, a and β exist (small) and nothing weight-sized is left.
func TestHeldDeltaKeepsOnlyTheWeight(t *testing.T) {
	lockThread(t)
	ad := weightSizedAdapter(t, 51)
	before := phiop.CachingAllocatorStats().InUseBytes
	if err := ad.HoldDelta(); err != nil {
		t.Fatal(err)
	}
	if held := phiop.CachingAllocatorStats().InUseBytes - before; held != side*side*4 {
		t.Errorf("held LR-LoRA weight keeps %d bytes in blocks ≥ 64 KiB, want %d (W_eff, not M beside it)", held, side*side*4)
	}
	x := constTensor(t, randVals(53, 3*side), []int64{3, side}, gotch.Float)
	y, err := ad.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	loss := y.MustSum(gotch.Float, true)
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	loss.MustDrop()
	if err := BackwardHeld([]*Adapter{ad}); err != nil {
		t.Fatal(err)
	}
	for _, p := range ad.TrainableParameters() {
		g := p.Tensor.MustGrad(false)
		ok := g.MustDefined()
		g.MustDrop()
		if !ok {
			t.Errorf("%s has no gradient after BackwardHeld", p.Name)
		}
	}
	if after := phiop.CachingAllocatorStats().InUseBytes; after != before {
		t.Errorf("in use %d bytes after BackwardHeld, want %d as before HoldDelta", after, before)
	}
}

// The same in a plain training forward (ΔW formed for the pass): until backward the
// graph keeps W_eff for the product's ∂x, and not M beside it (composed op by op, φ's
// node kept M: 2 MiB here).
func TestForwardKeepsOnlyTheWeight(t *testing.T) {
	lockThread(t)
	ad := weightSizedAdapter(t, 61)
	// x requires grad, as a layer's input inside a model does: then the product keeps
	// W_eff for ∂x.
	x := constTensor(t, randVals(63, 3*side), []int64{3, side}, gotch.Float).MustSetRequiresGrad(true, false)
	before := phiop.CachingAllocatorStats().InUseBytes
	y, err := ad.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if kept := phiop.CachingAllocatorStats().InUseBytes - before; kept != side*side*4 {
		t.Errorf("a training forward keeps %d bytes in blocks ≥ 64 KiB until backward, want %d (W_eff, not M beside it)", kept, side*side*4)
	}
	loss := y.MustSum(gotch.Float, true)
	y.MustDrop()
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	loss.MustDrop()
	if after := phiop.CachingAllocatorStats().InUseBytes; after != before {
		t.Errorf("in use %d bytes after backward, want %d as before forward", after, before)
	}
}

// HoldDeltaInto holds an LR-LoRA weight in the caller's slot itself: no block beyond
// the buffer (the caching allocator's in-use bytes do not grow), the same values as
// HoldDelta's, and the buffer's memory released once the weight is and the caller's
// handles are dropped.
func TestHoldDeltaIntoKeepsNoCopy(t *testing.T) {
	lockThread(t)
	ad := weightSizedAdapter(t, 71)
	if err := ad.HoldDelta(); err != nil {
		t.Fatal(err)
	}
	want := ad.held.leaf.MustDetach(false)
	defer want.MustDrop()
	ad.ReleaseDelta()
	start := phiop.CachingAllocatorStats().InUseBytes
	flat := ts.MustZeros([]int64{2 * side * side}, gotch.Float, gotch.CPU)
	slot := flat.MustNarrow(0, side*side, side*side, false)
	before := phiop.CachingAllocatorStats().InUseBytes
	if err := ad.HoldDeltaInto(slot); err != nil {
		t.Fatal(err)
	}
	if grew := phiop.CachingAllocatorStats().InUseBytes - before; grew != 0 {
		t.Errorf("HoldDeltaInto allocated %d bytes in blocks ≥ 64 KiB beside the slot, want 0", grew)
	}
	if !ad.held.leaf.MustEqual(want, false) {
		t.Error("the weight held in the slot differs from HoldDelta's")
	}
	slot.MustDrop()
	flat.MustDrop()
	ad.ReleaseDelta()
	if after := phiop.CachingAllocatorStats().InUseBytes; after != start {
		t.Errorf("in use %d bytes after the release and the drops, want %d", after, start)
	}
}
