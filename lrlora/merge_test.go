package lrlora

import (
	"errors"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
)

// trainedAdapter returns an lrlora adapter with B ≠ 0, a ≠ 0 and β ≠ ln(e−1), as
// after some training, so that ΔW is a nonzero, non-low-rank matrix.
func trainedAdapter(t *testing.T, l layer, cfg adapter.Spec, seed uint64) *Adapter {
	t.Helper()
	ad := newAdapter(t, l, cfg, seed)
	r := cfg.R
	assign(t, tensorByName(t, ad, ".lora_B"), randVals(seed+1, int(l.dOut)*r))
	if cfg.Method == adapter.LRLoRA {
		k := ad.Spec().K
		amp := randVals(seed+2, k)
		beta := randVals(seed+3, k)
		for i := range beta {
			beta[i] = BandwidthRawInit + 0.3*beta[i]
		}
		assign(t, tensorByName(t, ad, ".phi.amplitude"), amp)
		assign(t, tensorByName(t, ad, ".phi.bandwidth_raw"), beta)
	}
	return ad
}

// The merged path x·(W0 + ΔW)ᵀ + bias equals the unmerged x·W0ᵀ + x·ΔWᵀ + bias
// (the dropout path's formula with the dropout mask left out). The two differ only
// in the order of floating-point sums: in float64 that is ~1e-15 relative, we
// allow 1e-12; in float32 ~1e-7 per sum of d_in = 24 terms, we allow 1e-5.
func TestMergedEqualsUnmerged(t *testing.T) {
	lockThread(t)
	for _, tc := range []struct {
		dtype gotch.DType
		tol   float64
	}{{gotch.Double, 1e-12}, {gotch.Float, 1e-5}} {
		for _, m := range allMethods {
			t.Run(tc.dtype.String()+"/"+string(m), func(t *testing.T) {
				l := newLayer(t, 10, 24, tc.dtype, 51)
				cfg := spec(m, 3, func(s *adapter.Spec) { s.SineOmega = 3; s.K = 12 })
				ad := trainedAdapter(t, l, cfg, 52)
				x := constTensor(t, randVals(53, 2*3*24), []int64{2, 3, 24}, tc.dtype)

				ad.Train(false)
				merged, err := ad.Forward(x)
				if err != nil {
					t.Fatal(err)
				}
				defer merged.Drop()
				split, err := ad.forwardSplit(x, x)
				if err != nil {
					t.Fatal(err)
				}
				defer split.Drop()
				a, b := read(t, merged), read(t, split)
				if d := maxRelDiff(a, b); d > tc.tol {
					t.Fatalf("merged vs unmerged: max relative difference %g > %g", d, tc.tol)
				}
				frozen := ts.MustLinear(x, l.w0, l.bias)
				defer frozen.MustDrop()
				if slices.Equal(a, read(t, frozen)) {
					t.Fatal("ΔW had no effect: the test would not see a broken merge")
				}

				// Export path: Merged() then a plain linear layer gives the eval
				// forward bit for bit (same ΔW, same addition, same matmul).
				w, err := ad.Merged()
				if err != nil {
					t.Fatal(err)
				}
				defer w.Drop()
				y := ts.MustLinear(x, w, l.bias)
				defer y.MustDrop()
				if !slices.Equal(read(t, y), a) {
					t.Fatal("linear(x, Merged()) differs from the eval-mode forward")
				}

				// Plain LoRA trains unmerged (x·W0ᵀ + s·(x·Aᵀ)·Bᵀ): the same function.
				if m == adapter.LoRA {
					ad.Train(true)
					defer ad.Train(false)
					low, err := ad.Forward(x)
					if err != nil {
						t.Fatal(err)
					}
					defer low.Drop()
					if d := maxRelDiff(a, read(t, low)); d > tc.tol {
						t.Fatalf("LoRA training (unmerged) vs eval (merged): max relative difference %g > %g", d, tc.tol)
					}
				}
			})
		}
	}
}

