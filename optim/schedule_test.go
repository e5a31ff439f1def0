package optim

import (
	"math"
	"strings"
	"testing"
)

// rateClose compares a schedule's rate with a closed form. The schedule works in
// float64 and each rate is a handful of correctly rounded operations, so a few
// ulps of float64 (2⁻⁵² relative) bound the difference to an exact value.
func rateClose(got, want float64) bool {
	const ulps = 8
	return math.Abs(got-want) <= ulps*0x1p-52*math.Abs(want)
}

// cosines of multiples of π/8, written independently of math.Cos.
var (
	cos1 = math.Sqrt(2+math.Sqrt2) / 2 // cos(π/8)
	cos2 = math.Sqrt2 / 2              // cos(2π/8)
	cos3 = math.Sqrt(2-math.Sqrt2) / 2 // cos(3π/8)
)

func TestScheduleStepsDoneClosedForms(t *testing.T) {
	// 10 steps, 2 warmup steps: after warmup 8 steps of decay, progress (n−2)/8.
	half := func(c float64) float64 { return 0.5 * (1 + c) }
	for _, c := range []struct {
		kind Kind
		want []float64 // factor at n = 0, 1, …
	}{
		{Linear, []float64{0, 0.5, 1, 7.0 / 8, 6.0 / 8, 5.0 / 8, 4.0 / 8, 3.0 / 8, 2.0 / 8, 1.0 / 8, 0, 0, 0}},
		{Cosine, []float64{0, 0.5, 1, half(cos1), half(cos2), half(cos3), 0.5, half(-cos3), half(-cos2), half(-cos1), 0}},
		{Constant, []float64{0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
	} {
		for _, peak := range []float64{1, 2e-4} {
			s := Schedule{Kind: c.kind, Peak: peak, Warmup: 2, Total: 10}
			for n, f := range c.want {
				if got := s.At(n); !rateClose(got, peak*f) {
					t.Errorf("%v peak %g after %d steps: %.17g, want %.17g", c.kind, peak, n, got, peak*f)
				}
			}
		}
	}
	if got := (Schedule{Peak: 3, Total: 10}).At(0); got != 3 {
		t.Errorf("without warmup the first step has rate %v, want the peak", got)
	}
}

func TestScheduleStepIndexClosedForms(t *testing.T) {
	// Step i counted as taken: warmup (i+1)/2, then (10 − i)/8 down to 1/8 at the
	// last step; 0 once past the run.
	want := []float64{0.5, 1, 1, 7.0 / 8, 6.0 / 8, 5.0 / 8, 4.0 / 8, 3.0 / 8, 2.0 / 8, 1.0 / 8, 0, 0}
	s := Schedule{Kind: Linear, Peak: 2e-4, Warmup: 2, Total: 10, Counting: StepIndex}
	for i, f := range want {
		if got := s.At(i); !rateClose(got, 2e-4*f) {
			t.Errorf("step %d: %.17g, want %.17g", i, got, 2e-4*f)
		}
	}
	s.Kind = Cosine
	for i, f := range map[int]float64{0: 0.5, 1: 1, 2: 1, 4: 0.5 * (1 + cos2), 6: 0.5, 10: 0} {
		if got := s.At(i); !rateClose(got, 2e-4*f) {
			t.Errorf("cosine step %d: %.17g, want %.17g", i, got, 2e-4*f)
		}
	}
	s.Kind = Constant
	if got := s.At(0); got != 1e-4 {
		t.Errorf("constant step 0: %v, want half the peak", got)
	}
	if got := s.At(7); got != 2e-4 {
		t.Errorf("constant step 7: %v, want the peak", got)
	}
}

// The two conventions are the same curve, one step apart during warmup.
func TestCountingConventionsDiffer(t *testing.T) {
	done := Schedule{Kind: Linear, Peak: 1, Warmup: 4, Total: 20}
	index := done
	index.Counting = StepIndex
	for i := 0; i < 4; i++ {
		if a, b := done.At(i+1), index.At(i); !rateClose(b, a) {
			t.Errorf("warmup: StepIndex.At(%d) = %v, StepsDone.At(%d) = %v", i, b, i+1, a)
		}
	}
	if done.At(0) != 0 || index.At(0) != 0.25 {
		t.Errorf("first step: StepsDone %v (want 0), StepIndex %v (want 1/4)", done.At(0), index.At(0))
	}
	if done.At(19) != 1.0/16 || index.At(19) != 1.0/16 {
		t.Errorf("last step: StepsDone %v, StepIndex %v, want 1/16 both", done.At(19), index.At(19))
	}
}

func TestWarmupSteps(t *testing.T) {
	for _, c := range []struct {
		ratio float64
		total int
		want  int
	}{{0.2, 10, 2}, {0.1, 15, 2}, {0, 100, 0}, {0.1, 300, 30}, {0.1, 1, 1}} {
		if got := WarmupSteps(c.ratio, c.total); got != c.want {
			t.Errorf("WarmupSteps(%v, %d) = %d, want %d", c.ratio, c.total, got, c.want)
		}
	}
}

func TestParseKind(t *testing.T) {
	for name, want := range map[string]Kind{"": Linear, "linear": Linear, "cosine": Cosine, "constant": Constant} {
		k, err := ParseKind(name)
		if err != nil || k != want {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", name, k, err, want)
		}
		if name != "" && k.String() != name {
			t.Errorf("%v.String() = %q", k, k.String())
		}
	}
	if _, err := ParseKind("step"); err == nil || !strings.Contains(err.Error(), "want linear, cosine or constant") {
		t.Errorf("ParseKind(step): %v", err)
	}
}
