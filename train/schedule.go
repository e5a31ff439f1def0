package train

import "github.com/lrtrain/lrtrain/optim"

// The learning-rate schedule is optim.Schedule under transformers' convention
// (optim.StepsDone: the rate of the step taken after `done` steps, so the first
// step of a warmed-up run has rate 0); these names keep the loop's calls short.

// schedule is the learning-rate shape after warmup (train.schedule).
type schedule = optim.Kind

const (
	linearSchedule   = optim.Linear   // decay linearly to 0 at the last step
	cosineSchedule   = optim.Cosine   // half a cosine down to 0 at the last step
	constantSchedule = optim.Constant // stay at the peak
)

// scheduleOf reads train.schedule ("" is linear).
func scheduleOf(name string) (schedule, error) { return optim.ParseKind(name) }

// warmupSteps is ⌈ratio·total⌉, as transformers' get_warmup_steps.
func warmupSteps(ratio float64, total int) int { return optim.WarmupSteps(ratio, total) }

// learningRate is the rate of the optimizer step taken after `done` steps out of
// total with `warmup` warmup steps (get_linear/cosine/constant_schedule_with_warmup).
func learningRate(peak float64, s schedule, done, warmup, total int) float64 {
	return optim.Schedule{Kind: s, Peak: peak, Warmup: warmup, Total: total}.At(done)
}
