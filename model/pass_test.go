package model_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// perturbAdapters sets every trainable adapter tensor to seeded random values (B ≠ 0,
// a ≠ 0), so that gradients reach A, B, a and β. Amplitudes stay small: φ sums 50 of
// them, and a large ΔW would saturate the attention softmax (and zero q's and k's
// gradients).
func perturbAdapters(t *testing.T, m *model.Model, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, nt := range m.TrainableTensors() {
		if !nt.Trainable {
			continue
		}
		size, _ := nt.Tensor.Size()
		n := int64(1)
		for _, d := range size {
			n *= d
		}
		std := 0.3
		if strings.HasSuffix(nt.Name, ".phi.amplitude") {
			std = 0.01
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = std * rng.NormFloat64()
		}
		src := ts.MustOfSlice(v).MustReshape(size, true).MustTotype(nt.Tensor.DType(), true)
		ts.NoGrad(func() { nt.Tensor.Copy_(src) })
		src.Drop()
	}
}

// trainStep runs one forward and backward pass and returns the loss and every
// trainable tensor's gradient, then zeroes the gradients.
func trainStep(t *testing.T, m *model.Model, in model.Inputs, labels *ts.Tensor) (float64, map[string][]float64) {
	t.Helper()
	p, err := m.Begin(in)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var loss *ts.Tensor
	var count int64
	if m.Architecture().Task == model.CausalLM {
		loss, count, err = model.CausalLMLoss(p.Logits(), labels)
	} else {
		loss, count, err = model.ClassificationLoss(p.Logits(), labels)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer loss.Drop()
	mean := loss.MustDivScalar(ts.FloatScalar(float64(count)), false)
	defer mean.Drop()
	if err := p.Backward(mean); err != nil {
		t.Fatal(err)
	}
	return tensortest.Values(t, mean)[0], takeGrads(t, m)
}

// takeGrads returns every trainable tensor's gradient by name and zeroes them.
func takeGrads(t *testing.T, m *model.Model) map[string][]float64 {
	t.Helper()
	grads := map[string][]float64{}
	for _, nt := range m.TrainableTensors() {
		if !nt.Trainable {
			continue
		}
		g := nt.Tensor.MustGrad(false)
		grads[nt.Name] = tensortest.Values(t, g)
		g.Drop()
		nt.Tensor.ZeroGrad()
	}
	return grads
}

// twoSequences is a batch of two 7-token sequences, the second padded by two, and its
// labels: the ids themselves for a causal LM, one class per sequence for RoBERTa.
func twoSequences(arch string) (model.Inputs, *ts.Tensor) {
	ids, _ := model.Int64Tensor([]int64{0, 17, 33, 9, 250, 71, 2, 0, 44, 45, 46, 2, 1, 1}, 2, 7)
	mask, _ := model.Int64Tensor([]int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 2, 7)
	labels := ids
	if arch == "roberta" {
		labels, _ = model.Int64Tensor([]int64{1, 0}, 2)
	}
	return model.Inputs{InputIDs: ids, AttentionMask: mask}, labels
}

func TestCheckpointingGivesIdenticalGradients(t *testing.T) {
	for _, arch := range []string{"llama", "phi3", "roberta"} {
		t.Run(arch, func(t *testing.T) {
			lockThread(t) // a subtest runs on a goroutine of its own
			// RoBERTa keeps its dropout (0.1 on hidden states and attention), so this
			// also checks that recomputed blocks see the masks of the first pass.
			dir := writeTiny(t, arch, func(o *hfinit.Options) { o.InitStd, o.Perturb = 0.2, true })
			m := mustLoad(t, dir)
			if _, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 2), rand.New(rand.NewPCG(3, 3))); err != nil {
				t.Fatal(err)
			}
			perturbAdapters(t, m, 4)
			m.Train(true)
			in, labels := twoSequences(arch)

			m.SetDropoutSeed(11, 0)
			lossPlain, plain := trainStep(t, m, in, labels)
			m.SetDropoutSeed(11, 0)
			m.SetCheckpointing(true)
			lossCkpt, ckpt := trainStep(t, m, in, labels)
			m.SetCheckpointing(false)

			if lossPlain != lossCkpt {
				t.Errorf("loss %v with checkpointing, %v without", lossCkpt, lossPlain)
			}
			if len(plain) == 0 || len(plain) != len(ckpt) {
				t.Fatalf("%d gradients without checkpointing, %d with", len(plain), len(ckpt))
			}
			nonzero := 0
			for name, g := range plain {
				// The same kernels run on the same values in the same order, so the
				// gradients are equal to the last bit.
				checkClose(t, "gradient of "+name, ckpt[name], g, 0)
				for _, v := range g {
					if v != 0 {
						nonzero++
						break
					}
				}
			}
			for name, g := range plain {
				allZero := true
				for _, v := range g {
					allZero = allZero && v == 0
				}
				if allZero {
					t.Log("zero gradient:", name)
				}
			}
			if nonzero != len(plain) {
				t.Errorf("%d of %d gradients are all zero", len(plain)-nonzero, len(plain))
			}

			// A different dropout pass changes the RoBERTa loss; the same one repeats it.
			if arch == "roberta" {
				m.SetDropoutSeed(11, 1)
				other, _ := trainStep(t, m, in, labels)
				if other == lossPlain {
					t.Error("dropout pass 1 gives the loss of pass 0")
				}
			}
		})
	}
}

func TestCheckpointingRejectsAdapterDropout(t *testing.T) {
	m := mustLoad(t, writeTiny(t, "llama"))
	if _, err := m.Inject(specOf(adapter.Targets{Names: []string{"q_proj"}}, 2, func(s *adapter.Spec) { s.Dropout = 0.1 }), rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	m.Train(true)
	m.SetCheckpointing(true)
	ids, _ := model.Int64Tensor([]int64{1, 2, 3}, 1, 3)
	if _, err := m.Begin(model.Inputs{InputIDs: ids}); err == nil {
		t.Error("checkpointing with adapter dropout was accepted")
	}
}
