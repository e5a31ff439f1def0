package optim

import (
	"errors"
	"math"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
)

// TestClipGradNorm compares with the norm computed in Go over all gradients
// together, checks the clipped gradients are g·max/(total+1e-6), that gradients
// under the limit are untouched, and that a parameter without a gradient is ignored.
func TestClipGradNorm(t *testing.T) {
	lockThread(t)
	ga := []float64{3, -4, 1, 2}
	gb := []float64{0.5, -12, 7}
	var sq float64
	for _, v := range append(append([]float64{}, ga...), gb...) {
		sq += v * v
	}
	want := math.Sqrt(sq)

	a := leaf(t, []float64{1, 1, 1, 1}, []int64{2, 2}, gotch.Double, true)
	b := leaf(t, []float64{1, 1, 1}, []int64{3}, gotch.Double, true)
	c := leaf(t, []float64{1}, []int64{1}, gotch.Double, true) // never gets a gradient
	defer a.MustDrop()
	defer b.MustDrop()
	defer c.MustDrop()
	params := []ts.NamedTensor{{Name: "a", Tensor: a}, {Name: "b", Tensor: b}, {Name: "c", Tensor: c}}
	o, err := NewAdamW(params, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()

	// Over the limit: scaled.
	setGrads(t, o, []*ts.Tensor{a, b, c}, [][]float64{ga, gb, nil})
	const maxNorm = 1.0
	total, err := ClipGradNorm(params, maxNorm)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(total-want) > 1e-12*want {
		t.Fatalf("total norm %.17g, want %.17g", total, want)
	}
	coef := maxNorm / (want + 1e-6)
	for _, pc := range []struct {
		p *ts.Tensor
		g []float64
	}{{a, ga}, {b, gb}} {
		got := tensortest.Values(t, pc.p.MustGrad(false))
		for i := range got {
			if math.Abs(got[i]-pc.g[i]*coef) > 1e-15 {
				t.Fatalf("clipped grad %v, want %v·%v", got, pc.g, coef)
			}
		}
	}

	// Under the limit: untouched (coef clamps to 1).
	setGrads(t, o, []*ts.Tensor{a, b, c}, [][]float64{ga, gb, nil})
	if _, err := ClipGradNorm(params, 2*want); err != nil {
		t.Fatal(err)
	}
	if got := tensortest.Values(t, a.MustGrad(false)); got[1] != ga[1] {
		t.Errorf("gradient under the limit changed: %v", got)
	}
}

func TestClipGradNormRefusesNonFinite(t *testing.T) {
	lockThread(t)
	a := leaf(t, []float64{1, 1}, []int64{2}, gotch.Float, true)
	defer a.MustDrop()
	params := []ts.NamedTensor{{Name: "a", Tensor: a}}
	o, err := NewAdamW(params, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	setGrads(t, o, []*ts.Tensor{a}, [][]float64{{math.NaN(), 1}})
	total, err := ClipGradNorm(params, 1)
	if !errors.Is(err, ErrNonFiniteGrad) || !math.IsNaN(total) {
		t.Fatalf("total %v, err %v; want NaN and ErrNonFiniteGrad", total, err)
	}
	if got := tensortest.Values(t, a.MustGrad(false)); got[1] != 1 {
		t.Errorf("gradients changed after a refused clip: %v", got)
	}
	if _, err := ClipGradNorm(params, 0); !errors.Is(err, ErrConfig) {
		t.Errorf("max norm 0: %v", err)
	}
}

// ClipGradNorm reads the device once per call, however many parameters it clips, and
// with gradients of mixed dtypes (a float32 and a float64 one, read together in
// float64) its total is the float64 combination of the per-gradient norms: each
// float32 norm is within float32 rounding (a relative 2⁻²³ or so, here 1e-6) of the
// exact norm of its float32 values, which are exact in float64.
func TestClipGradNormReadsOnceAcrossDTypes(t *testing.T) {
	lockThread(t)
	ga := []float64{3, -4, 0.5}     // exact in float32
	gb := []float64{1e-3, 2, -7, 1} // float64
	var sqA, sqB float64
	for _, v := range ga {
		sqA += v * v
	}
	for _, v := range gb {
		sqB += v * v
	}
	want := math.Sqrt(sqA + sqB)
	a := leaf(t, []float64{1, 1, 1}, []int64{3}, gotch.Float, true)
	b := leaf(t, []float64{1, 1, 1, 1}, []int64{2, 2}, gotch.Double, true)
	defer a.MustDrop()
	defer b.MustDrop()
	params := []ts.NamedTensor{{Name: "a", Tensor: a}, {Name: "b", Tensor: b}}
	o, err := NewAdamW(params, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	setGrads(t, o, []*ts.Tensor{a, b}, [][]float64{ga, gb})
	before := tensorkit.HostReads()
	total, err := ClipGradNorm(params, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n := tensorkit.HostReads() - before; n != 1 {
		t.Errorf("ClipGradNorm read the device %d times, want once", n)
	}
	if math.Abs(total-want) > 1e-6*want {
		t.Errorf("total norm %.17g, want %.17g", total, want)
	}
}
