package optim

import (
	"errors"
	"fmt"
	"math"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// Sentinel errors of the package.
var (
	ErrConfig        = errors.New("optim: invalid config")
	ErrUnknownParam  = errors.New("optim: unknown parameter")
	ErrShape         = errors.New("optim: shape mismatch")
	ErrNonFiniteGrad = errors.New("optim: non-finite gradient norm")
)

// AdamWConfig holds AdamW's hyper-parameters; the learning rate is given per step.
type AdamWConfig struct {
	Beta1, Beta2 float64 // moment decay rates, in [0, 1)
	Eps          float64 // added to the denominator, > 0
	WeightDecay  float64 // decoupled weight decay λ (p ← p·(1 − lr·λ)), ≥ 0
}

// DefaultAdamWConfig is torch.optim.AdamW's default: β = (0.9, 0.999), ε = 1e-8, λ = 0.01.
// (The LR-LoRA paper uses λ = 0 for LLMs, 0.01 for GLUE, 0.1 for vision.)
func DefaultAdamWConfig() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
}

func (c AdamWConfig) validate() error {
	ok := c.Beta1 >= 0 && c.Beta1 < 1 && c.Beta2 >= 0 && c.Beta2 < 1 && c.Eps > 0 && c.WeightDecay >= 0 &&
		!math.IsInf(c.Eps, 0) && !math.IsInf(c.WeightDecay, 0)
	if !ok {
		return fmt.Errorf("%w: AdamW %+v", ErrConfig, c)
	}
	return nil
}

// ParamState is AdamW's state for one parameter, as torch.optim.AdamW keeps it:
// the number of steps taken and the first and second moment estimates (same shape,
// dtype and device as the parameter). The tensors belong to the optimizer.
type ParamState struct {
	Step     int64
	ExpAvg   *ts.Tensor
	ExpAvgSq *ts.Tensor
}

// AdamW is torch.optim.AdamW (Loshchilov & Hutter; non-amsgrad, single-tensor path)
// over named parameters. For each parameter with a gradient g, step t:
//
//	t ← t + 1
//	p ← p·(1 − lr·λ)
//	m ← β1·m + (1 − β1)·g
//	v ← β2·v + (1 − β2)·g²
//	p ← p − (lr/(1 − β1ᵗ)) · m / (√v/√(1 − β2ᵗ) + ε)
//
// Like PyTorch, state is created lazily at a parameter's first gradient and
// parameters without a gradient are skipped (their step count does not advance).
//
// A step is one native multi-tensor call (phiop.AdamW) per dtype/device group of
// the parameters that have a gradient: on the CPU one parallel loop over every
// element of the group, on a CUDA device one kernel launch (plus one copy of the
// tensor list), where the libtorch-op path costs 8 ops per parameter (7 without
// weight decay). Both compute the same operations in the parameter's dtype: the
// moments move by lerp and the bias corrections are folded into one divisor, so
// the values equal torch's up to rounding. A parameter the native op does not take
// (not contiguous, or a dtype other than float32 and float64) steps through the
// libtorch ops instead; mismatched state (a moment whose shape or dtype differs
// from its parameter's) is an error naming the parameter.
// An AdamW is not safe for concurrent use.
type AdamW struct {
	cfg    AdamWConfig
	params []ts.NamedTensor
	index  map[string]int
	state  map[string]*ParamState
	scale  map[string]float64 // learning-rate multipliers (SetLRScale); absent means 1
	// opsOnly makes every parameter take the libtorch-op path (tests and the
	// benchmark compare the two paths).
	opsOnly bool
	// last counts what the latest Step did: native calls and parameters that
	// fell back to the libtorch ops.
	last stepStats
}

// NewAdamW creates the optimizer for params (the trainable list, e.g. from
// lrlora's TrainableParameters). Names must be unique; they key the state.
func NewAdamW(params []ts.NamedTensor, cfg AdamWConfig) (*AdamW, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := &AdamW{cfg: cfg, index: map[string]int{}, state: map[string]*ParamState{}}
	seen := map[*ts.Tensor]string{}
	for i, p := range params {
		if p.Tensor == nil {
			return nil, fmt.Errorf("%w: parameter %q is nil", ErrConfig, p.Name)
		}
		if _, dup := o.index[p.Name]; dup {
			return nil, fmt.Errorf("%w: parameter name %q listed twice", ErrConfig, p.Name)
		}
		if other, dup := seen[p.Tensor]; dup {
			return nil, fmt.Errorf("%w: parameters %q and %q are the same tensor", ErrConfig, other, p.Name)
		}
		o.index[p.Name] = i
		seen[p.Tensor] = p.Name
	}
	o.params = append([]ts.NamedTensor(nil), params...)
	return o, nil
}

