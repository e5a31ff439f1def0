package lrlora

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/optim"
)

var allMethods = adapter.Methods

// At initialisation ΔW is exactly zero for every method, and the adapted layer's
// output is bit-identical to the frozen layer's.
func TestInitialDeltaIsZero(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 6, 5, gotch.Float, 1)
	x := constTensor(t, randVals(3, 4*5), []int64{4, 5}, gotch.Float)
	frozen := ts.MustLinear(x, l.w0, l.bias)
	defer frozen.MustDrop()
	for _, m := range allMethods {
		t.Run(string(m), func(t *testing.T) {
			ad := newAdapter(t, l, spec(m, 2), 7)
			dw, err := ad.DeltaWeight()
			if err != nil {
				t.Fatal(err)
			}
			defer dw.Drop()
			for i, v := range read(t, dw) {
				if v != 0 {
					t.Fatalf("ΔW[%d] = %g at initialisation", i, v)
				}
			}
			y, err := ad.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			defer y.Drop()
			if !slices.Equal(read(t, y), read(t, frozen)) {
				t.Fatal("adapted output differs from the frozen layer's at initialisation")
			}
		})
	}
}

// docs/method.md §4: with a = 0, φ' = 0, so the first AdamW step (weight decay 0) moves only
// the amplitudes; B and β move from the second step (A still not: ∂L/∂A = Bᵀ·∂L/∂M
// and B was still zero when step 2's gradient was taken), and A from the third.
func TestOnlyAmplitudeMovesInFirstStep(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 6, 5, gotch.Float, 11)
	ad := newAdapter(t, l, spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 8 }), 12)
	x := constTensor(t, randVals(13, 4*5), []int64{4, 5}, gotch.Float)
	r := constTensor(t, randVals(14, 4*6), []int64{4, 6}, gotch.Float)
	opt, err := optim.NewAdamW(ad.TrainableParameters(), optim.AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()

	names := []string{".lora_A", ".lora_B", ".phi.amplitude", ".phi.bandwidth_raw"}
	snapshot := func() map[string][]float64 {
		s := map[string][]float64{}
		for _, n := range names {
			s[n] = read(t, tensorByName(t, ad, n))
		}
		return s
	}
	step := func() {
		if err := opt.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		backward(t, ad, x, r)
		if err := opt.Step(1e-2); err != nil {
			t.Fatal(err)
		}
	}
	wantMoved := []map[string]bool{
		{".phi.amplitude": true},
		{".phi.amplitude": true, ".lora_B": true, ".phi.bandwidth_raw": true},
		{".phi.amplitude": true, ".lora_B": true, ".phi.bandwidth_raw": true, ".lora_A": true},
	}
	for k, want := range wantMoved {
		before := snapshot()
		step()
		after := snapshot()
		for _, n := range names {
			moved := !slices.Equal(before[n], after[n])
			if moved != want[n] {
				t.Errorf("step %d: %s moved = %v, want %v", k+1, n, moved, want[n])
			}
		}
	}
}

// LoRA's ΔW is exactly s·B·A: compared with a float64 matmul in Go loops, for the
// standard scaling α/r and for rsLoRA's α/√r.
func TestLoRADeltaIsScaledBA(t *testing.T) {
	lockThread(t)
	const dOut, dIn, r = 5, 7, 4
	l := newLayer(t, dOut, dIn, gotch.Double, 21)
	for _, rs := range []bool{false, true} {
		t.Run(fmt.Sprintf("rslora=%v", rs), func(t *testing.T) {
			ad := newAdapter(t, l, spec(adapter.LoRA, r, func(s *adapter.Spec) { s.Alpha = 6; s.RSLoRA = rs }), 22)
			s := 6.0 / r
			if rs {
				s = 6.0 / math.Sqrt(r) // = 3, not 1.5
			}
			if ad.Scaling() != s {
				t.Fatalf("scaling %v, want %v", ad.Scaling(), s)
			}
			got, ba := deltaAndBA(t, ad, dOut, dIn, r, 23)
			for i, m := range ba {
				if want := s * m; math.Abs(got[i]-want) > 1e-14*(1+math.Abs(want)) {
					t.Fatalf("ΔW[%d,%d] = %.17g, s·(BA) = %.17g", i/dIn, i%dIn, got[i], want)
				}
			}
		})
	}
}

// SineLoRA's ΔW is s·sin(ω·BA)/√d_in, checked the same way.
func TestSineLoRADelta(t *testing.T) {
	lockThread(t)
	const dOut, dIn, r = 3, 4, 2
	l := newLayer(t, dOut, dIn, gotch.Double, 31)
	ad := newAdapter(t, l, spec(adapter.SineLoRA, r), 32)
	if ad.Spec().SineOmega != 200 {
		t.Fatalf("default ω = %v, want 200", ad.Spec().SineOmega)
	}
	got, ba := deltaAndBA(t, ad, dOut, dIn, r, 33)
	for i, m := range ba {
		want := 2 * math.Sin(200*m) / math.Sqrt(dIn) // s = α/r = 2
		if math.Abs(got[i]-want) > 1e-12 {
			t.Fatalf("ΔW[%d,%d] = %.17g, want %.17g", i/dIn, i%dIn, got[i], want)
		}
	}
}

