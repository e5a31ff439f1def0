package optim

import (
	"fmt"
	"math"
)

// Kind is the shape of a learning-rate schedule after its linear warmup.
type Kind int

const (
	Linear   Kind = iota // decay linearly to 0 at the last step
	Cosine               // half a cosine down to 0 at the last step
	Constant             // stay at the peak
)

// ParseKind reads a schedule name as the configuration writes it; "" is linear.
func ParseKind(name string) (Kind, error) {
	switch name {
	case "linear", "":
		return Linear, nil
	case "cosine":
		return Cosine, nil
	case "constant":
		return Constant, nil
	}
	return 0, fmt.Errorf("%q (want linear, cosine or constant)", name)
}

func (k Kind) String() string {
	switch k {
	case Linear:
		return "linear"
	case Cosine:
		return "cosine"
	case Constant:
		return "constant"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Counting says what the step handed to Schedule.At counts. The two conventions
// give the same curve shifted by one step during warmup; they are kept apart so
// that each caller's rates stay exactly what they were.
type Counting int

const (
	// StepsDone (transformers' LambdaLR convention, get_*_schedule_with_warmup):
	// At(n) is the rate of the optimizer step taken after n steps. Warmup gives
	// Peak·n/Warmup, so the first step of a warmed-up run has rate 0 and step
	// n = Warmup the peak; afterwards progress p = (n − Warmup)/(Total − Warmup)
	// and linear decay gives Peak·(1 − p), reaching 0 at n = Total.
	StepsDone Counting = iota
	// StepIndex: At(i) is the rate of step i (0-based), the step itself counted.
	// Warmup gives Peak·(i+1)/Warmup, so the first step already moves and step
	// Warmup − 1 has the peak; linear decay gives Peak·(Total − i)/(Total − Warmup),
	// so step Warmup has the peak again and the last step (i = Total − 1) has
	// Peak/(Total − Warmup), not 0.
	StepIndex
)

// Schedule is a learning rate with linear warmup then the decay of Kind, over
// Total optimizer steps. Warmup is a number of steps (WarmupSteps turns a ratio
// into one the way transformers does); 0 means no warmup.
type Schedule struct {
	Kind     Kind
	Peak     float64 // the rate at the end of warmup
	Warmup   int     // warmup steps, ≥ 0
	Total    int     // optimizer steps in the run
	Counting Counting
}

// WarmupSteps is ⌈ratio·total⌉, as transformers' get_warmup_steps.
func WarmupSteps(ratio float64, total int) int {
	return int(math.Ceil(ratio * float64(total)))
}

// At is the learning rate at step (see Counting for what step counts). Rates are
// never negative: past the end of the run linear decay stays at 0 (cosine, as in
// transformers, rises again).
//
// The arithmetic (operand order included) is fixed: a run resumed from a
// checkpoint, or re-run, must see bit-identical rates.
func (s Schedule) At(step int) float64 {
	if s.Counting == StepIndex {
		return s.atIndex(step)
	}
	if step < s.Warmup {
		return s.Peak * float64(step) / float64(max(1, s.Warmup))
	}
	progress := float64(step-s.Warmup) / float64(max(1, s.Total-s.Warmup))
	switch s.Kind {
	case Linear:
		return s.Peak * max(0, 1-progress)
	case Cosine:
		return s.Peak * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	}
	return s.Peak
}

// atIndex is At under StepIndex.
func (s Schedule) atIndex(i int) float64 {
	if i < s.Warmup {
		return s.Peak * float64(i+1) / float64(s.Warmup)
	}
	rest := max(1, s.Total-s.Warmup)
	switch s.Kind {
	case Linear:
		return max(0, s.Peak*float64(s.Total-i)/float64(rest))
	case Cosine:
		progress := float64(i-s.Warmup) / float64(rest)
		return s.Peak * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	}
	return s.Peak
}
