package lrlora

import (
	"fmt"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
)

// gradsOf runs Σ ad(x)⊙r backward with SetRecomputeDelta(recompute) on fresh
// gradients and returns y and the gradients of x and of every trainable parameter.
func gradsOf(t *testing.T, ad *Adapter, x, r *ts.Tensor, recompute bool) [][]float64 {
	t.Helper()
	ad.SetRecomputeDelta(recompute)
	for _, p := range append(ad.TrainableParameters(), ts.NamedTensor{Tensor: x}) {
		if g, err := p.Tensor.Grad(false); err == nil {
			if ok, _ := g.Defined(); ok {
				if err := g.Zero_(); err != nil {
					t.Fatal(err)
				}
			}
			g.Drop()
		}
	}
	y, err := ad.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	out := [][]float64{read(t, y)}
	s := weightedSum(t, y, r)
	y.Drop()
	if err := s.Backward(); err != nil {
		t.Fatal(err)
	}
	s.Drop()
	for _, p := range append(ad.TrainableParameters(), ts.NamedTensor{Tensor: x}) {
		g := p.Tensor.MustGrad(false)
		out = append(out, read(t, g))
		g.MustDrop()
	}
	return out
}

// SetRecomputeDelta changes what LR-LoRA keeps for backward, not what it computes:
// y is the same calls on the same values (bit-identical), and the gradients differ at
// most by the order in which a GEMM sums the same products (∂W_eff is Gᵀ·x in the
// node and (xᵀ·G)ᵀ under autograd), a few float32 roundings of the largest term for
// these 7-token sums: 1e-5 relative covers that and no wrong term. Backbones in
// float32 and bfloat16 (adapters in float32, ΔW cast to the backbone's dtype), each
// φ variant.
func TestRecomputeDeltaMatchesDefault(t *testing.T) {
	lockThread(t)
	variants := map[string]func(*adapter.Spec){
		"plain":    func(s *adapter.Spec) {},
		"center":   func(s *adapter.Spec) { s.Center, s.Init = true, adapter.InitSmall },
		"residual": func(s *adapter.Spec) { s.Residual = true },
	}
	for _, dtype := range []gotch.DType{gotch.Float, gotch.BFloat16} {
		for name, edit := range variants {
			t.Run(fmt.Sprintf("%v/%s", dtype, name), func(t *testing.T) {
				l := newLayer(t, 6, 5, dtype, 31)
				ad := trainedAdapter(t, l, spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 8 }, edit), 32)
				x := constTensor(t, randVals(33, 7*5), []int64{7, 5}, dtype).MustSetRequiresGrad(true, false)
				defer x.MustDrop()
				r := constTensor(t, randVals(34, 7*6), []int64{7, 6}, dtype)
				want := gradsOf(t, ad, x, r, false)
				got := gradsOf(t, ad, x, r, true)
				for i := range want {
					d := maxRelDiff(got[i], want[i])
					tol := 1e-5
					if i == 0 {
						tol = 0
					}
					if d > tol {
						t.Errorf("output %d (0: y, then the parameters' and x's gradients): max relative difference %.3g, want ≤ %g", i, d, tol)
					}
					if i > 0 && maxAbs(want[i]) == 0 {
						t.Errorf("output %d: gradient identically zero, the comparison proves nothing", i)
					}
				}
			})
		}
	}
}
