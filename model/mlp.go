package model

import (
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/phiop"
)

// act applies a hidden_act by its canonical name (see activation).
func (s *scope) act(name string, x *ts.Tensor) *ts.Tensor {
	switch name {
	case "silu":
		return s.silu(x)
	case "gelu":
		return s.gelu(x, "none")
	case "gelu_tanh":
		return s.gelu(x, "tanh")
	case "relu":
		return s.relu(x)
	}
	s.fail(fmt.Errorf("%w: activation %q", ErrUnsupported, name))
	return nil
}

// gatedMLP is the SwiGLU feed-forward block down(act(gate(x)) ⊙ up(x)) of Llama, Qwen2
// and Mistral, or Phi-3's with one fused gate_up_proj whose output is split in half
// (gate first, then up) after the projection.
type gatedMLP struct {
	gate, up, down *Linear
	gateUp         *Linear // Phi-3
	inter          int64
	act            string
}

func bindGatedMLP(b *binder, prefix string, c *Config) *gatedMLP {
	act, _ := activation(c.HiddenAct) // validated with the config
	m := &gatedMLP{inter: int64(c.IntermediateSize), act: act}
	h, i := c.HiddenSize, c.IntermediateSize
	if c.ModelType == "phi3" {
		m.gateUp = b.linear(prefix+".gate_up_proj", 2*i, h, false)
	} else {
		m.gate = b.linear(prefix+".gate_proj", i, h, c.MLPBias)
		m.up = b.linear(prefix+".up_proj", i, h, c.MLPBias)
	}
	m.down = b.linear(prefix+".down_proj", h, i, c.MLPBias)
	return m
}

func (m *gatedMLP) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	var gate, up *ts.Tensor
	if m.gateUp != nil {
		y := m.gateUp.forward(s, x)
		gate, up = s.narrow(y, -1, 0, m.inter), s.narrow(y, -1, m.inter, m.inter)
	} else {
		gate, up = m.gate.forward(s, x), m.up.forward(s, x)
	}
	return m.down.forward(s, s.gated(m.act, gate, up))
}

// gated is act(gate) ⊙ up; for SiLU one autograd node (phiop.SwiGLU) that keeps gate
// and up for backward and recomputes silu(gate) there: the same values and gradients
// as the two ops, one intermediate-size tensor per token fewer until the block's
// backward.
func (s *scope) gated(act string, gate, up *ts.Tensor) *ts.Tensor {
	if act != "silu" {
		return s.mul(s.act(act, gate), up)
	}
	if !s.ok(gate, up) {
		return nil
	}
	y, err := phiop.SwiGLU(gate, up)
	return s.track(y, err, "swiglu")
}
