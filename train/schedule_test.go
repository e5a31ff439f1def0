package train

import (
	"math"
	"testing"
)

// The schedules are transformers' (get_linear/cosine/constant_schedule_with_warmup with
// ⌈ratio·total⌉ warmup steps), evaluated at the number of steps already taken; the
// expected values are worked out by hand for 10 steps, ratio 0.2 (2 warmup steps).
func TestScheduleMatchesTransformers(t *testing.T) {
	if w := warmupSteps(0.2, 10); w != 2 {
		t.Fatalf("warmup steps %d, want 2", w)
	}
	if w := warmupSteps(0.1, 15); w != 2 {
		t.Fatalf("warmup steps for 15 × 0.1 = %d, want ⌈1.5⌉ = 2", w)
	}
	cos := func(done int) float64 { return 0.5 * (1 + math.Cos(math.Pi*float64(done-2)/8)) }
	for _, c := range []struct {
		s    schedule
		want []float64 // factor after 0..9 steps
	}{
		{linearSchedule, []float64{0, 0.5, 1, 7.0 / 8, 6.0 / 8, 5.0 / 8, 4.0 / 8, 3.0 / 8, 2.0 / 8, 1.0 / 8}},
		{cosineSchedule, []float64{0, 0.5, 1, cos(3), cos(4), cos(5), 0.5, cos(7), cos(8), cos(9)}},
		{constantSchedule, []float64{0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1}},
	} {
		for done, want := range c.want {
			if got := learningRate(2e-4, c.s, done, 2, 10); math.Abs(got-2e-4*want) > 1e-18 {
				t.Errorf("schedule %d after %d steps: %g, want %g", c.s, done, got, 2e-4*want)
			}
		}
	}
	if got := learningRate(1, linearSchedule, 0, 0, 10); got != 1 {
		t.Errorf("without warmup the first step has rate %v, want the peak", got)
	}
}
