package phiop

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Backward refuses what torch::autograd::backward would misuse or crash on, with a
// message naming the entry, and adds into .grad where a gradient is already there.
func TestBackwardChecksItsEntries(t *testing.T) {
	lockThread(t)
	leaf := newTensor(t, []float64{1, 2, 3}, []int64{3}, gotch.Double, true)
	defer leaf.MustDrop()
	out := func() *ts.Tensor { return leaf.MustMulScalar(ts.FloatScalar(2), false) }
	ones := newTensor(t, []float64{1, 1, 1}, []int64{3}, gotch.Double, false)
	defer ones.MustDrop()
	two := newTensor(t, []float64{1, 1}, []int64{2}, gotch.Double, false)
	defer two.MustDrop()
	f32 := newTensor(t, []float64{1, 1, 1}, []int64{3}, gotch.Float, false)
	defer f32.MustDrop()
	y := out()
	defer y.MustDrop()
	for _, tc := range []struct {
		name    string
		outs    []*ts.Tensor
		grads   []*ts.Tensor
		want    string
		wantNil bool
	}{
		{"counts differ", []*ts.Tensor{y}, nil, "1 outputs but 0 gradients", false},
		{"nil entry", []*ts.Tensor{y}, []*ts.Tensor{nil}, "backward entry 0", true},
		{"no graph", []*ts.Tensor{ones}, []*ts.Tensor{ones}, "output 0 records no graph", false},
		{"shape", []*ts.Tensor{y}, []*ts.Tensor{two}, "entry 0: output [3] but gradient [2]", false},
		{"dtype", []*ts.Tensor{y}, []*ts.Tensor{f32}, "entry 0: gradient Float", false},
	} {
		err := Backward(tc.outs, tc.grads)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if tc.wantNil && !errors.Is(err, ErrNilTensor) {
			t.Errorf("%s: %v does not wrap ErrNilTensor", tc.name, err)
		}
	}
	// Two calls on two graphs accumulate: 2·1 + 2·1 per element.
	for range 2 {
		y := out()
		if err := Backward([]*ts.Tensor{y}, []*ts.Tensor{ones}); err != nil {
			t.Fatal(err)
		}
		y.MustDrop()
	}
	g := leaf.MustGrad(false)
	defer g.MustDrop()
	if got := g.Float64Values(); got[0] != 4 || got[1] != 4 || got[2] != 4 {
		t.Errorf("leaf gradient %v, want [4 4 4]", got)
	}
	if err := Backward(nil, nil); err != nil {
		t.Errorf("no entries: %v", err)
	}
}

// SetGrad points a leaf's .grad at a slot of a larger buffer: later backward passes
// add into the slot in place (2·1 twice: 4 per element), the rest of the buffer is
// untouched, and a gradient of another shape or a leaf without requires_grad is
// refused with a message saying which.
func TestSetGradGathersIntoTheGivenStorage(t *testing.T) {
	lockThread(t)
	leaf := newTensor(t, []float64{1, 2, 3}, []int64{3}, gotch.Double, true)
	defer leaf.MustDrop()
	buf := newTensor(t, []float64{7, 7, 0, 0, 0, 7}, []int64{6}, gotch.Double, false)
	defer buf.MustDrop()
	slot := buf.MustNarrow(0, 2, 3, false)
	defer slot.MustDrop()
	if err := SetGrad(leaf, slot); err != nil {
		t.Fatal(err)
	}
	ones := newTensor(t, []float64{1, 1, 1}, []int64{3}, gotch.Double, false)
	defer ones.MustDrop()
	for range 2 {
		y := leaf.MustMulScalar(ts.FloatScalar(2), false)
		if err := Backward([]*ts.Tensor{y}, []*ts.Tensor{ones}); err != nil {
			t.Fatal(err)
		}
		y.MustDrop()
	}
	if got, want := buf.Float64Values(), []float64{7, 7, 4, 4, 4, 7}; !slices.Equal(got, want) {
		t.Errorf("buffer %v, want %v (the passes added into the slot)", got, want)
	}
	two := newTensor(t, []float64{0, 0}, []int64{2}, gotch.Double, false)
	defer two.MustDrop()
	if err := SetGrad(leaf, two); err == nil || !strings.Contains(err.Error(), "gradient [2]") {
		t.Errorf("a [2] gradient for a [3] leaf: %v", err)
	}
	if err := SetGrad(ones, slot); err == nil || !strings.Contains(err.Error(), "not a leaf that requires grad") {
		t.Errorf("a leaf without requires_grad: %v", err)
	}
	if err := SetGrad(nil, slot); !errors.Is(err, ErrNilTensor) {
		t.Errorf("nil leaf: %v, want ErrNilTensor", err)
	}
}
