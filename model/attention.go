package model

import (
	"math"
	"sync"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Fused attention (torch's scaled_dot_product_attention) exists from libtorch 2.0 on;
// Debian's libtorch 1.13 only has a stub that fails. It is tried once per process and,
// when it works, used unless the forward pass asks for the eager path.
var fused struct {
	once sync.Once
	ok   bool
}

// FusedAttentionAvailable reports whether libtorch's fused attention op works here.
func FusedAttentionAvailable() bool {
	fused.once.Do(func() {
		q, err := ts.Zeros([]int64{1, 1, 2, 4}, gotch.Float, gotch.CPU)
		if err != nil {
			return
		}
		defer q.Drop()
		m, err := ts.Zeros([]int64{1, 1, 2, 2}, gotch.Float, gotch.CPU)
		if err != nil {
			return
		}
		defer m.Drop()
		out, err := ts.ScaledDotProductAttention(q, q, q, m, 0, false, nil)
		if err == nil {
			out.Drop()
			fused.ok = true
		}
	})
	return fused.ok
}

// repeatKV repeats each of the n_kv key/value heads nRep times (transformers' repeat_kv):
// (B, n_kv, T, d) → (B, n_kv·nRep, T, d).
func repeatKV(s *scope, x *ts.Tensor, b, nKV, nRep, t, d int64) *ts.Tensor {
	if nRep == 1 {
		return x
	}
	return s.view(s.expand(s.unsqueeze(x, 2), b, nKV, nRep, t, d), b, nKV*nRep, t, d)
}

// attend is softmax(q·kᵀ/√d, masked)·v for q, k, v of shape (B, heads, T, d) and a
// boolean mask broadcastable to (B, heads, T, T) that is true where attention is not
// allowed (nil: no mask). The softmax runs in float32 (float64 for float64) and is cast back, as in
// transformers' eager attention; dropout p applies to the probabilities in training.
func attend(s *scope, ctx *fwdCtx, q, k, v, mask *ts.Tensor, headDim int64, p float64) *ts.Tensor {
	if !s.ok(q, k, v) {
		return nil
	}
	scale := 1 / math.Sqrt(float64(headDim))
	if ctx.useFused(p) {
		// gotch cannot pass the op's None mask (an undefined tensor fails its dtype
		// check in libtorch 2.6): without a mask, an additive zero broadcast to all.
		shape := []int64{1, 1, 1, 1}
		if mask != nil {
			var err error
			if shape, err = mask.Size(); err != nil {
				s.fail(err)
				return nil
			}
		}
		z, err := ts.Zeros(shape, q.DType(), ctx.device)
		add := s.track(z, err, "zeros")
		if mask != nil {
			add = s.maskedFill(add, mask, minValue(q.DType()))
		}
		if !s.ok(add) {
			return nil
		}
		dropP := 0.0
		if ctx.train {
			dropP = p
		}
		out, err := ts.ScaledDotProductAttention(q, k, v, add, dropP, false, []float64{scale})
		return s.track(out, err, "fused attention")
	}
	scores := s.mulScalar(s.matmul(q, s.transpose(k, 2, 3)), scale)
	if mask != nil {
		masked := s.maskedFill(scores, mask, minValue(q.DType()))
		s.release(scores)
		scores = masked
	}
	probs := s.toDType(s.softmax(scores, -1, upcast(q.DType())), q.DType())
	s.release(scores)
	probs = ctx.dropout(s, probs, p)
	return s.matmul(probs, v)
}

// selfAttention is a decoder's attention block: separate q/k/v/o projections (Llama,
// Qwen2 with q/k/v biases, Mistral) or Phi-3's fused qkv_proj, split after the
// projection into q (n_heads·d), k and v (n_kv·d each).
type selfAttention struct {
	q, k, v, o *Linear
	qkv        *Linear // Phi-3
	nHeads     int64
	nKV        int64
	headDim    int64
	window     int // sliding window, 0 for full attention
	dropout    float64
}

func bindSelfAttention(b *binder, prefix string, c *Config, layer int) *selfAttention {
	h, nh, nkv, d := c.HiddenSize, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim
	a := &selfAttention{nHeads: int64(nh), nKV: int64(nkv), headDim: int64(d),
		window: c.layerWindow(layer), dropout: c.AttentionDropout}
	if c.ModelType == "phi3" {
		a.qkv = b.linear(prefix+".qkv_proj", (nh+2*nkv)*d, h, false)
		a.o = b.linear(prefix+".o_proj", h, nh*d, false)
		return a
	}
	qkvBias := c.AttentionBias || c.ModelType == "qwen2"
	a.q = b.linear(prefix+".q_proj", nh*d, h, qkvBias)
	a.k = b.linear(prefix+".k_proj", nkv*d, h, qkvBias)
	a.v = b.linear(prefix+".v_proj", nkv*d, h, qkvBias)
	a.o = b.linear(prefix+".o_proj", h, nh*d, c.AttentionBias)
	return a
}

func (a *selfAttention) forward(s *scope, ctx *fwdCtx, x *ts.Tensor) *ts.Tensor {
	bsz, t, d := ctx.b, ctx.t, a.headDim
	var q, k, v *ts.Tensor
	if a.qkv != nil {
		y := a.qkv.forward(s, x)
		q = s.narrow(y, -1, 0, a.nHeads*d)
		k = s.narrow(y, -1, a.nHeads*d, a.nKV*d)
		v = s.narrow(y, -1, (a.nHeads+a.nKV)*d, a.nKV*d)
	} else {
		q, k, v = a.q.forward(s, x), a.k.forward(s, x), a.v.forward(s, x)
	}
	q = s.transpose(s.view(q, bsz, t, a.nHeads, d), 1, 2)
	k = s.transpose(s.view(k, bsz, t, a.nKV, d), 1, 2)
	v = s.transpose(s.view(v, bsz, t, a.nKV, d), 1, 2)
	q = ctx.rope.apply(s, q, ctx.cos, ctx.sin, d)
	k = ctx.rope.apply(s, k, ctx.cos, ctx.sin, d)
	rep := a.nHeads / a.nKV
	k = repeatKV(s, k, bsz, a.nKV, rep, t, d)
	v = repeatKV(s, v, bsz, a.nKV, rep, t, d)
	out := attend(s, ctx, q, k, v, ctx.decoderMask(s, a.window), d, a.dropout)
	out = s.view(s.transpose(out, 1, 2), bsz, t, a.nHeads*d)
	return a.o.forward(s, out)
}
