package model

import "github.com/sugarme/gotch/ts"

// Reproducible dropout. libtorch's generator cannot be seeded or saved through gotch, so
// masks that must be reproduced — when activation checkpointing recomputes a block, or
// when a run with a dropout seed resumes — come from a counter-based hash instead: the
// element with flat index i of a site with key k is kept when the top 24 bits of
// splitmix64(k + i) are below (1−p)·2^24. Recomputing a mask needs only its key, so
// nothing is stored between the forward and the backward pass.

// mix64 is splitmix64's finaliser.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// hashedKeep returns the dropout multiplier for x: 1/(1−p) where an element is kept,
// 0 where it is dropped, in x's shape and dtype. The hash runs on int64 tensors, whose
// multiplication wraps like uint64's; libtorch's right shift of int64 is arithmetic, so
// shifts are masked to make them logical, and the result is exactly splitmix64's.
func hashedKeep(s *scope, x *ts.Tensor, p float64, key uint64) *ts.Tensor {
	if !s.ok(x) {
		return nil
	}
	shape, err := x.Size()
	if err != nil {
		s.fail(err)
		return nil
	}
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	dev, err := x.Device()
	if err != nil {
		s.fail(err)
		return nil
	}
	// splitmix64 of the counter key + i: z = (key + i)·φ, then its finaliser.
	z := s.intOp(s.intOp(s.arange(n, dev), "add", int64(key)), "mul", int64(0x9e3779b97f4a7c15-1<<64))
	z = s.intOp(s.xorShift(z, 30), "mul", int64(0xbf58476d1ce4e5b9-1<<64))
	z = s.intOp(s.xorShift(z, 27), "mul", int64(0x94d049bb133111eb-1<<64))
	z = s.xorShift(z, 31)
	u := s.shr(z, 40)
	keep := s.intOp(u, "lt", int64((1-p)*(1<<24)))
	return s.view(s.mulScalar(s.toDType(keep, x.DType()), 1/(1-p)), shape...)
}

// intOp applies an integer op with a scalar operand.
func (s *scope) intOp(a *ts.Tensor, op string, v int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	var out *ts.Tensor
	var err error
	c := ts.IntScalar(v)
	switch op {
	case "add":
		out, err = a.AddScalar(c, false)
	case "mul":
		out, err = a.MulScalar(c, false)
	case "shr":
		out, err = a.BitwiseRightShiftTensorScalar(c, false)
	case "and":
		out, err = a.BitwiseAnd(c, false)
	case "lt":
		out, err = a.Lt(c, false)
	}
	return s.track(out, err, op)
}

// shr is the logical right shift of int64 bits: (z >> k) & (2^(64−k) − 1).
func (s *scope) shr(z *ts.Tensor, k int64) *ts.Tensor {
	return s.intOp(s.intOp(z, "shr", k), "and", 1<<(64-k)-1)
}

// xorShift is z ^ (z >>> k).
func (s *scope) xorShift(z *ts.Tensor, k int64) *ts.Tensor {
	sh := s.shr(z, k)
	if !s.ok(z, sh) {
		return nil
	}
	out, err := z.BitwiseXorTensor(sh, false)
	return s.track(out, err, "xor")
}
