package lrlora

import (
	"math"
	"slices"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
)

// The identity fit makes φ ≈ x on [−L, L] at b = 1 for every basis, odd about 0.
// Bounds hold the measured values (K = 50, L = 3; see the log) with a small margin:
// sup|φ(x) − x| 0.048 (sinc), 0.036 (gaussian), 0.041 (sinc on Chebyshev), 0.22 for
// B-splines, whose last basis functions end at ±L; φ(0) ≤ 1e-12 (odd by symmetry);
// φ'(0) 0.974–1.000 (the ridge shrinks the slope).
func TestIdentityAmplitudes(t *testing.T) {
	for _, c := range []struct {
		basis        adapter.Basis
		grid         adapter.Grid
		sup, at0, d0 float64
	}{
		{adapter.Sinc, adapter.Uniform, 0.06, 1e-9, 0.03},
		{adapter.Gaussian, adapter.Uniform, 0.05, 1e-9, 0.03},
		{adapter.BSpline, adapter.Uniform, 0.25, 1e-9, 0.01},
		{adapter.Sinc, adapter.Chebyshev, 0.05, 1e-9, 0.03},
	} {
		p := adapter.Default().Phi
		p.Basis, p.Grid, p.Init = c.basis, c.grid, adapter.InitIdentity
		a, err := InitialAmplitudes(p)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := p.GridPoints()
		sc, _ := p.BasisScale()
		ones := slices.Repeat([]float64{1}, p.K)
		phi := func(x float64) float64 { return PhiValue(p.Basis, sc, a, ones, g, x) }
		var sup float64
		for x := -p.L; x <= p.L; x += p.L / 997 {
			sup = math.Max(sup, math.Abs(phi(x)-x))
		}
		const h = 1e-5
		d0 := (phi(h) - phi(-h)) / (2 * h)
		t.Logf("%v/%v: sup|φ(x) − x| on [−L, L] %.3g, φ(0) %.3g, φ'(0) %.6f, max|a| %.3g",
			c.basis, c.grid, sup, phi(0), d0, maxAbs(a))
		if sup > c.sup || math.Abs(phi(0)) > c.at0 || math.Abs(d0-1) > c.d0 {
			t.Errorf("%v/%v: identity fit off: sup %.3g, φ(0) %.3g, φ'(0) %.6f", c.basis, c.grid, sup, phi(0), d0)
		}
	}
}

func maxAbs(v []float64) float64 {
	var m float64
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

// init small sets every a_k; init zero leaves a = 0 (the paper's).
func TestSmallAndZeroInit(t *testing.T) {
	p := adapter.Default().Phi
	a, err := InitialAmplitudes(p)
	if err != nil || maxAbs(a) != 0 {
		t.Fatalf("zero init: %v, %v", a, err)
	}
	p.Init, p.InitValue = adapter.InitSmall, 0.1
	a, _ = InitialAmplitudes(p)
	for k, v := range a {
		if v != 0.1 {
			t.Fatalf("small init: a_%d = %v", k, v)
		}
	}
}

// A residual adapter at initialisation (a = 0) is LoRA: same ΔW = s·B·A bit for bit
// once B ≠ 0, and the same gradients for A and B at step 0 (B = 0) and after.
func TestResidualAdapterIsLoRAAtInit(t *testing.T) {
	lockThread(t)
	for _, dtype := range []gotch.DType{gotch.Double, gotch.Float} {
		l := newLayer(t, 6, 5, dtype, 31)
		res := newAdapter(t, l, spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.Residual = true }), 32)
		lora := newAdapter(t, l, spec(adapter.LoRA, 2), 32)
		lora.Train(false) // the merged path, as LR-LoRA runs it
		res.Train(false)
		x := constTensor(t, randVals(33, 4*5), []int64{4, 5}, dtype)
		r := constTensor(t, randVals(34, 4*6), []int64{4, 6}, dtype)
		for _, bNonZero := range []bool{false, true} {
			if bNonZero {
				for _, ad := range []*Adapter{res, lora} {
					assign(t, tensorByName(t, ad, ".lora_B"), randVals(35, 6*2))
				}
			}
			grads := map[*Adapter][][]float64{}
			for _, ad := range []*Adapter{res, lora} {
				backward(t, ad, x, r)
				for _, name := range []string{".lora_A", ".lora_B"} {
					p := tensorByName(t, ad, name)
					g := p.MustGrad(false)
					grads[ad] = append(grads[ad], read(t, g))
					g.MustZero_()
					g.Drop()
				}
				dw, err := ad.DeltaWeight()
				if err != nil {
					t.Fatal(err)
				}
				grads[ad] = append(grads[ad], read(t, dw))
				dw.Drop()
			}
			for i, what := range []string{"∂A", "∂B", "ΔW"} {
				if !slices.Equal(grads[res][i], grads[lora][i]) {
					t.Errorf("%v, B ≠ 0 %v: %s differs: residual %v, LoRA %v", dtype, bNonZero, what, grads[res][i], grads[lora][i])
				}
			}
		}
	}
}

