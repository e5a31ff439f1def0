package optim

import (
	"fmt"
	"slices"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// State suffixes used by StateTensors: "<param>.exp_avg" and "<param>.exp_avg_sq".
const (
	ExpAvgSuffix   = ".exp_avg"
	ExpAvgSqSuffix = ".exp_avg_sq"
)

// State returns the AdamW state of the named parameter. ok is false while the
// parameter has not taken a step yet. The tensors stay owned by the optimizer:
// read or copy them, do not drop them.
func (o *AdamW) State(name string) (st ParamState, ok bool, err error) {
	if _, known := o.index[name]; !known {
		return ParamState{}, false, fmt.Errorf("%w: %q", ErrUnknownParam, name)
	}
	s, ok := o.state[name]
	if !ok {
		return ParamState{}, false, nil
	}
	return *s, true, nil
}

// StateTensors lists the moment tensors of every parameter that has state, in
// parameter order, named <param>.exp_avg and <param>.exp_avg_sq; Steps gives the
// matching step counts. Together they are the whole optimizer state.
func (o *AdamW) StateTensors() []ts.NamedTensor {
	var out []ts.NamedTensor
	for _, p := range o.params {
		if s, ok := o.state[p.Name]; ok {
			out = append(out,
				ts.NamedTensor{Name: p.Name + ExpAvgSuffix, Tensor: s.ExpAvg},
				ts.NamedTensor{Name: p.Name + ExpAvgSqSuffix, Tensor: s.ExpAvgSq})
		}
	}
	return out
}

// Steps returns the step count of every parameter that has state.
func (o *AdamW) Steps() map[string]int64 {
	out := make(map[string]int64, len(o.state))
	for name, s := range o.state {
		out[name] = s.Step
	}
	return out
}

// SetState replaces the named parameter's state with a copy of st (the tensors are
// copied to the parameter's dtype and device; the caller keeps st's tensors), so a
// resumed run continues exactly where the saved one stopped.
func (o *AdamW) SetState(name string, st ParamState) error {
	i, known := o.index[name]
	if !known {
		return fmt.Errorf("optim: set state: %w: %q", ErrUnknownParam, name)
	}
	if st.Step < 0 || st.ExpAvg == nil || st.ExpAvgSq == nil {
		return fmt.Errorf("optim: set state %q: %w: step %d, moments present %v/%v",
			name, ErrConfig, st.Step, st.ExpAvg != nil, st.ExpAvgSq != nil)
	}
	p := o.params[i].Tensor
	want, err := p.Size()
	if err != nil {
		return fmt.Errorf("optim: set state %q: %w", name, err)
	}
	var copies [2]*ts.Tensor
	err = tensorkit.NoGrad(func() error {
		dev, err := p.Device()
		if err != nil {
			return err
		}
		for k, src := range []*ts.Tensor{st.ExpAvg, st.ExpAvgSq} {
			have, err := src.Size()
			if err != nil {
				return err
			}
			if !slices.Equal(have, want) {
				return fmt.Errorf("%w: moment %v for parameter %v", ErrShape, have, want)
			}
			if copies[k], err = src.ToDevice(dev, p.DType(), false, true, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, c := range copies {
			if c != nil {
				c.Drop()
			}
		}
		return fmt.Errorf("optim: set state %q: %w", name, err)
	}
	if old, ok := o.state[name]; ok {
		old.ExpAvg.Drop()
		old.ExpAvgSq.Drop()
	}
	o.state[name] = &ParamState{Step: st.Step, ExpAvg: copies[0], ExpAvgSq: copies[1]}
	return nil
}

// Close frees the optimizer state (not the parameters).
func (o *AdamW) Close() {
	for name, s := range o.state {
		s.ExpAvg.Drop()
		s.ExpAvgSq.Drop()
		delete(o.state, name)
	}
}
