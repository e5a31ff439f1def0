package model

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/phiop"
)

// rmsNorm is LlamaRMSNorm: y = w ⊙ (x / √(mean(x²) + ε)), with the normalisation done in
// float32 (float64 for a float64 model) and cast back to x's dtype before the weight is
// applied, as transformers does.
type rmsNorm struct {
	weight *ts.Tensor
	eps    float64
}

func bindRMSNorm(b *binder, name string, size int, eps float64) *rmsNorm {
	return &rmsNorm{weight: b.weight(name+".weight", []int64{int64(size)}, InitOnes), eps: eps}
}

// forward runs the norm as one autograd node (phiop.RMSNorm): the values of the ops
// composed one by one, but backward keeps only x and the per-row rsqrt, not the
// normalised x (libtorch 1.13) or a float32 copy of a bfloat16 x: one hidden-size
// tensor per norm and token fewer until the block's backward.
func (n *rmsNorm) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	w := s.frozen(n.weight)
	if !s.ok(x, w) {
		return nil
	}
	y, err := phiop.RMSNorm(x, w, n.eps)
	return s.track(y, err, "rms norm")
}

// layerNorm is torch.nn.LayerNorm over the last dimension with weight and bias.
type layerNorm struct {
	weight, bias *ts.Tensor
	eps          float64
}

func bindLayerNorm(b *binder, name string, size int, eps float64) *layerNorm {
	return &layerNorm{
		weight: b.weight(name+".weight", []int64{int64(size)}, InitOnes),
		bias:   b.weight(name+".bias", []int64{int64(size)}, InitZeros),
		eps:    eps,
	}
}

func (n *layerNorm) forward(s *scope, x *ts.Tensor) *ts.Tensor {
	return s.layerNorm(x, s.frozen(n.weight), s.frozen(n.bias), n.eps)
}

// upcast is the dtype that norms and softmax compute in: float32, or float64 for float64.
func upcast(dt gotch.DType) gotch.DType {
	if dt == gotch.Double {
		return gotch.Double
	}
	return gotch.Float
}
