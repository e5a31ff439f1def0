package phiop

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// adamwEntry makes a float entry of the given shape and dtype with a fresh state.
func adamwEntry(t *testing.T, shape []int64, dtype gotch.DType) AdamWEntry {
	t.Helper()
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	vals := func(scale float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = scale * float64(i+1)
		}
		return out
	}
	return AdamWEntry{
		Param: newTensor(t, vals(0.5), shape, dtype, false), Grad: newTensor(t, vals(-0.25), shape, dtype, false),
		ExpAvg: newTensor(t, vals(0), shape, dtype, false), ExpAvgSq: newTensor(t, vals(0), shape, dtype, false),
		Step: 1, LR: 0.1,
	}
}

// Every refusal names the entry and the reason, and leaves every tensor of the
// list as it was: entry 0, which comes before the bad entry, is not stepped.
func TestAdamWRefusals(t *testing.T) {
	lockThread(t)
	h := AdamWHyper{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	transposed := func(t *testing.T) *ts.Tensor {
		x := newTensor(t, []float64{1, 2, 3, 4, 5, 6}, []int64{2, 3}, gotch.Float, false)
		y := x.MustTranspose(0, 1, false)
		t.Cleanup(func() { y.MustDrop() })
		return y
	}
	for _, c := range []struct {
		name   string
		break_ func(t *testing.T, list []AdamWEntry, h *AdamWHyper)
		index  int
		want   error
		text   string
	}{
		{"grad shape", func(t *testing.T, l []AdamWEntry, _ *AdamWHyper) {
			l[1].Grad = newTensor(t, []float64{1, 2}, []int64{2}, gotch.Float, false)
		}, 1, ErrShape, "grad shape [2] differs from param shape [3, 2]"},
		{"grad dtype", func(t *testing.T, l []AdamWEntry, _ *AdamWHyper) {
			l[1].Grad = adamwEntry(t, []int64{3, 2}, gotch.Double).Grad
		}, 1, ErrDType, "grad dtype Double differs from param dtype Float"},
		{"mixed dtypes across entries", func(t *testing.T, l []AdamWEntry, _ *AdamWHyper) {
			l[1] = adamwEntry(t, []int64{3, 2}, gotch.Double)
		}, 1, ErrDType, "one call takes one dtype"},
		{"half", func(t *testing.T, l []AdamWEntry, _ *AdamWHyper) {
			l[1] = adamwEntry(t, []int64{3, 2}, gotch.Half)
		}, 1, ErrUnsupported, "is not float32 or float64"},
		{"non-contiguous", func(t *testing.T, l []AdamWEntry, _ *AdamWHyper) {
			l[1].Param = transposed(t)
		}, 1, ErrUnsupported, "param is not a contiguous strided tensor"},
		{"nil", func(t *testing.T, l []AdamWEntry, _ *AdamWHyper) { l[1].ExpAvgSq = nil }, 1, ErrNilTensor, "exp_avg_sq is nil"},
		{"negative lr", func(t *testing.T, l []AdamWEntry, _ *AdamWHyper) { l[1].LR = -1 }, 1, ErrHyper, "learning rate -1"},
		{"step 0", func(t *testing.T, l []AdamWEntry, _ *AdamWHyper) { l[1].Step = 0 }, 1, ErrHyper, "step 0"},
		{"beta1 = 1", func(t *testing.T, _ []AdamWEntry, h *AdamWHyper) { h.Beta1 = 1 }, -1, ErrHyper, "betas (1, 0.999)"},
		{"eps 0", func(t *testing.T, _ []AdamWEntry, h *AdamWHyper) { h.Eps = 0 }, -1, ErrHyper, "eps 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			list := []AdamWEntry{adamwEntry(t, []int64{4}, gotch.Float), adamwEntry(t, []int64{3, 2}, gotch.Float)}
			before := values(list[0].Param)
			hc := h
			c.break_(t, list, &hc)
			err := AdamW(list, hc)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("error %v, want %v containing %q", err, c.want, c.text)
			}
			var ee *EntryError
			if got := errors.As(err, &ee); got != (c.index >= 0) || (got && ee.Index != c.index) {
				t.Errorf("error %v: entry error %v, want index %d", err, got, c.index)
			}
			if after := values(list[0].Param); !slices.Equal(before, after) {
				t.Errorf("a refused list changed entry 0: %v -> %v", before, after)
			}
		})
	}
}

// AdamWCheck groups entries by dtype and device and tells a refusal the caller
// can route elsewhere (ErrUnsupported) from a mismatch.
func TestAdamWCheck(t *testing.T) {
	lockThread(t)
	f1, f2 := adamwEntry(t, []int64{3}, gotch.Float), adamwEntry(t, []int64{2, 2}, gotch.Float)
	d1 := adamwEntry(t, []int64{3}, gotch.Double)
	key := func(e AdamWEntry) int64 {
		k, err := AdamWCheck(e.Param, e.Grad, e.ExpAvg, e.ExpAvgSq)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if key(f1) != key(f2) || key(f1) == key(d1) {
		t.Errorf("group keys f32 %d, %d, f64 %d: want equal, equal, different", key(f1), key(f2), key(d1))
	}
	if _, err := AdamWCheck(f1.Param, f2.Grad, f1.ExpAvg, f1.ExpAvgSq); !errors.Is(err, ErrShape) {
		t.Errorf("shape mismatch: %v", err)
	}
	h := adamwEntry(t, []int64{3}, gotch.Half)
	if _, err := AdamWCheck(h.Param, h.Grad, h.ExpAvg, h.ExpAvgSq); !errors.Is(err, ErrUnsupported) {
		t.Errorf("half: %v", err)
	}
	if _, err := AdamWCheck(f1.Param, nil, f1.ExpAvg, f1.ExpAvgSq); !errors.Is(err, ErrNilTensor) {
		t.Errorf("nil grad: %v", err)
	}
}
