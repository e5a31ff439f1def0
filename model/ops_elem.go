package model

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// The scope's element-wise ops, activations, reductions and norms (see scope in
// ops.go for how ops record their results and errors).

func (s *scope) softmax(a *ts.Tensor, dim int64, dt gotch.DType) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Softmax(dim, dt, false)
	return s.track(out, err, "softmax")
}

func (s *scope) silu(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Silu(false)
	return s.track(out, err, "silu")
}

func (s *scope) gelu(a *ts.Tensor, approximate string) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Gelu(approximate, false)
	return s.track(out, err, "gelu")
}

func (s *scope) tanh(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Tanh(false)
	return s.track(out, err, "tanh")
}

func (s *scope) relu(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Relu(false)
	return s.track(out, err, "relu")
}

func (s *scope) embedding(w, ids *ts.Tensor) *ts.Tensor {
	if !s.ok(w, ids) {
		return nil
	}
	out, err := ts.Embedding(w, ids, -1, false, false)
	return s.track(out, err, "embedding")
}

func (s *scope) exp(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Exp(false)
	return s.track(out, err, "exp")
}

func (s *scope) log(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Log(false)
	return s.track(out, err, "log")
}

func (s *scope) div(a, b *ts.Tensor) *ts.Tensor {
	if !s.ok(a, b) {
		return nil
	}
	out, err := a.Div(b, false)
	return s.track(out, err, "div")
}

func (s *scope) maximum(a, b *ts.Tensor) *ts.Tensor {
	if !s.ok(a, b) {
		return nil
	}
	out, err := a.Maximum(b, false)
	return s.track(out, err, "maximum")
}

func (s *scope) gather(a *ts.Tensor, dim int64, idx *ts.Tensor) *ts.Tensor {
	if !s.ok(a, idx) {
		return nil
	}
	out, err := a.Gather(dim, idx, false, false)
	return s.track(out, err, "gather")
}

// sumRows sums a 2-D tensor along its rows, keeping the dimension (N×1).
func (s *scope) sumRows(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.SumDimIntlist([]int64{1}, true, a.DType(), false)
	return s.track(out, err, "sum")
}

func (s *scope) indexSelect(a *ts.Tensor, dim int64, idx *ts.Tensor) *ts.Tensor {
	if !s.ok(a, idx) {
		return nil
	}
	out, err := a.IndexSelect(dim, idx, false)
	return s.track(out, err, "index select")
}

func (s *scope) maskedFill(a, mask *ts.Tensor, v float64) *ts.Tensor {
	if !s.ok(a, mask) {
		return nil
	}
	out, err := a.MaskedFill(mask, ts.FloatScalar(v), false)
	return s.track(out, err, "masked fill")
}

func (s *scope) dropout(a *ts.Tensor, p float64, train bool) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	if p == 0 || !train {
		out, err := a.ShallowClone()
		return s.track(out, err, "shallow clone")
	}
	out, err := ts.Dropout(a, p, true)
	return s.track(out, err, "dropout")
}

func (s *scope) square(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Square(false)
	return s.track(out, err, "square")
}

// meanLast is the mean over the last dimension, kept as a size-1 dimension.
func (s *scope) meanLast(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.MeanDim([]int64{-1}, true, a.DType(), false)
	return s.track(out, err, "mean")
}

func (s *scope) rsqrt(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Rsqrt(false)
	return s.track(out, err, "rsqrt")
}

func (s *scope) layerNorm(x, w, b *ts.Tensor, eps float64) *ts.Tensor {
	if !s.ok(x, w, b) {
		return nil
	}
	shape, err := w.Size()
	if err != nil {
		s.fail(err)
		return nil
	}
	out, err := ts.LayerNorm(x, shape, w, b, eps, false)
	return s.track(out, err, "layer norm")
}
