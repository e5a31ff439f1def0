package lrlora

import (
	"math"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
)

// Autograd's gradients of L = Σ forward(x) ⊙ R with respect to A, B, a and β agree
// with central finite differences in float64, for every method and basis. With
// step h = 1e-6 the truncation error is O(h²·f”') ≈ 1e-12·f”' and the rounding
// error O(ε·|L|/h) ≈ 1e-10·|L|, so we allow 1e-6 relative to (1 + |gradient|).
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	lockThread(t)
	cases := []struct {
		name string
		cfg  adapter.Spec
	}{
		{"lrlora-sinc", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 6; s.Basis = adapter.Sinc })},
		{"lrlora-gaussian", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 6; s.Basis = adapter.Gaussian })},
		{"lrlora-bspline", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 6; s.Basis = adapter.BSpline; s.L = 1.5 })},
		{"lrlora-chebyshev", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 6; s.Grid = adapter.Chebyshev })},
		{"lrlora-center", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 6; s.Center, s.Init = true, adapter.InitSmall })},
		{"lrlora-residual", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 6; s.Residual = true })},
		{"lrlora-residual-bspline", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) {
			s.K = 6
			s.Basis = adapter.BSpline
			s.L = 1.5
			s.Residual = true
		})},
		// s ≠ 2 (s rides on the amplitudes for plain and centred φ): s = 2√2 and s = 1.5.
		{"lrlora-rslora", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 6; s.RSLoRA = true })},
		{"lrlora-center-alpha3", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 6; s.Center, s.Init, s.Alpha = true, adapter.InitSmall, 3 })},
		{"lrlora-residual-alpha3", spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 6; s.Residual, s.Alpha = true, 3 })},
		{"lora", spec(adapter.LoRA, 2, func(s *adapter.Spec) { s.RSLoRA = true })},
		{"sinelora", spec(adapter.SineLoRA, 2)},
	}
	for _, tc := range cases {
		for _, recompute := range []bool{false, true} {
			name := tc.name
			if recompute {
				name += "/recompute-delta"
			}
			t.Run(name, func(t *testing.T) { checkGradientsByFiniteDifferences(t, tc.cfg, recompute) })
		}
	}
}

// checkGradientsByFiniteDifferences compares every trainable parameter's autograd
// gradient with central differences of the loss in float64 (SetRecomputeDelta as
// given: both of LR-LoRA's training paths are checked against the same reference).
func checkGradientsByFiniteDifferences(t *testing.T, cfg adapter.Spec, recompute bool) {
	l := newLayer(t, 3, 4, gotch.Double, 81)
	ad := trainedAdapter(t, l, cfg, 82)
	ad.SetRecomputeDelta(recompute)
	x := constTensor(t, randVals(83, 5*4), []int64{5, 4}, gotch.Double)
	r := constTensor(t, randVals(84, 5*3), []int64{5, 3}, gotch.Double)
	loss := func() float64 {
		s := forwardLoss(t, ad, x, r)
		defer s.Drop()
		return read(t, s)[0]
	}

	backward(t, ad, x, r)

	const h = 1e-6
	for _, p := range ad.TrainableParameters() {
		g := p.Tensor.MustGrad(false)
		auto := read(t, g)
		g.MustDrop()
		vals := read(t, p.Tensor)
		var worst float64
		for i := range vals {
			orig := vals[i]
			vals[i] = orig + h
			assign(t, p.Tensor, vals)
			up := loss()
			vals[i] = orig - h
			assign(t, p.Tensor, vals)
			down := loss()
			vals[i] = orig
			assign(t, p.Tensor, vals)
			fd := (up - down) / (2 * h)
			worst = math.Max(worst, math.Abs(auto[i]-fd)/(1+math.Abs(fd)))
		}
		t.Logf("%s: max relative error %.3g", p.Name, worst)
		if worst > 1e-6 {
			t.Errorf("%s: autograd vs finite differences: max relative error %g", p.Name, worst)
		}
		if allZero(auto) {
			t.Errorf("%s: gradient is identically zero, the check proves nothing", p.Name)
		}
	}
}

func allZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}
