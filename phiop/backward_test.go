package phiop

import (
	"errors"
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
