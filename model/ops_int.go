package model

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Integer and boolean ops of scope: index ranges, comparisons and logic for masks.

// arange is 0..n-1 as int64 on dev.
func (s *scope) arange(n int64, dev gotch.Device) *ts.Tensor {
	if s.err != nil {
		return nil
	}
	out, err := ts.Arange(ts.IntScalar(n), gotch.Int64, dev)
	return s.track(out, err, "arange")
}

func (s *scope) and(a, b *ts.Tensor) *ts.Tensor {
	if !s.ok(a, b) {
		return nil
	}
	out, err := a.LogicalAnd(b, false)
	return s.track(out, err, "logical and")
}

func (s *scope) not(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.LogicalNot(false)
	return s.track(out, err, "logical not")
}

func (s *scope) le(a, b *ts.Tensor) *ts.Tensor {
	if !s.ok(a, b) {
		return nil
	}
	out, err := a.LeTensor(b, false)
	return s.track(out, err, "le")
}

func (s *scope) eq(a, b *ts.Tensor) *ts.Tensor {
	if !s.ok(a, b) {
		return nil
	}
	out, err := a.EqTensor(b, false)
	return s.track(out, err, "eq")
}

func (s *scope) ltScalar(a *ts.Tensor, v int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Lt(ts.IntScalar(v), false)
	return s.track(out, err, "lt")
}

func (s *scope) neScalar(a *ts.Tensor, v int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Ne(ts.IntScalar(v), false)
	return s.track(out, err, "ne")
}

func (s *scope) addInt(a *ts.Tensor, v int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.AddScalar(ts.IntScalar(v), false)
	return s.track(out, err, "add int")
}
