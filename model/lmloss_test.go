package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/model"
)

// The causal LM loss over several sequences, against the closed form in float64: the
// loss Σ over positions t < T−1 whose next label is not IgnoreIndex of
// logsumexp(z[b,t]) − z[b,t,label[b,t+1]], and its gradient softmax(z[b,t]) −
// onehot(label[b,t+1]) on those positions, zero on the others (the last position of
// every sequence included). Float64 logits: only the order of the sums differs
// (1e-12 relative).
func TestCausalLMLossClosedForm(t *testing.T) {
	const b, T, v = 3, 5, 7
	rng := rand.New(rand.NewPCG(5, 9))
	z := make([]float64, b*T*v)
	for i := range z {
		z[i] = 2 * rng.NormFloat64()
	}
	labels := []int64{
		-100, 3, 0, 6, -100,
		2, 2, -100, 1, 5,
		4, -100, -100, -100, 0,
	}
	logits := ts.MustOfSlice(z).MustReshape([]int64{b, T, v}, true).MustSetRequiresGrad(true, false)
	defer logits.MustDrop()
	loss, err := model.CausalLMLossSum(logits, ids(t, labels, b, T))
	if err != nil {
		t.Fatal(err)
	}
	defer loss.MustDrop()
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	var want float64
	wantGrad := make([]float64, len(z))
	for i := range b {
		for j := range T - 1 {
			y := labels[i*T+j+1]
			if y == model.IgnoreIndex {
				continue
			}
			row := z[(i*T+j)*v : (i*T+j+1)*v]
			m := math.Inf(-1)
			for _, x := range row {
				m = max(m, x)
			}
			var se float64
			for _, x := range row {
				se += math.Exp(x - m)
			}
			lse := m + math.Log(se)
			want += lse - row[y]
			for k, x := range row {
				wantGrad[(i*T+j)*v+k] = math.Exp(x - lse)
			}
			wantGrad[(i*T+j)*v+int(y)]--
		}
	}
	checkClose(t, "loss", tensortest.Values(t, loss), []float64{want}, 1e-12)
	g := logits.MustGrad(false)
	defer g.MustDrop()
	got := tensortest.Values(t, g)
	if len(got) != len(wantGrad) {
		t.Fatalf("gradient has %d values, want %d", len(got), len(wantGrad))
	}
	for i := range got {
		if d := math.Abs(got[i] - wantGrad[i]); d > 1e-12 {
			t.Fatalf("∂loss/∂z[%d] = %.17g, want %.17g", i, got[i], wantGrad[i])
		}
	}
}
