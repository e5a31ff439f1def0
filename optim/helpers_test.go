package optim

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// lockThread pins the test goroutine: libtorch's grad mode is per OS thread.
func lockThread(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// leaf makes a leaf tensor from float64 values with the given shape and dtype.
func leaf(t *testing.T, vals []float64, shape []int64, dtype gotch.DType, requiresGrad bool) *ts.Tensor {
	t.Helper()
	x := ts.MustOfSlice(vals).MustReshape(shape, true).MustTotype(dtype, true)
	if requiresGrad {
		x = x.MustSetRequiresGrad(true, true)
	}
	return x
}

// setGrads gives each params[i] the gradient grads[i] (nil: none) through the loss
// Σ_i sum(p_i ⊙ G_i), after zeroing the existing gradients.
func setGrads(t *testing.T, o *AdamW, params []*ts.Tensor, grads [][]float64) {
	t.Helper()
	if err := o.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	var loss *ts.Tensor
	for i, p := range params {
		if grads[i] == nil {
			continue
		}
		g := leaf(t, grads[i], p.MustSize(), p.DType(), false)
		term := p.MustMul(g, false).MustSum(p.DType(), true)
		g.MustDrop()
		if loss == nil {
			loss = term
		} else {
			loss = loss.MustAdd(term, true)
			term.MustDrop()
		}
	}
	loss.MustBackward()
	loss.MustDrop()
}

// liveTensors counts gotch tensor handles not yet freed. The caller disables the
// GC so that finalizers do not free (and so hide) leaked handles meanwhile.
func liveTensors() int { return len(ts.ExistingTensors) }

func withoutGC(t *testing.T) {
	t.Helper()
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

func closeTo(a, b, tol float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	m := b
	if m < 0 {
		m = -m
	}
	return d <= tol*(1+m)
}