func TestIsPhiParameter(t *testing.T) {
	for name, want := range map[string]bool{
		"m.layers.0.q_proj.phi.amplitude": true, "m.layers.0.q_proj.phi.bandwidth_raw": true,
		"phi_shared.amplitude": true, "phi_shared.bandwidth_raw": true,
		"m.layers.0.q_proj.phi.grid": false, "m.layers.0.q_proj.lora_A": false, "score.weight": false,
	} {
		if IsPhiParameter(name) != want {
			t.Errorf("IsPhiParameter(%q) = %v", name, !want)
		}
	}
}

// phi.fixed_bandwidth keeps β out of the trainable list (own or shared), leaves it
// without requires-grad, and backward still reaches a, A and B: K fewer parameters.
func TestFixedBandwidthIsNotTrained(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 6, 5, gotch.Float, 41)
	fixed := func(s *adapter.Spec) { s.FixedBandwidth, s.Init = true, adapter.InitSmall }
	learned := newAdapter(t, l, spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.Init = adapter.InitSmall }), 42)
	ad := newAdapter(t, l, spec(adapter.LRLoRA, 2, fixed), 42)
	nl, _ := learned.NumParameters()
	nf, err := ad.NumParameters()
	if err != nil || nl-nf != int64(ad.Spec().K) {
		t.Fatalf("parameters: learned %d, fixed %d (%v), want %d fewer", nl, nf, err, ad.Spec().K)
	}
	for _, p := range ad.TrainableParameters() {
		if p.Name == ad.Name()+".phi.bandwidth_raw" {
			t.Fatalf("β is trainable under fixed_bandwidth")
		}
	}
	beta := tensorByName(t, ad, ".phi.bandwidth_raw")
	if beta.MustRequiresGrad() {
		t.Fatal("β requires grad under fixed_bandwidth")
	}
	assign(t, tensorByName(t, ad, ".lora_B"), randVals(43, 6*2))
	x := constTensor(t, randVals(44, 4*5), []int64{4, 5}, gotch.Float)
	r := constTensor(t, randVals(45, 4*6), []int64{4, 6}, gotch.Float)
	backward(t, ad, x, r)
	for _, name := range []string{".lora_A", ".lora_B", ".phi.amplitude"} {
		g := tensorByName(t, ad, name).MustGrad(false)
		if maxAbs(read(t, g)) == 0 {
			t.Errorf("%s: zero gradient", name)
		}
		g.Drop()
	}
	// Shared bandwidth: the shared β is listed once, as a buffer.
	p := spec(adapter.LRLoRA, 2, fixed).Phi
	p.Share = adapter.ShareBandwidth
	sh, err := NewSharedPhi(p, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	for _, nt := range sh.Tensors() {
		if nt.Name == SharedPhiPrefix+".bandwidth_raw" && nt.Trainable {
			t.Error("shared β is trainable under fixed_bandwidth")
		}
	}
}
