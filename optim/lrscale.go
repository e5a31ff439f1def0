package optim

import (
	"fmt"
	"math"
)

// SetLRScale makes the named parameter step with learning rate scale·lr (a parameter
// group's lr in torch.optim terms): the weight decay p·(1 − lr·λ) and the Adam update
// both use the scaled rate. scale must be finite and ≥ 0; 1 is the default.
func (o *AdamW) SetLRScale(name string, scale float64) error {
	if _, ok := o.index[name]; !ok {
		return fmt.Errorf("%w: %q (lr scale)", ErrUnknownParam, name)
	}
	if math.IsNaN(scale) || math.IsInf(scale, 0) || scale < 0 {
		return fmt.Errorf("%w: lr scale %v for %q", ErrConfig, scale, name)
	}
	if o.scale == nil {
		o.scale = map[string]float64{}
	}
	o.scale[name] = scale
	return nil
}

// LRScale returns the named parameter's learning-rate multiplier (1 unless set).
func (o *AdamW) LRScale(name string) float64 { return o.lrScale(name) }

func (o *AdamW) lrScale(name string) float64 {
	if s, ok := o.scale[name]; ok {
		return s
	}
	return 1
}
