package optim

import (
	"errors"
	"slices"
	"testing"

	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// A parameter with lr scale 4 at rate 0.25 steps exactly as at rate 1 (0.25·4 = 1 in
// binary, so the comparison is bit for bit), weight decay included; the others keep
// rate 0.25.
func TestLRScaleIsAParameterGroupRate(t *testing.T) {
	lockThread(t)
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}
	run := func(lr float64, scaleA float64) (a, b []float64) {
		pa := leaf(t, []float64{0.5, -1, 2}, []int64{3}, gotch.Float, true)
		pb := leaf(t, []float64{1, 3}, []int64{2}, gotch.Float, true)
		defer pa.MustDrop()
		defer pb.MustDrop()
		o, err := NewAdamW([]ts.NamedTensor{{Name: "phi.amplitude", Tensor: pa}, {Name: "lora_A", Tensor: pb}}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if scaleA != 1 {
			if err := o.SetLRScale("phi.amplitude", scaleA); err != nil {
				t.Fatal(err)
			}
		}
		for step := range 3 {
			s := float64(step + 1)
			setGrads(t, o, []*ts.Tensor{pa, pb}, [][]float64{{0.1 * s, -0.2, 0.3}, {-1, 0.5 * s}})
			if err := o.Step(lr); err != nil {
				t.Fatal(err)
			}
		}
		return tensortest.Values(t, pa), tensortest.Values(t, pb)
	}
	aScaled, bScaled := run(0.25, 4)
	aFull, _ := run(1, 1)
	_, bQuarter := run(0.25, 1)
	if !slices.Equal(aScaled, aFull) {
		t.Errorf("scaled parameter %v, want the rate-1 run's %v", aScaled, aFull)
	}
	if !slices.Equal(bScaled, bQuarter) {
		t.Errorf("unscaled parameter %v, want the rate-0.25 run's %v", bScaled, bQuarter)
	}
	if slices.Equal(aScaled, run2(run, 0.25)) {
		t.Error("the scale changed nothing")
	}
}

func run2(run func(float64, float64) ([]float64, []float64), lr float64) []float64 {
	a, _ := run(lr, 1)
	return a
}

func TestSetLRScaleRejects(t *testing.T) {
	p := leaf(t, []float64{1}, []int64{1}, gotch.Float, true)
	defer p.MustDrop()
	o, err := NewAdamW([]ts.NamedTensor{{Name: "x", Tensor: p}}, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := o.SetLRScale("y", 2); !errors.Is(err, ErrUnknownParam) {
		t.Errorf("unknown name: %v", err)
	}
	if err := o.SetLRScale("x", -1); !errors.Is(err, ErrConfig) {
		t.Errorf("negative scale: %v", err)
	}
	if o.LRScale("x") != 1 {
		t.Errorf("default scale %v", o.LRScale("x"))
	}
}
