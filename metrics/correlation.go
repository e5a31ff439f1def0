package metrics

import (
	"fmt"
	"math"
	"sort"
)

// Pearson is the sample correlation coefficient of x and y,
// Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² Σ(y−ȳ)²), clamped to [−1, 1].
//
// When x or y is constant (every value equal, which includes a single example) the
// coefficient is undefined: Pearson returns NaN and a nil error, as scipy does (with a
// warning there). Callers that log it should print NaN rather than fail the run, since a
// model early in training often predicts one value. NaN or infinite inputs are an error.
func Pearson(x, y []float64) (float64, error) {
	if err := checkSeries(x, y); err != nil {
		return 0, fmt.Errorf("pearson: %w", err)
	}
	return pearson(x, y), nil
}

func pearson(x, y []float64) float64 {
	if constant(x) || constant(y) {
		return math.NaN()
	}
	mx, my := mean(x), mean(y)
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	return math.Max(-1, math.Min(1, sxy/math.Sqrt(sxx*syy)))
}

// Spearman is Spearman's rank correlation: the Pearson correlation of the ranks of x and
// y, ties given their average rank (scipy.stats.spearmanr). Constant input gives NaN, as
// for Pearson.
func Spearman(x, y []float64) (float64, error) {
	if err := checkSeries(x, y); err != nil {
		return 0, fmt.Errorf("spearman: %w", err)
	}
	return pearson(Ranks(x), Ranks(y)), nil
}

// Ranks returns the 1-based ranks of x in ascending order, each run of equal values given
// the mean of the ranks it spans: Ranks([10, 20, 10, 30]) = [1.5, 3, 1.5, 4].
func Ranks(x []float64) []float64 {
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return x[order[a]] < x[order[b]] })
	ranks := make([]float64, len(x))
	for start := 0; start < len(order); {
		end := start + 1
		for end < len(order) && x[order[end]] == x[order[start]] {
			end++
		}
		avg := float64(start+1+end) / 2 // mean of the ranks start+1 … end
		for _, i := range order[start:end] {
			ranks[i] = avg
		}
		start = end
	}
	return ranks
}

func checkSeries(x, y []float64) error {
	if len(x) != len(y) {
		return fmt.Errorf("%w: %d and %d values", ErrLength, len(x), len(y))
	}
	if len(x) == 0 {
		return ErrEmpty
	}
	for i := range x {
		if math.IsNaN(x[i]) || math.IsInf(x[i], 0) || math.IsNaN(y[i]) || math.IsInf(y[i], 0) {
			return fmt.Errorf("%w: pair %d is (%v, %v)", ErrNotFinite, i, x[i], y[i])
		}
	}
	return nil
}

func constant(x []float64) bool {
	for _, v := range x[1:] {
		if v != x[0] {
			return false
		}
	}
	return true
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}