// With dropout > 0 the training forward takes the unmerged path with a random
// mask (so it differs from eval mode), and eval mode is the merged path.
func TestDropoutOnlyInTraining(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 10, 24, gotch.Double, 61)
	ad := trainedAdapter(t, l, spec(adapter.LoRA, 3, func(s *adapter.Spec) { s.Dropout = 0.5 }), 62)
	x := constTensor(t, randVals(63, 8*24), []int64{8, 24}, gotch.Double)
	ad.Train(false)
	eval, err := ad.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	defer eval.Drop()
	split, err := ad.forwardSplit(x, x)
	if err != nil {
		t.Fatal(err)
	}
	defer split.Drop()
	if d := maxRelDiff(read(t, eval), read(t, split)); d > 1e-12 {
		t.Fatalf("eval mode with dropout is not the merged path: %g", d)
	}
	ad.Train(true)
	train, err := ad.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	defer train.Drop()
	if maxRelDiff(read(t, train), read(t, eval)) < 1e-6 {
		t.Fatal("training forward with dropout 0.5 equals the eval forward")
	}
}

// Merge refuses NaN and Inf and names the adapter; a finite merge is W0 + ΔW.
func TestMergeRejectsNonFinite(t *testing.T) {
	lockThread(t)
	w0 := constTensor(t, []float64{1, 2, 3, 4}, []int64{2, 2}, gotch.Float)
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		delta := constTensor(t, []float64{0, bad, 0, 0}, []int64{2, 2}, gotch.Float)
		out, err := Merge(w0, delta, "model.layers.3.mlp.up_proj")
		if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "model.layers.3.mlp.up_proj") {
			t.Fatalf("merge with %v: err %v, want ErrNonFinite naming the adapter", bad, err)
		}
		if out != nil {
			t.Fatal("merge returned a tensor together with an error")
		}
	}
	// float64 ΔW into a float32 W0: cast, then added.
	delta := constTensor(t, []float64{0.5, 0, -1, 0}, []int64{2, 2}, gotch.Double)
	out, err := Merge(w0, delta, "ok")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Drop()
	if got := read(t, out); !slices.Equal(got, []float64{1.5, 2, 2, 4}) || out.DType() != gotch.Float {
		t.Fatalf("merge = %v (%v)", got, out.DType())
	}
	if !slices.Equal(read(t, w0), []float64{1, 2, 3, 4}) {
		t.Fatal("merge changed W0")
	}
	wrong := constTensor(t, []float64{1, 2}, []int64{1, 2}, gotch.Float)
	if _, err := Merge(w0, wrong, "x"); !errors.Is(err, ErrShape) {
		t.Fatalf("shape mismatch: %v", err)
	}

	// Through adapters: a NaN amplitude (LR-LoRA) or a NaN in B (LoRA) poisons ΔW,
	// and Merged names the adapter.
	l := newLayer(t, 3, 4, gotch.Float, 71)
	lr := newAdapter(t, l, spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 4 }), 72)
	assign(t, tensorByName(t, lr, ".lora_B"), randVals(73, 6))
	assign(t, tensorByName(t, lr, ".phi.amplitude"), []float64{0.1, math.NaN(), 0.2, 0.3})
	lo := newAdapter(t, l, spec(adapter.LoRA, 2), 74)
	assign(t, tensorByName(t, lo, ".lora_B"), []float64{0, 0, math.NaN(), 0, 0, 0})
	for _, ad := range []*Adapter{lr, lo} {
		if _, err := ad.Merged(); !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), ad.Name()) {
			t.Fatalf("%v: Merged with a NaN parameter: %v", ad.Spec().Method, err)
		}
	}
}

// Forward, backward, Merged and StableRank free every gotch handle they create
// (counted with the GC off, so finalizers cannot hide a leak).
func TestNoLeakedHandles(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 6, 5, gotch.Float, 121)
	x := constTensor(t, randVals(122, 4*5), []int64{4, 5}, gotch.Float)
	r := constTensor(t, randVals(123, 4*6), []int64{4, 6}, gotch.Float)
	for _, cfg := range []adapter.Spec{spec(adapter.LRLoRA, 2), spec(adapter.SineLoRA, 2),
		spec(adapter.LoRA, 2, func(s *adapter.Spec) { s.Dropout = 0.1 })} {
		ad := trainedAdapter(t, l, cfg, 124)
		run := func() {
			backward(t, ad, x, r)
			w, err := ad.Merged()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := StableRank(w); err != nil {
				t.Fatal(err)
			}
			w.Drop()
		}
		run() // creates the gradient tensors once
		old := debug.SetGCPercent(-1)
		before := len(ts.ExistingTensors)
		for i := 0; i < 3; i++ {
			run()
		}
		after := len(ts.ExistingTensors)
		debug.SetGCPercent(old)
		if after != before {
			t.Errorf("%v: %d live tensor handles before, %d after three rounds", cfg.Method, before, after)
		}
	}
}
