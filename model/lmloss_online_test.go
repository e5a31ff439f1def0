package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// The fused loss's online softmax against a float64 reference computed here from the
// same float32 inputs, on logits far beyond float32's exp range (|z| up to ≈ 150, where
// e^z overflows at 88.7): the loss and ∂loss/∂x must stay finite and right for chunks of
// one row (the running maximum rises at almost every row), of sizes that do not divide
// the vocabulary of 37, and of the automatic size (all rows at once), with a bias and
// ignored targets. Tolerances: a float32 logit here is a sum of H = 16 products of
// magnitude ≤ 60, so it carries an absolute error up to 16 · 2⁻²⁴ · 60 ≈ 6e-5; the loss
// (a sum of 6 terms lse − z_y of magnitude ≤ 300) inherits about 6 · 2 · 6e-5, and each
// gradient element (Σ p_v W_v − W_y, |W| ≤ 15) about 15 · 6e-5 through the
// probabilities. 1e-3 absolute on the loss and 2e-3 on the gradient leave room.
func TestOnlineSoftmaxLossOnLargeLogits(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const b, tl, hid, vocab = 2, 5, 16, 37
	rng := rand.New(rand.NewPCG(7, 11))
	normal := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(std * rng.NormFloat64())
		}
		return v
	}
	xs, ws, bs := normal(b*tl*hid, 4), normal(vocab*hid, 3), normal(vocab, 5)
	labels := []int64{3, 36, 0, IgnoreIndex, 17, 5, 5, 35, IgnoreIndex, 1}
	tensor := func(v []float32, shape ...int64) *ts.Tensor {
		t.Helper()
		x, err := ts.OfSlice(v)
		if err == nil {
			x, err = x.Reshape(shape, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x, w, bias := tensor(xs, b, tl, hid), tensor(ws, vocab, hid), tensor(bs, vocab)
	defer x.Drop()
	defer w.Drop()
	defer bias.Drop()
	lab, err := Int64Tensor(labels, b, tl)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Drop()

	// The reference, in float64: position (i, j) predicts labels[i][j+1].
	var wantLoss float64
	wantGrad := make([]float64, b*tl*hid)
	maxLogit := 0.0
	for i := range b {
		for j := range tl - 1 {
			y := labels[i*tl+j+1]
			if y == IgnoreIndex {
				continue
			}
			p := (i*tl + j) * hid
			z := make([]float64, vocab)
			m := math.Inf(-1)
			for v := range vocab {
				z[v] = float64(bs[v])
				for h := range hid {
					z[v] += float64(xs[p+h]) * float64(ws[v*hid+h])
				}
				m = max(m, z[v])
				maxLogit = max(maxLogit, math.Abs(z[v]))
			}
			var sum float64
			for v := range vocab {
				sum += math.Exp(z[v] - m)
			}
			wantLoss += m + math.Log(sum) - z[y]
			for v := range vocab {
				pv := math.Exp(z[v]-m) / sum
				if int64(v) == y {
					pv--
				}
				for h := range hid {
					wantGrad[p+h] += pv * float64(ws[v*hid+h])
				}
			}
		}
	}
	if maxLogit < 100 {
		t.Fatalf("largest |logit| %.1f: the test wants logits past float32's exp range", maxLogit)
	}
	src, err := newRowSource(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	bsrc, err := newRowSource(bias, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 3, 7, 16, 0} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			sum, grad, err := lossAndGrad(x, lab, src, bsrc, chunk)
			if err != nil {
				t.Fatal(err)
			}
			defer sum.Drop()
			defer grad.Drop()
			loss, err := tensorkit.Scalar(sum)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(loss - wantLoss); !(d <= 1e-3) {
				t.Errorf("loss %.6f, want %.6f (off by %.3g)", loss, wantLoss, d)
			}
			got, err := tensorkit.Float64s(grad)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(wantGrad) {
				t.Fatalf("%d gradient values, want %d", len(got), len(wantGrad))
			}
			worst := 0.0
			for i := range got {
				if d := math.Abs(got[i] - wantGrad[i]); !(d <= worst) {
					worst = d
				}
			}
			t.Logf("loss %.6f (reference %.6f), largest gradient error %.3g", loss, wantLoss, worst)
			if !(worst <= 2e-3) {
				t.Errorf("gradient off by up to %.3g, want ≤ 2e-3", worst)
			}
		})
	}
}
