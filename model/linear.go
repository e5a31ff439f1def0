package model

import (
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/lrlora"
)

// Linear is a linear layer y = x·Wᵀ + b bound to the checkpoint tensors Name.weight and
// Name.bias. Name is the module path that PEFT matches targets against
// ("model.layers.0.self_attn.q_proj"). With an adapter attached, Forward is the
// adapter's (W0 + ΔW); the weight stays frozen and owned by the model.
type Linear struct {
	Name         string
	DIn, DOut    int
	Weight, Bias *ts.Tensor // Bias is nil when the layer has none

	adapter *lrlora.Adapter
	head    bool // part of a trainable classification head: never adapted
}

// Adapter returns the attached adapter, or nil.
func (l *Linear) Adapter() *lrlora.Adapter { return l.adapter }

// forward computes the layer inside a scope.
func (l *Linear) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	if !s.ok(x) {
		return nil
	}
	if l.adapter != nil {
		y, err := l.adapter.Forward(x)
		return s.track(y, err, fmt.Sprintf("adapted %s", l.Name))
	}
	if l.Weight == nil {
		s.fail(fmt.Errorf("%s has no weight", l.Name))
		return nil
	}
	return s.linear(x, l.Weight, l.Bias)
}
