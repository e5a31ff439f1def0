package model

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Rotary position embeddings, rotate-half convention (transformers' LlamaRotaryEmbedding
// and apply_rotary_pos_emb):
//
//	inv_freq_i = 1 / θ^(2i/d), i = 0..d/2−1          d = rotary dimension, θ = rope_theta
//	cos, sin   = cos(p·[inv_freq, inv_freq]), sin(…)  for position p
//	x'         = x·cos + rotate_half(x)·sin,  rotate_half([x1, x2]) = [−x2, x1]
//
// rope_scaling "linear" divides inv_freq by factor; "llama3" (Llama 3.1) keeps the high
// frequencies, divides the low ones (wavelength > original_max / low_freq_factor) by
// factor and interpolates smoothly in between. With partial_rotary_factor < 1 (Phi-3)
// only the first d = head_dim·factor channels rotate.

// rotaryDim is the number of channels of a head that rotate.
func rotaryDim(c *Config) int {
	f := c.PartialRotaryFactor
	if f == 0 || f == 1 {
		return c.HeadDim
	}
	return int(float64(c.HeadDim) * f)
}

// newRopeFrequencies returns the scaled inverse frequencies (in float64; the float32
// tables of a float32 or bfloat16 model round them).
func newRopeFrequencies(c *Config) ([]float64, error) {
	dim := rotaryDim(c)
	if dim <= 0 || dim%2 != 0 {
		return nil, fmt.Errorf("%w: rotary dimension %d (head_dim %d × partial_rotary_factor %v) must be even and positive",
			ErrConfig, dim, c.HeadDim, c.PartialRotaryFactor)
	}
	inv := make([]float64, dim/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(dim))
	}
	rs := c.RopeScaling
	switch kind := rs.Kind(); kind {
	case "default":
	case "linear":
		if !(rs.Factor > 0) {
			return nil, fmt.Errorf("%w: rope_scaling factor %v, need > 0", ErrConfig, rs.Factor)
		}
		for i := range inv {
			inv[i] /= rs.Factor
		}
	case "llama3":
		if err := llama3Scale(inv, rs); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: rope_scaling type %q (supported: default, linear, llama3)", ErrUnsupported, kind)
	}
	return inv, nil
}

// llama3Scale applies Llama 3.1's frequency scaling in place
// (transformers' _compute_llama3_parameters).
func llama3Scale(inv []float64, rs *RopeScaling) error {
	if !(rs.Factor > 0) || !(rs.LowFreqFactor > 0) || !(rs.HighFreqFactor > rs.LowFreqFactor) || rs.OriginalMaxPositionEmbeddings <= 0 {
		return fmt.Errorf("%w: llama3 rope_scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0, have %+v",
			ErrConfig, *rs)
	}
	factor, low, high := rs.Factor, rs.LowFreqFactor, rs.HighFreqFactor
	old := float64(rs.OriginalMaxPositionEmbeddings)
	lowWavelen, highWavelen := old/low, old/high
	for i, f := range inv {
		wavelen := 2 * math.Pi / f
		scaled := f
		if wavelen > lowWavelen {
			scaled = f / factor
		}
		if !(wavelen < highWavelen) && !(wavelen > lowWavelen) { // medium frequencies
			smooth := (old/wavelen - low) / (high - low)
			scaled = (1-smooth)*scaled/factor + smooth*scaled
		}
		inv[i] = scaled
	}
	return nil
}

// rope holds the inverse frequencies on the model's device: float32, as transformers
// computes the tables, or float64 for a float64 model.
type rope struct {
	invFreq *ts.Tensor // rotary/2
	dim     int64      // rotary dimension
}

func newRope(c *Config, dt gotch.DType, dev gotch.Device) (*rope, error) {
	inv, err := newRopeFrequencies(c)
	if err != nil {
		return nil, err
	}
	t, err := ts.OfSlice(inv)
	if err != nil {
		return nil, err
	}
	if dt != gotch.Double {
		if t, err = t.Totype(gotch.Float, true); err != nil {
			return nil, err
		}
	}
	if dev.IsCuda() {
		if t, err = t.To(dev, true); err != nil {
			return nil, err
		}
	}
	return &rope{invFreq: t, dim: int64(2 * len(inv))}, nil
}

func (r *rope) close() {
	if r != nil && r.invFreq != nil {
		r.invFreq.Drop()
		r.invFreq = nil
	}
}

// cosSin returns cos and sin of shape (P, 1, T, dim) in dtype for positions (P×T int64,
// P = 1 or B), computed in the frequencies' dtype.
func (r *rope) cosSin(s *scope, positions *ts.Tensor, dt gotch.DType) (cos, sin *ts.Tensor) {
	p := s.unsqueeze(s.toDType(positions, r.invFreq.DType()), -1) // P,T,1
	freqs := s.mul(p, r.invFreq)                                  // P,T,dim/2
	emb := s.unsqueeze(s.cat(-1, freqs, freqs), 1)                // P,1,T,dim
	if !s.ok(emb) {
		return nil, nil
	}
	c, err := emb.Cos(false)
	cos = s.toDType(s.track(c, err, "cos"), dt)
	sn, err := emb.Sin(false)
	sin = s.toDType(s.track(sn, err, "sin"), dt)
	return cos, sin
}

// apply rotates x (B, heads, T, head_dim) by cos and sin.
func (r *rope) apply(s *scope, x, cos, sin *ts.Tensor, headDim int64) *ts.Tensor {
	xr := x
	if r.dim < headDim {
		xr = s.narrow(x, -1, 0, r.dim)
	}
	half := r.dim / 2
	x1 := s.narrow(xr, -1, 0, half)
	x2 := s.narrow(xr, -1, half, half)
	rot := s.cat(-1, s.neg(x2), x1)
	out := s.add(s.mul(xr, cos), s.mul(rot, sin))
	if r.dim < headDim {
		out = s.cat(-1, out, s.narrow(x, -1, r.dim, headDim-r.dim))
	}
	return out
}
