package lrlora

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// lockThread pins the test goroutine: libtorch's grad mode is per OS thread.
func lockThread(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// randVals returns n values uniform in [-1, 1) from seed.
func randVals(seed uint64, n int) []float64 {
	r := seeded(seed)
	v := make([]float64, n)
	for i := range v {
		v[i] = 2*r.Float64() - 1
	}
	return v
}

// constTensor makes a tensor (no grad) from float64 values.
func constTensor(t *testing.T, v []float64, shape []int64, dtype gotch.DType) *ts.Tensor {
	t.Helper()
	x, err := newTensor(v, shape, dtype, gotch.CPU, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Drop() })
	return x
}

// read returns a tensor's values as float64.
func read(t *testing.T, x *ts.Tensor) []float64 {
	t.Helper()
	v, err := tensorkit.Float64s(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// assign overwrites x's values in place (under no-grad, so leaves may be written).
func assign(t *testing.T, x *ts.Tensor, v []float64) {
	t.Helper()
	shape := x.MustSize()
	src, err := newTensor(v, shape, x.DType(), gotch.CPU, false)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Drop()
	err = tensorkit.NoGrad(func() error {
		h, err := src.Clone(x, false) // clone_out: copies src into x
		if err == nil {
			h.Drop()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// layer is a small frozen linear layer with deterministic weights.
type layer struct {
	w0, bias *ts.Tensor
	dOut     int64
	dIn      int64
}

func newLayer(t *testing.T, dOut, dIn int64, dtype gotch.DType, seed uint64) layer {
	t.Helper()
	return layer{
		w0:   constTensor(t, randVals(seed, int(dOut*dIn)), []int64{dOut, dIn}, dtype),
		bias: constTensor(t, randVals(seed+1, int(dOut)), []int64{dOut}, dtype),
		dOut: dOut, dIn: dIn,
	}
}

// spec is the paper's adapter (adapter.Default) with the given method and rank, then
// changed by each edit.
func spec(m adapter.Method, r int, edits ...func(*adapter.Spec)) adapter.Spec {
	s := adapter.Default()
	s.Method, s.R = m, r
	for _, e := range edits {
		e(&s)
	}
	return s
}

// newAdapter builds an adapter for l, closed at the end of the test.
func newAdapter(t *testing.T, l layer, cfg adapter.Spec, seed uint64, opts ...Option) *Adapter {
	t.Helper()
	ad, err := New("layers.0.proj", l.w0, l.bias, cfg, seeded(seed), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ad.Close)
	return ad
}

// tensorByName finds a tensor in ad.Tensors().
func tensorByName(t *testing.T, ad *Adapter, suffix string) *ts.Tensor {
	t.Helper()
	for _, nt := range ad.Tensors() {
		if nt.Name == ad.Name()+suffix {
			return nt.Tensor
		}
	}
	t.Fatalf("no tensor %s%s", ad.Name(), suffix)
	return nil
}

// weightedSum is the test loss Σ y ⊙ r for a fixed r shaped like y.
func weightedSum(t *testing.T, y, r *ts.Tensor) *ts.Tensor {
	t.Helper()
	p, err := y.Mul(r, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Sum(y.DType(), true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forwardLoss is Σ ad(x)⊙r, a scalar with autograd: the loss the gradient tests use.
func forwardLoss(t *testing.T, ad *Adapter, x, r *ts.Tensor) *ts.Tensor {
	t.Helper()
	y, err := ad.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Drop()
	return weightedSum(t, y, r)
}

// backward runs backward from forwardLoss(ad, x, r), accumulating into the gradients.
func backward(t *testing.T, ad *Adapter, x, r *ts.Tensor) {
	t.Helper()
	s := forwardLoss(t, ad, x, r)
	defer s.Drop()
	if err := s.Backward(); err != nil {
		t.Fatal(err)
	}
}

func maxRelDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		d := math.Abs(a[i]-b[i]) / (1 + math.Abs(b[i]))
		if d > m || math.IsNaN(d) {
			m = d
		}
	}
	return m
}
