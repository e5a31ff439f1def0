package optim

import (
	"fmt"
	"runtime"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// In-place updates go through libtorch's `out=` variants with out = self
// (torch::mul_out(t, t, c) and friends) rather than gotch's `X_` methods: those
// replace the Go tensor's C handle with a fresh one and never free the old handle,
// which keeps the storage referenced forever. An `out=` call writes into the
// existing storage and returns one extra handle, which we drop at once.

// done drops the handle an out= call returned and passes its error on.
func done(h *ts.Tensor, err error) error {
	if err != nil {
		return err
	}
	return h.Drop()
}

// scaleInPlace sets t ← t·c.
func scaleInPlace(t *ts.Tensor, c float64) error {
	return done(t.MulScalarOut(t, ts.FloatScalar(c), false))
}

// axpyInPlace sets t ← t + c·x.
func axpyInPlace(t *ts.Tensor, c float64, x *ts.Tensor) error {
	cx, err := x.MulScalar(ts.FloatScalar(c), false)
	if err != nil {
		return err
	}
	defer cx.Drop()
	return done(t.AddOut(t, cx, false))
}

// addcmulInPlace sets t ← t + c·x⊙y.
func addcmulInPlace(t *ts.Tensor, c float64, x, y *ts.Tensor) error {
	cx, err := x.MulScalar(ts.FloatScalar(c), false)
	if err != nil {
		return err
	}
	defer cx.Drop()
	return done(t.AddcmulOut(t, cx, y, false))
}

// addcdivInPlace sets t ← t + c·x/y.
func addcdivInPlace(t *ts.Tensor, c float64, x, y *ts.Tensor) error {
	cx, err := x.MulScalar(ts.FloatScalar(c), false)
	if err != nil {
		return err
	}
	defer cx.Drop()
	return done(t.AddcdivOut(t, cx, y, false))
}

// zeroInPlace sets every element of t to 0.
func zeroInPlace(t *ts.Tensor) error {
	return done(t.ZeroOut(t, false))
}

// gradOf returns a handle to p's gradient, or nil when p has none yet.
// The caller drops a non-nil result (the gradient itself stays with p).
func gradOf(p *ts.Tensor) (*ts.Tensor, error) {
	g, err := p.Grad(false)
	if err != nil {
		return nil, err
	}
	ok, err := g.Defined()
	if err != nil || !ok {
		g.Drop()
		return nil, err
	}
	return g, nil
}

// scalarValue reads a one-element tensor as float64.
func scalarValue(t *ts.Tensor) (float64, error) {
	c, err := t.ToDevice(gotch.CPU, gotch.Double, false, false, false)
	if err != nil {
		return 0, err
	}
	defer c.Drop()
	v := make([]float64, 1)
	if err := c.CopyData(v, 1); err != nil {
		return 0, err
	}
	return v[0], nil
}

// withNoGrad runs fn with libtorch's grad mode off and restores the previous mode
// afterwards. Grad mode is per OS thread, so the goroutine is pinned for the call
// (LockOSThread nests: callers that pinned themselves stay pinned).
func withNoGrad(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, err := gradEnabled()
	if err != nil {
		return fmt.Errorf("query grad mode: %w", err)
	}
	if _, err := ts.GradSetEnabled(false); err != nil {
		return fmt.Errorf("disable grad: %w", err)
	}
	defer ts.GradSetEnabled(prev)
	return fn()
}

// gradEnabled reports whether libtorch's grad mode is on for this OS thread, by
// probing: an op on a tensor that requires grad records autograd only in grad
// mode. (gotch v0.9.1's GradSetEnabled cannot tell: it reads the C int it gets
// back as a 64-bit Go int, so the "previous mode" it returns is garbage.)
func gradEnabled() (bool, error) {
	x, err := ts.Zeros([]int64{1}, gotch.Float, gotch.CPU)
	if err != nil {
		return false, err
	}
	if x, err = x.SetRequiresGrad(true, true); err != nil {
		return false, err
	}
	defer x.Drop()
	y, err := x.MulScalar(ts.FloatScalar(1), false)
	if err != nil {
		return false, err
	}
	defer y.Drop()
	return y.RequiresGrad()
}
