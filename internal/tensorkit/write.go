package tensorkit

import (
	"fmt"
	"math/rand/v2"

	"github.com/sugarme/gotch/ts"
)

// SetFloat32s copies vals (row-major, dst's shape) into dst in place, without
// autograd, so dst may be a leaf that requires grad; libtorch converts the values
// to dst's dtype. The staging tensors are freed before it returns.
func SetFloat32s(dst *ts.Tensor, vals []float32) error {
	shape, err := dst.Size()
	if err != nil {
		return fmt.Errorf("tensorkit: size: %w", err)
	}
	if n := NumElements(shape); n != int64(len(vals)) {
		return fmt.Errorf("tensorkit: %d values for shape %v (%d elements)", len(vals), shape, n)
	}
	if len(vals) == 0 {
		return nil
	}
	flat, err := ts.OfSlice(vals)
	if err != nil {
		return fmt.Errorf("tensorkit: from %d values: %w", len(vals), err)
	}
	defer flat.Drop()
	src, err := flat.Reshape(shape, false)
	if err != nil {
		return fmt.Errorf("tensorkit: reshape to %v: %w", shape, err)
	}
	defer src.Drop()
	return NoGrad(func() error {
		out, err := dst.CopyOut(dst, src, false, false)
		if err != nil {
			return fmt.Errorf("tensorkit: copy into %v: %w", shape, err)
		}
		return out.Drop()
	})
}

// FillNormal sets dst to float32(std·rng.NormFloat64()) draws in row-major order,
// through SetFloat32s: the same rng state gives the same tensor on any machine.
func FillNormal(dst *ts.Tensor, rng *rand.Rand, std float64) error {
	shape, err := dst.Size()
	if err != nil {
		return fmt.Errorf("tensorkit: size: %w", err)
	}
	vals := make([]float32, NumElements(shape))
	for i := range vals {
		vals[i] = float32(std * rng.NormFloat64())
	}
	return SetFloat32s(dst, vals)
}

// CopyValues copies src's values into dst in place, outside autograd (dst may be a
// leaf that requires grad, or a view into a larger buffer): src is read with dst's
// shape, so it may have any shape of the same number of elements.
func CopyValues(dst, src *ts.Tensor) error {
	return NoGrad(func() error {
		v, err := src.ViewAs(dst, false)
		if err != nil {
			return fmt.Errorf("tensorkit: view as the destination: %w", err)
		}
		defer v.Drop()
		out, err := dst.CopyOut(dst, v, false, false)
		if err != nil {
			return fmt.Errorf("tensorkit: copy: %w", err)
		}
		return out.Drop()
	})
}

// Done drops the handle that a libtorch `out=` call returned and passes its error on.
// In-place updates go through those variants with out = self (t.MulOut(t, u, false))
// rather than gotch's `X_` methods: those replace the Go tensor's C handle with a new
// one and never free the old, which keeps the storage alive for good.
func Done(h *ts.Tensor, err error) error {
	if err != nil {
		return err
	}
	return h.Drop()
}
