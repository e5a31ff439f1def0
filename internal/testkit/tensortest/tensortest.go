// Package tensortest reads, writes and compares a model's tensors in tests: a
// tensor's values as float64, values copied into a tensor in place, the logits of a
// model on one fixed padded batch, and the largest difference of two value lists.
// Every read goes through package internal/tensorkit (the one place that copies
// tensor data to the host); a failure fails the test.
//
//	before := tensortest.Logits(t, m)
//	tensortest.Set(t, nt.Tensor, vals)
//	if d := tensortest.MaxAbsDiff(before, tensortest.Logits(t, m)); d > tol { … }
package tensortest

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
)

// Values reads any tensor as float64 values, row-major, detached and on the host.
func Values(t testing.TB, x *ts.Tensor) []float64 {
	t.Helper()
	out, err := tensorkit.Float64s(x)
	if err != nil {
		t.Fatalf("tensortest: read tensor: %v", err)
	}
	return out
}

// Set copies vals (row-major, x's shape) into x in place, without autograd and in
// x's dtype.
func Set(t testing.TB, x *ts.Tensor, vals []float64) {
	t.Helper()
	if err := set(x, vals); err != nil {
		t.Fatalf("tensortest: set %d values: %v", len(vals), err)
	}
}

func set(x *ts.Tensor, vals []float64) error {
	// Grad mode is per OS thread: NoGrad and the copy must run on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	shape, err := x.Size()
	if err != nil {
		return fmt.Errorf("size: %w", err)
	}
	if n := tensorkit.NumElements(shape); n != int64(len(vals)) {
		return fmt.Errorf("tensor of shape %v holds %d values, not %d", shape, n, len(vals))
	}
	flat, err := ts.OfSlice(vals)
	if err != nil {
		return fmt.Errorf("from slice: %w", err)
	}
	shaped, err := flat.Reshape(shape, true)
	if err != nil {
		return fmt.Errorf("reshape to %v: %w", shape, err)
	}
	src, err := shaped.Totype(x.DType(), true)
	if err != nil {
		return fmt.Errorf("to %v: %w", x.DType(), err)
	}
	defer src.Drop()
	return tensorkit.NoGrad(func() error { x.Copy_(src); return nil })
}

// Batch is the fixed padded batch Logits runs: two rows of 6 token ids (vocabulary
// below 128, so every tiny preset has them), the second ending in two padded positions.
var Batch = struct{ IDs, Mask []int64 }{
	IDs:  []int64{1, 72, 101, 108, 33, 9, 1, 72, 5, 6, 2, 2},
	Mask: []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
}

// Logits runs m without autograd on Batch and returns its output (the logits of a
// causal LM, a classifier's scores) as float64 values.
func Logits(t testing.TB, m *model.Model) []float64 {
	t.Helper()
	out, err := logits(m)
	if err != nil {
		t.Fatalf("tensortest: logits: %v", err)
	}
	return out
}

func logits(m *model.Model) ([]float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ids, err := model.Int64Tensor(Batch.IDs, 2, 6)
	if err != nil {
		return nil, err
	}
	defer ids.Drop()
	mask, err := model.Int64Tensor(Batch.Mask, 2, 6)
	if err != nil {
		return nil, err
	}
	defer mask.Drop()
	var out []float64
	err = tensorkit.NoGrad(func() error {
		y, err := m.Forward(model.Inputs{InputIDs: ids, AttentionMask: mask})
		if err != nil {
			return fmt.Errorf("forward: %w", err)
		}
		defer y.Drop()
		out, err = tensorkit.Float64s(y)
		return err
	})
	return out, err
}

// MaxAbsDiff is max |a − b| (+Inf when the lengths differ, NaN when a difference is).
func MaxAbsDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(a[i]-b[i]))
	}
	return worst
}

// MaxAbs is max |a| (0 for none).
func MaxAbs(a []float64) float64 {
	worst := 0.0
	for _, x := range a {
		worst = math.Max(worst, math.Abs(x))
	}
	return worst
}
