// Package tensorkit is the one home of the small gotch helpers every package
// needs: switching libtorch's grad mode for a call (NoGrad, WithGrad, Enabled),
// copying tensors to the host (Scalar, Float64s, Float32s) and writing host values
// into a tensor in place (SetFloat32s, FillNormal).
//
// libtorch keeps grad mode per OS thread and goroutines move between threads,
// so the grad-mode helpers pin the goroutine for the call
// (runtime.LockOSThread nests: a caller that pinned itself stays pinned) and
// restore the previous mode on the same thread afterwards. They rely on gotch's
// GradSetEnabled returning the previous mode, which tools/gotchadapt fixes in
// the adapted gotch build.
//
//	err := tensorkit.NoGrad(func() error {
//		// in-place parameter updates, evaluation, merging …
//		return nil
//	})
//
// The host copies detach the tensor, move it to the CPU in the requested dtype
// and make it contiguous; every intermediate is freed and every error returned
// (never gotch's Must* calls). They are the only way lrtrain's non-test code
// reads tensor data to the host (on a GPU each is a device-to-host copy that
// waits for the device), and each one counts: HostReads reports how many there
// have been, ResetHostReads starts the count again, so a test can pin the reads
// of a training step. The package imports nothing of lrtrain's, so any
// package may use it.
package tensorkit

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// NoGrad runs fn with grad mode off and restores the previous mode.
func NoGrad(fn func() error) error {
	return WithGrad(false, fn)
}

// WithGrad runs fn with grad mode set to on and restores the previous mode.
func WithGrad(on bool, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, err := ts.GradSetEnabled(on)
	if err != nil {
		return fmt.Errorf("tensorkit: set grad mode %v: %w", on, err)
	}
	defer ts.GradSetEnabled(prev)
	return fn()
}

// Enabled reports whether grad mode is on for the calling OS thread. The
// answer is only meaningful to a goroutine pinned with runtime.LockOSThread.
func Enabled() (bool, error) {
	prev, err := ts.GradSetEnabled(true)
	if err != nil {
		return false, fmt.Errorf("tensorkit: query grad mode: %w", err)
	}
	if _, err := ts.GradSetEnabled(prev); err != nil {
		return false, fmt.Errorf("tensorkit: restore grad mode: %w", err)
	}
	return prev, nil
}

// NumElements is the number of elements of a tensor of the given shape (1 for a
// scalar's empty shape).
func NumElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// hostReads counts the reads of tensor data to the host (hostCopy calls).
var hostReads atomic.Int64

// HostReads is the number of reads of tensor data to the host (Scalar,
// Float64s, Float32s, Int64s, Int64Scalar calls, one each) since the program
// started or the last ResetHostReads. Goroutines share the count.
func HostReads() int64 { return hostReads.Load() }

// ResetHostReads sets the count of host reads to zero and returns what it was.
func ResetHostReads() int64 { return hostReads.Swap(0) }

// hostCopy returns a detached, contiguous CPU copy of t in dtype dt and its
// element count. The caller drops the copy.
func hostCopy(t *ts.Tensor, dt gotch.DType) (*ts.Tensor, int64, error) {
	hostReads.Add(1)
	d, err := t.Detach(false)
	if err != nil {
		return nil, 0, fmt.Errorf("tensorkit: detach: %w", err)
	}
	defer d.Drop()
	c, err := d.ToDevice(gotch.CPU, dt, false, false, false)
	if err != nil {
		return nil, 0, fmt.Errorf("tensorkit: to host %v: %w", dt, err)
	}
	defer c.Drop()
	cc, err := c.Contiguous(false)
	if err != nil {
		return nil, 0, fmt.Errorf("tensorkit: contiguous: %w", err)
	}
	shape, err := cc.Size()
	if err != nil {
		cc.Drop()
		return nil, 0, fmt.Errorf("tensorkit: size: %w", err)
	}
	return cc, NumElements(shape), nil
}

// Float64s copies t's elements, in row-major order, into a float64 slice
// (detached, on the host; the conversion happens in libtorch).
func Float64s(t *ts.Tensor) ([]float64, error) {
	c, n, err := hostCopy(t, gotch.Double)
	if err != nil {
		return nil, err
	}
	defer c.Drop()
	out := make([]float64, n)
	if n == 0 {
		return out, nil
	}
	if err := c.CopyData(out, uint(n)); err != nil {
		return nil, fmt.Errorf("tensorkit: read %d values: %w", n, err)
	}
	return out, nil
}

// Float32s copies t's elements, in row-major order, into a float32 slice
// (detached, on the host; the conversion happens in libtorch).
func Float32s(t *ts.Tensor) ([]float32, error) {
	c, n, err := hostCopy(t, gotch.Float)
	if err != nil {
		return nil, err
	}
	defer c.Drop()
	out := make([]float32, n)
	if n == 0 {
		return out, nil
	}
	if err := c.CopyData(out, uint(n)); err != nil {
		return nil, fmt.Errorf("tensorkit: read %d values: %w", n, err)
	}
	return out, nil
}

// Scalar reads a one-element tensor (of any shape) as float64. Reading goes
// through float64, so float32, bfloat16 and float16 values come back exactly.
func Scalar(t *ts.Tensor) (float64, error) {
	v, err := Float64s(t)
	if err != nil {
		return 0, err
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("tensorkit: scalar: want one element, have %d", len(v))
	}
	return v[0], nil
}

// Int64s copies t's elements, in row-major order, into an int64 slice
// (detached, on the host; the conversion happens in libtorch).
func Int64s(t *ts.Tensor) ([]int64, error) {
	c, n, err := hostCopy(t, gotch.Int64)
	if err != nil {
		return nil, err
	}
	defer c.Drop()
	out := make([]int64, n)
	if n == 0 {
		return out, nil
	}
	if err := c.CopyData(out, uint(n)); err != nil {
		return nil, fmt.Errorf("tensorkit: read %d values: %w", n, err)
	}
	return out, nil
}

// Int64Scalar reads a one-element tensor (of any shape) as int64.
func Int64Scalar(t *ts.Tensor) (int64, error) {
	v, err := Int64s(t)
	if err != nil {
		return 0, err
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("tensorkit: int64 scalar: want one element, have %d", len(v))
	}
	return v[0], nil
}
