package metrics

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestPearsonByHand(t *testing.T) {
	// x = 1,2,3,4, y = 2,4,5,9: x̄ = 2.5, ȳ = 5; Σdxdy = 11, Σdx² = 5, Σdy² = 26:
	// r = 11/√130.
	r, err := Pearson([]float64{1, 2, 3, 4}, []float64{2, 4, 5, 9})
	if want := 11 / math.Sqrt(130); err != nil || math.Abs(r-want) > 1e-15 {
		t.Errorf("Pearson = %v, %v; want %v", r, err, want)
	}
	// Exact linear relations give ±1 exactly (clamped).
	if r, _ := Pearson([]float64{0.1, 0.2, 0.3}, []float64{-3, -6, -9}); r != -1 && math.Abs(r+1) > 1e-15 {
		t.Errorf("Pearson of a decreasing line = %v", r)
	}
}

func TestSpearmanWithTiesByHand(t *testing.T) {
	// x = 1, 2, 2, 3 → ranks 1, 2.5, 2.5, 4; y = 10, 30, 20, 40 → ranks 1, 3, 2, 4.
	// Pearson of the ranks: dx = −1.5, 0, 0, 1.5; dy = −1.5, .5, −.5, 1.5:
	// Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5 → 4.5/√22.5.
	x, y := []float64{1, 2, 2, 3}, []float64{10, 30, 20, 40}
	if got := Ranks(x); !reflect.DeepEqual(got, []float64{1, 2.5, 2.5, 4}) {
		t.Errorf("Ranks(%v) = %v", x, got)
	}
	rho, err := Spearman(x, y)
	if want := 4.5 / math.Sqrt(22.5); err != nil || math.Abs(rho-want) > 1e-15 {
		t.Errorf("Spearman = %v, %v; want %v", rho, err, want)
	}
	// Any monotone transform leaves it unchanged.
	ex := []float64{math.Exp(1), math.Exp(2), math.Exp(2), math.Exp(3)}
	if rho2, _ := Spearman(ex, y); rho2 != rho {
		t.Errorf("Spearman after exp = %v, before %v", rho2, rho)
	}
	if got := Ranks([]float64{5, 5, 5}); !reflect.DeepEqual(got, []float64{2, 2, 2}) {
		t.Errorf("Ranks of a constant = %v", got)
	}
}

func TestCorrelationEdgeCases(t *testing.T) {
	for _, f := range []func(x, y []float64) (float64, error){Pearson, Spearman} {
		// Constant input (also a single point): NaN, no error.
		for _, xy := range [][2][]float64{
			{{1, 1, 1}, {1, 2, 3}},
			{{1, 2, 3}, {0.1, 0.1, 0.1}},
			{{4}, {5}},
		} {
			if r, err := f(xy[0], xy[1]); err != nil || !math.IsNaN(r) {
				t.Errorf("correlation(%v, %v) = %v, %v; want NaN, nil", xy[0], xy[1], r, err)
			}
		}
		if _, err := f(nil, nil); !errors.Is(err, ErrEmpty) {
			t.Errorf("empty: %v", err)
		}
		if _, err := f([]float64{1, 2}, []float64{1}); !errors.Is(err, ErrLength) {
			t.Errorf("lengths: %v", err)
		}
		if _, err := f([]float64{1, math.NaN()}, []float64{1, 2}); !errors.Is(err, ErrNotFinite) {
			t.Errorf("NaN input: %v", err)
		}
		if _, err := f([]float64{1, 2}, []float64{math.Inf(1), 2}); !errors.Is(err, ErrNotFinite) {
			t.Errorf("Inf input: %v", err)
		}
	}
	// A constant whose mean is not exactly representable is still constant.
	if r, _ := Pearson([]float64{0.1, 0.1, 0.1}, []float64{1, 2, 4}); !math.IsNaN(r) {
		t.Errorf("Pearson with 0.1×3 = %v, want NaN", r)
	}
}
