package optim

import (
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
