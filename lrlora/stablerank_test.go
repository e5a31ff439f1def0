package lrlora

import (
	"errors"
	"math"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
)

// Closed forms: sr(I_n) = n, sr(u·vᵀ) = 1, sr(diag(3, 4)) = (9 + 16)/16, sr(0) = 0.
// The SVD path and the power-iteration fallback must both give them.
func TestStableRankClosedForms(t *testing.T) {
	lockThread(t)
	const n = 7
	eye := make([]float64, n*n)
	for i := 0; i < n; i++ {
		eye[i*n+i] = 1
	}
	u, v := randVals(91, 6), randVals(92, 9)
	outer := make([]float64, 6*9)
	for i := range u {
		for j := range v {
			outer[i*9+j] = u[i] * v[j]
		}
	}
	cases := []struct {
		name  string
		vals  []float64
		shape []int64
		want  float64
	}{
		{"identity", eye, []int64{n, n}, n},
		{"rank-1", outer, []int64{6, 9}, 1},
		{"diag(3,4)", []float64{3, 0, 0, 4}, []int64{2, 2}, 25.0 / 16},
		{"diag(3,4) wide", []float64{3, 0, 0, 0, 4, 0}, []int64{2, 3}, 25.0 / 16},
	}
	for _, tc := range cases {
		for _, dtype := range []gotch.DType{gotch.Float, gotch.Double} {
			x := constTensor(t, tc.vals, tc.shape, dtype)
			got, err := StableRank(x)
			if err != nil {
				t.Fatal(err)
			}
			// float32 inputs are rounded before the float64 computation.
			tol := 1e-12
			if dtype == gotch.Float {
				tol = 1e-6
			}
			if math.Abs(got-tc.want) > tol*tc.want {
				t.Errorf("%s (%v): stable rank %.15g, want %.15g", tc.name, dtype, got, tc.want)
			}
			x64 := constTensor(t, tc.vals, tc.shape, gotch.Double)
			fro, err := normOf(x64)
			if err != nil {
				t.Fatal(err)
			}
			sigma, err := sigmaMaxPower(x64, 10000, 1e-13)
			if err != nil {
				t.Fatal(err)
			}
			if sr := fro * fro / (sigma * sigma); math.Abs(sr-tc.want) > 1e-9*tc.want {
				t.Errorf("%s: power-iteration stable rank %.15g, want %.15g", tc.name, sr, tc.want)
			}
		}
	}
	zero := constTensor(t, make([]float64, 6), []int64{2, 3}, gotch.Float)
	if sr, err := StableRank(zero); err != nil || sr != 0 {
		t.Errorf("zero matrix: %v, %v", sr, err)
	}
}

// On a generic matrix the power iteration agrees with the SVD, and bad inputs fail.
func TestStableRankPowerIterationAndErrors(t *testing.T) {
	lockThread(t)
	x := constTensor(t, randVals(93, 12*9), []int64{12, 9}, gotch.Double)
	svd, err := sigmaMaxSVD(x)
	if err != nil {
		t.Fatal(err)
	}
	pow, err := sigmaMaxPower(x, 10000, 1e-13)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(svd-pow) > 1e-9*svd {
		t.Errorf("σ_max: SVD %.15g, power iteration %.15g", svd, pow)
	}
	if _, err := sigmaMaxPower(x, 2, 1e-13); !errors.Is(err, ErrNoConvergence) {
		t.Errorf("two iterations: %v, want ErrNoConvergence", err)
	}
	bad := constTensor(t, []float64{1, math.NaN(), 0, 1}, []int64{2, 2}, gotch.Float)
	if _, err := StableRank(bad); !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN input: %v", err)
	}
	vec := constTensor(t, []float64{1, 2}, []int64{2}, gotch.Float)
	if _, err := StableRank(vec); !errors.Is(err, ErrShape) {
		t.Errorf("1-D input: %v", err)
	}
}

// LR-LoRA's ΔW escapes LoRA's rank bound: with r = 1, B·A has stable rank 1 but
// φ(B·A) generally does not.
func TestLRLoRAExceedsLoRARank(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 16, 16, gotch.Double, 94)
	lora := trainedAdapter(t, l, spec(adapter.LoRA, 1), 95)
	lr := trainedAdapter(t, l, spec(adapter.LRLoRA, 1, func(s *adapter.Spec) { s.K = 10 }), 95)
	// Spread M = B·A over a few grid spacings so that φ is visibly nonlinear on it.
	b := randVals(96, 16)
	for i := range b {
		b[i] *= 8
	}
	assign(t, tensorByName(t, lr, ".lora_B"), b)
	srOf := func(ad *Adapter) float64 {
		dw, err := ad.DeltaWeight()
		if err != nil {
			t.Fatal(err)
		}
		defer dw.Drop()
		sr, err := StableRank(dw)
		if err != nil {
			t.Fatal(err)
		}
		return sr
	}
	if sr := srOf(lora); math.Abs(sr-1) > 1e-9 {
		t.Errorf("LoRA r=1: stable rank %v, want 1", sr)
	}
	if sr := srOf(lr); sr < 1.05 {
		t.Errorf("LR-LoRA r=1: stable rank %v, want > 1", sr)
	}
}