// Config returns the hyper-parameters.
func (o *AdamW) Config() AdamWConfig { return o.cfg }

// Params returns the parameters in the order given to NewAdamW.
func (o *AdamW) Params() []ts.NamedTensor { return append([]ts.NamedTensor(nil), o.params...) }

// Step applies one AdamW update with learning rate lr to every parameter that has
// a gradient. It runs without autograd, updates parameters and moments in place
// and frees every temporary it makes.
func (o *AdamW) Step(lr float64) error {
	if math.IsNaN(lr) || math.IsInf(lr, 0) || lr < 0 {
		return fmt.Errorf("%w: learning rate %v", ErrConfig, lr)
	}
	return tensorkit.NoGrad(func() error { return o.step(lr) })
}

// stepOps is the libtorch-op path for one parameter p with gradient g and state
// st at learning rate lr: 8 ops (7 without weight decay), st.Step advanced.
func (o *AdamW) stepOps(p, g *ts.Tensor, st *ParamState, lr float64) error {
	st.Step++
	c := o.cfg
	if c.WeightDecay != 0 {
		if err := scaleInPlace(p, 1-lr*c.WeightDecay); err != nil {
			return err
		}
	}
	// m ← m + (1 − β1)(g − m): one lerp, as torch ≥ 2.0's AdamW (1.13's β1·m + (1 − β1)·g
	// is the same value up to rounding).
	if err := done(st.ExpAvg.LerpScalarOut(st.ExpAvg, g, ts.FloatScalar(1-c.Beta1), false)); err != nil {
		return err
	}
	// v ← v + (1 − β2)(g² − v): g² and one lerp.
	g2, err := g.Square(false)
	if err != nil {
		return err
	}
	defer g2.Drop()
	if err := done(st.ExpAvgSq.LerpScalarOut(st.ExpAvgSq, g2, ts.FloatScalar(1-c.Beta2), false)); err != nil {
		return err
	}
	t := float64(st.Step)
	bc1 := 1 - math.Pow(c.Beta1, t)
	bc2Sqrt := math.Sqrt(1 - math.Pow(c.Beta2, t))
	stepSize := lr / bc1
	if stepSize == 0 {
		return nil // a zero rate (a frozen group): the moments move, p does not
	}

	// p ← p − stepSize·m/(√v/√bc2 + ε) = p + m/d with d = (√v + ε·√bc2)·(−1/(stepSize·√bc2)):
	// sqrt, add, mul and one addcdiv (torch's scalar factors folded into d).
	denom, err := st.ExpAvgSq.Sqrt(false)
	if err != nil {
		return err
	}
	defer denom.Drop()
	if err := done(denom.AddScalarOut(denom, ts.FloatScalar(c.Eps*bc2Sqrt), false)); err != nil {
		return err
	}
	if err := scaleInPlace(denom, -1/(stepSize*bc2Sqrt)); err != nil {
		return err
	}
	return done(p.AddcdivOut(p, st.ExpAvg, denom, false))
}

// newState makes zero moments shaped like p.
func (o *AdamW) newState(p *ts.Tensor) (*ParamState, error) {
	m, err := p.ZerosLike(false)
	if err != nil {
		return nil, err
	}
	v, err := p.ZerosLike(false)
	if err != nil {
		m.Drop()
		return nil, err
	}
	return &ParamState{ExpAvg: m, ExpAvgSq: v}, nil
}

// ZeroGrad sets every parameter's gradient to zero (where one exists), in place.
func (o *AdamW) ZeroGrad() error {
	return tensorkit.NoGrad(func() error {
		for _, p := range o.params {
			g, err := gradOf(p.Tensor)
			if err == nil && g != nil {
				err = zeroInPlace(g)
				g.Drop()
			}
			if err != nil {
				return fmt.Errorf("optim: zero grad %q: %w", p.Name, err)
			}
		}
		return nil
	})
}
