package model_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// fusedStep is trainStep for a pass that computes its loss in the head: the loss is
// LossSum divided by the host's count of targets.
func fusedStep(t *testing.T, m *model.Model, in model.Inputs, labels []int64, seqLen int) (float64, map[string][]float64) {
	t.Helper()
	p, err := m.Begin(in)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Logits() != nil || p.LossSum() == nil {
		t.Fatalf("a fused pass has logits %v and loss %v; want only a loss", p.Logits() != nil, p.LossSum() != nil)
	}
	mean := p.LossSum().MustDivScalar(ts.FloatScalar(float64(model.CausalLMTargets(labels, seqLen))), false)
	defer mean.Drop()
	if err := p.Backward(mean); err != nil {
		t.Fatal(err)
	}
	return tensortest.Values(t, mean)[0], takeGrads(t, m)
}

// The loss computed in the head, a chunk of vocabulary rows at a time, against
// libtorch's cross-entropy on the full logits (CausalLMLoss, itself checked against the
// closed form above): the loss and every adapter gradient, with and without activation
// checkpointing, for chunks of one row (the online softmax rescaled at every row), of
// sizes that do not divide the vocabulary, of the automatic size and of more than the
// vocabulary. Labels include IgnoreIndex, on padding and inside a
// sequence. In float64 only the order of the sums differs (1e-10 relative to 1 + |x|);
// in float32 the logits of a chunk are a GEMM of other shape than the full one (other
// blocking, so other rounding): float32's 2⁻²⁴ times sums of up to V = 512 terms,
// whose terms are bounded by |z| ≤ 10, and, with one row per chunk, up to V rescalings
// of the running sums by e^(m−m′), each exact to 2⁻²⁴ (512 · 2⁻²⁴ ≈ 3e-5 relative),
// allows 1e-4.
func TestFusedLossMatchesCrossEntropyOnLogits(t *testing.T) {
	labels := []int64{0, 17, -100, 9, 250, 71, 2, 0, 44, 45, 46, 2, -100, -100}
	for _, c := range []struct {
		arch string
		dt   gotch.DType
		tol  float64
		tied bool
	}{{"llama", gotch.Double, 1e-10, false}, {"qwen2", gotch.Double, 1e-10, true}, {"llama", gotch.Float, 1e-4, false}, {"phi3", gotch.Float, 1e-4, false}} {
		t.Run(fmt.Sprintf("%s/%v/tied=%v", c.arch, c.dt, c.tied), func(t *testing.T) {
			lockThread(t)
			dir := writeTiny(t, c.arch, func(o *hfinit.Options) {
				o.InitStd, o.Perturb = 0.2, true
				o.Overrides = map[string]any{"tie_word_embeddings": c.tied}
			})
			m := mustLoad(t, dir, model.WithDType(c.dt))
			if _, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 2), rand.New(rand.NewPCG(3, 3))); err != nil {
				t.Fatal(err)
			}
			perturbAdapters(t, m, 4)
			m.Train(true)
			in, _ := twoSequences(c.arch)
			lab, _ := model.Int64Tensor(labels, 2, 7)
			defer lab.Drop()
			for _, ckpt := range []bool{false, true} {
				m.SetCheckpointing(ckpt)
				m.SetFusedLoss(false, 0)
				wantLoss, want := trainStep(t, m, in, lab)
				for _, chunk := range []int{1, 5, 0, 100, 1 << 20} {
					m.SetFusedLoss(true, chunk)
					fin := in
					fin.Labels = lab
					loss, got := fusedStep(t, m, fin, labels, 7)
					what := fmt.Sprintf("checkpointing %v, chunk %d", ckpt, chunk)
					checkClose(t, what+": loss", []float64{loss}, []float64{wantLoss}, c.tol)
					if len(got) == 0 || len(got) != len(want) {
						t.Fatalf("%s: %d gradients, want %d", what, len(got), len(want))
					}
					for name, g := range want {
						checkClose(t, what+": gradient of "+name, got[name], g, c.tol)
					}
				}
			}
		})
	}
}

// A one-token sequence has no target: the loss is zero and so are the gradients, as
// with the logits. Labels that do not match the input ids are refused.
func TestFusedLossEdges(t *testing.T) {
	lockThread(t)
	m := mustLoad(t, writeTiny(t, "llama"))
	if _, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 2), rand.New(rand.NewPCG(3, 3))); err != nil {
		t.Fatal(err)
	}
	perturbAdapters(t, m, 4)
	m.Train(true)
	m.SetFusedLoss(true, 0)
	ids, _ := model.Int64Tensor([]int64{5, 6}, 2, 1)
	defer ids.Drop()
	p, err := m.Begin(model.Inputs{InputIDs: ids, Labels: ids})
	if err != nil {
		t.Fatal(err)
	}
	if v := tensortest.Values(t, p.LossSum()); len(v) != 1 || v[0] != 0 {
		t.Errorf("loss of one-token sequences = %v, want 0", v)
	}
	if err := p.Backward(p.LossSum()); err != nil {
		t.Fatal(err)
	}
	p.Close()
	for _, nt := range m.TrainableTensors() {
		if !nt.Trainable {
			continue
		}
		g := nt.Tensor.MustGrad(false)
		for _, v := range tensortest.Values(t, g) {
			if v != 0 {
				t.Fatalf("gradient of %s is %v, want 0", nt.Name, v)
			}
		}
		g.Drop()
	}

	long, _ := model.Int64Tensor([]int64{5, 6, 7}, 1, 3)
	defer long.Drop()
	if _, err := m.Begin(model.Inputs{InputIDs: long, Labels: ids}); !errors.Is(err, model.ErrInput) {
		t.Errorf("labels 2×1 for input ids 1×3: err %v, want ErrInput", err)
	}
	// Without labels, or turned off, the pass computes logits.
	for _, in := range []model.Inputs{{InputIDs: long}} {
		p, err := m.Begin(in)
		if err != nil {
			t.Fatal(err)
		}
		if p.Logits() == nil || p.LossSum() != nil {
			t.Error("a pass without labels has no logits")
		}
		p.Close()
	}
}
