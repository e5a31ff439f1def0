package lrlora

import (
	"math"
	"slices"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
)

// The failure mode as inspect reports it: plain φ with a ≠ 0 and B = 0 makes ΔW the
// constant s·φ(0) (share 1); centring removes it (share 0, φ(0) = 0) and keeps the
// paper's φ(0) in RawPhi0; φ'(0) matches central differences of φ; residual adds 1.
func TestOffset(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 6, 5, gotch.Double, 41)
	small := func(s *adapter.Spec) { s.Init, s.InitValue = adapter.InitSmall, 0.1 }
	plain := newAdapter(t, l, spec(adapter.LRLoRA, 2, small), 42)
	centred := newAdapter(t, l, spec(adapter.LRLoRA, 2, small, func(s *adapter.Spec) { s.Center = true }), 42)
	residual := newAdapter(t, l, spec(adapter.LRLoRA, 2, small, func(s *adapter.Spec) { s.Residual = true }), 42)

	p := adapter.Default().Phi
	g, _ := p.GridPoints()
	a := slices.Repeat([]float64{0.1}, p.K)
	ones := slices.Repeat([]float64{1}, p.K)
	phi0 := PhiValue(p.Basis, 1, a, ones, g, 0)
	const h = 1e-5
	slope := (PhiValue(p.Basis, 1, a, ones, g, h) - PhiValue(p.Basis, 1, a, ones, g, -h)) / (2 * h)
	if math.Abs(phi0) < 0.1 {
		t.Fatalf("φ(0) = %v is too small to see", phi0)
	}

	o, err := plain.Offset()
	if err != nil {
		t.Fatal(err)
	}
	// ΔW is one constant in float64: the share is 1 to rounding of N = 30 squares.
	if math.Abs(o.Phi0-phi0) > 1e-12 || o.RawPhi0 != o.Phi0 || math.Abs(o.ConstShare-1) > 1e-12 ||
		math.Abs(o.Slope0-slope) > 1e-8 {
		t.Errorf("plain: %+v, want φ(0) %v, φ'(0) %v, share 1", o, phi0, slope)
	}
	o, err = centred.Offset()
	if err != nil {
		t.Fatal(err)
	}
	if o.Phi0 != 0 || math.Abs(o.RawPhi0-phi0) > 1e-12 || o.ConstShare != 0 {
		t.Errorf("centred: %+v, want φ(0) 0, raw %v, share 0 (ΔW = 0)", o, phi0)
	}
	assign(t, tensorByName(t, residual, ".lora_B"), randVals(43, 6*2))
	o, err = residual.Offset()
	if err != nil {
		t.Fatal(err)
	}
	if o.Phi0 != 0 || math.Abs(o.Slope0-(1+slope)) > 1e-8 || o.ConstShare <= 0 || o.ConstShare >= 0.5 {
		t.Errorf("residual with B ≠ 0: %+v, want φ(0) 0, φ'(0) %v, a small share", o, 1+slope)
	}
}
