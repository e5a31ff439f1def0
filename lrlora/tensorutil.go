package lrlora

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// Small helpers over gotch that return errors instead of exiting and free every
// intermediate they create. gotch's `del` flag drops the receiver even when the
// op fails, so helpers only pass del=true for tensors this package owns.

// newTensor builds a tensor of the given shape, dtype and device from float64 values.
// With trainable it becomes a leaf that requires grad.
func newTensor(vals []float64, shape []int64, dtype gotch.DType, dev gotch.Device, trainable bool) (*ts.Tensor, error) {
	flat, err := ts.OfSlice(vals)
	if err != nil {
		return nil, fmt.Errorf("tensor from slice: %w", err)
	}
	t, err := flat.Reshape(shape, true)
	if err != nil {
		return nil, fmt.Errorf("reshape to %v: %w", shape, err)
	}
	if dtype != gotch.Double {
		if t, err = t.Totype(dtype, true); err != nil {
			return nil, fmt.Errorf("cast to %v: %w", dtype, err)
		}
	}
	if dev.IsCuda() {
		if t, err = t.To(dev, true); err != nil {
			return nil, fmt.Errorf("move to %v: %w", dev, err)
		}
	}
	if trainable {
		if t, err = t.SetRequiresGrad(true, true); err != nil {
			return nil, fmt.Errorf("requires grad: %w", err)
		}
	}
	return t, nil
}

// mulScalar returns t·c; with del the receiver is dropped.
func mulScalar(t *ts.Tensor, c float64, del bool) (*ts.Tensor, error) {
	s := ts.FloatScalar(c)
	return t.MulScalar(s, del)
}

// allFinite reports whether every element of t is finite.
func allFinite(t *ts.Tensor) (bool, error) {
	f, err := t.Isfinite(false)
	if err != nil {
		return false, err
	}
	all, err := f.All(true)
	if err != nil {
		return false, err
	}
	v, err := tensorkit.Scalar(all)
	all.Drop()
	if err != nil {
		return false, err
	}
	return v != 0, nil
}

// floatDTypeFor is the dtype of adapter parameters for a backbone of dtype d:
// float64 backbones get float64 adapters, every other backbone float32 ones
// (fp32 master weights for bf16/fp16 backbones).
func floatDTypeFor(d gotch.DType) gotch.DType {
	if d == gotch.Double {
		return gotch.Double
	}
	return gotch.Float
}

// sameDevice compares devices by their libtorch index: gotch describes the CPU as
// {CPU -1} in gotch.CPU but as {CPU 1} when it reads a tensor's device.
func sameDevice(a, b gotch.Device) bool {
	return a.IsCuda() == b.IsCuda() && (!a.IsCuda() || a.Value == b.Value)
}