// deltaAndBA draws ad's lora_B from seed and returns ΔW and B·A, both row-major
// dOut × dIn (the product summed on the host in float64), to check ΔW = f(B·A)
// entry by entry.
func deltaAndBA(t *testing.T, ad *Adapter, dOut, dIn, r int, seed uint64) (dw, ba []float64) {
	t.Helper()
	bv := randVals(seed, dOut*r)
	assign(t, tensorByName(t, ad, ".lora_B"), bv)
	av := read(t, tensorByName(t, ad, ".lora_A"))
	d, err := ad.DeltaWeight()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Drop()
	ba = make([]float64, dOut*dIn)
	for i := 0; i < dOut; i++ {
		for j := 0; j < dIn; j++ {
			for k := 0; k < r; k++ {
				ba[i*dIn+j] += bv[i*r+k] * av[k*dIn+j]
			}
		}
	}
	return read(t, d), ba
}

// Same seed, same A; A within Kaiming-uniform's bound 1/√d_in; B zero.
func TestInitIsDeterministic(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 8, 16, gotch.Float, 41)
	a1 := read(t, tensorByName(t, newAdapter(t, l, spec(adapter.LRLoRA, 4), 99), ".lora_A"))
	a2 := read(t, tensorByName(t, newAdapter(t, l, spec(adapter.LRLoRA, 4), 99), ".lora_A"))
	a3 := read(t, tensorByName(t, newAdapter(t, l, spec(adapter.LRLoRA, 4), 100), ".lora_A"))
	if !slices.Equal(a1, a2) || slices.Equal(a1, a3) {
		t.Fatal("A is not a function of the seed")
	}
	bound, maxAbs := 1/math.Sqrt(16), 0.0
	for _, v := range a1 {
		maxAbs = math.Max(maxAbs, math.Abs(v))
	}
	if maxAbs > bound || maxAbs < 0.8*bound {
		t.Errorf("max |A| = %v, want just under the bound %v", maxAbs, bound)
	}
	ad := newAdapter(t, l, spec(adapter.LRLoRA, 4), 99)
	for _, v := range read(t, tensorByName(t, ad, ".lora_B")) {
		if v != 0 {
			t.Fatal("B is not zero at initialisation")
		}
	}
	for _, v := range read(t, tensorByName(t, ad, ".phi.bandwidth_raw")) {
		if b := math.Log1p(math.Exp(v)); math.Abs(b-1) > 1e-7 {
			t.Fatalf("softplus(β) = %v at initialisation, want 1", b)
		}
	}
}

// LR-LoRA's ΔW is s·φ(B·A) for scalings other than the default s = 2 (lrlora puts s on
// the amplitudes of plain and centred φ): checked entry by entry against PhiValue in
// float64 on the host, with random amplitudes and b = softplus(β) = 1 (β's init). The
// fused float64 kernel evaluates each basis term to 1e-13 relative (phiop's tests) and
// sums K of them, so 1e-12·s·(1 + Σ|a_k|) bounds the difference with room to spare.
func TestLRLoRADeltaIsScaledPhi(t *testing.T) {
	lockThread(t)
	const dOut, dIn, r = 4, 5, 2
	l := newLayer(t, dOut, dIn, gotch.Double, 41)
	for _, c := range []struct {
		name             string
		alpha            float64
		rs, center, resi bool
	}{
		{"plain-alpha3", 3, false, false, false},
		{"plain-rslora", 4, true, false, false},
		{"center-alpha3", 3, false, true, false},
		{"residual-alpha3", 3, false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ad := newAdapter(t, l, spec(adapter.LRLoRA, r, func(s *adapter.Spec) {
				s.Alpha, s.RSLoRA, s.Center, s.Residual, s.Init = c.alpha, c.rs, c.center, c.resi, adapter.InitSmall
			}), 42)
			s := c.alpha / r
			if c.rs {
				s = c.alpha / math.Sqrt(r)
			}
			p := ad.Spec().Phi
			av := randVals(43, p.K)
			assign(t, tensorByName(t, ad, ".phi.amplitude"), av)
			g, err := p.GridPoints()
			if err != nil {
				t.Fatal(err)
			}
			sc, err := p.BasisScale()
			if err != nil {
				t.Fatal(err)
			}
			ones := make([]float64, p.K)
			var sumA float64
			for k := range ones {
				ones[k], sumA = 1, sumA+math.Abs(av[k])
			}
			phi := func(x float64) float64 { return PhiValue(p.Basis, sc, av, ones, g, x) }
			got, ba := deltaAndBA(t, ad, dOut, dIn, r, 44)
			for i, m := range ba {
				f := phi(m)
				if c.center || c.resi {
					f -= phi(0)
				}
				if c.resi {
					f += m
				}
				if want := s * f; math.Abs(got[i]-want) > 1e-12*s*(1+sumA) {
					t.Fatalf("ΔW[%d,%d] = %.17g, s·φ(BA) = %.17g (s = %v)", i/dIn, i%dIn, got[i], want, s)
				}
			}
		})
	}
}
