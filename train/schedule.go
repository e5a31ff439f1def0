package train

import (
	"fmt"
	"math"
)

// schedule is the learning-rate multiplier after warmup.
type schedule int

const (
	linearSchedule   schedule = iota // decay linearly to 0 at the last step
	cosineSchedule                   // half a cosine down to 0 at the last step
	constantSchedule                 // stay at the peak
)

func scheduleOf(name string) (schedule, error) {
	switch name {
	case "linear", "":
		return linearSchedule, nil
	case "cosine":
		return cosineSchedule, nil
	case "constant":
		return constantSchedule, nil
	}
	return 0, fmt.Errorf("%q (want linear, cosine or constant)", name)
}

// warmupSteps is ⌈ratio·total⌉, as transformers' get_warmup_steps.
func warmupSteps(ratio float64, total int) int {
	return int(math.Ceil(ratio * float64(total)))
}

// learningRate is the rate of the optimizer step taken after `done` steps out of
// total, with transformers' schedules (get_linear_schedule_with_warmup,
// get_cosine_schedule_with_warmup, get_constant_schedule_with_warmup): the factor is
// done/warmup during warmup (so the first step of a warmed-up run has rate 0, exactly
// as in transformers) and then decays over the remaining total − warmup steps.
func learningRate(peak float64, s schedule, done, warmup, total int) float64 {
	if done < warmup {
		return peak * float64(done) / float64(max(1, warmup))
	}
	progress := float64(done-warmup) / float64(max(1, total-warmup))
	switch s {
	case linearSchedule:
		return peak * max(0, 1-progress)
	case cosineSchedule:
		return peak * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	}
	return peak
}
