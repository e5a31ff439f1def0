package model_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// With a hook that takes every block's weights away after the block runs (set_ back
// onto NaN placeholders) and lends them again in Before, a regathering pass (every
// linear an LR-LoRA layer recomputing ΔW, SetRegather) gives the loss and gradients of
// the same model without a hook, to the last bit: its backward reads the lent weights,
// not the placeholders (which would make every gradient NaN), and the norms' copies.
// Llama (RMSNorm) and RoBERTa (LayerNorm with bias, biased linears, dropout).
func TestRegatherGivesIdenticalGradients(t *testing.T) {
	for _, arch := range []string{"llama", "roberta"} {
		t.Run(arch, func(t *testing.T) {
			lockThread(t)
			dir := writeTiny(t, arch, func(o *hfinit.Options) { o.InitStd, o.Perturb = 0.2, true })
			prepare := func(m *model.Model) {
				if _, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 2), rand.New(rand.NewPCG(3, 3))); err != nil {
					t.Fatal(err)
				}
				perturbAdapters(t, m, 4)
				m.SetRecomputeDelta(true)
				m.Train(true)
				m.SetDropoutSeed(11, 0)
			}
			ref := mustLoad(t, dir)
			prepare(ref)
			refW := map[string]*ts.Tensor{}
			for _, w := range ref.Weights() {
				refW[w.Name] = w.Tensor
			}
			h := &lendingHook{ref: refW, lend: true, owners: map[string]*ts.Tensor{},
				spare: map[string]*ts.Tensor{}, blocks: map[int][]string{}, t: t}
			m := mustLoad(t, dir, model.WithBlockHook(h))
			t.Cleanup(func() {
				for _, s := range h.spare {
					s.Drop()
				}
			})
			prepare(m)
			m.SetRegather(true)

			in, labels := twoSequences(arch)
			lossRef, want := trainStep(t, ref, in, labels)
			loss, got := trainStep(t, m, in, labels)
			if loss != lossRef {
				t.Errorf("loss %v regathering, %v without a hook", loss, lossRef)
			}
			if len(want) == 0 || len(got) != len(want) {
				t.Fatalf("%d gradients regathering, %d without a hook", len(got), len(want))
			}
			for name, g := range want {
				checkClose(t, "gradient of "+name, got[name], g, 0)
			}
		})
	}
}

// A block linear without an LR-LoRA adapter recomputing ΔW would keep its weight as a
// saved variable: Begin refuses, naming it, before any block runs.
func TestRegatherRefusesLayersThatKeepWeights(t *testing.T) {
	lockThread(t)
	dir := writeTiny(t, "llama")
	h := &recordingHook{failAt: -2}
	m := mustLoad(t, dir, model.WithBlockHook(h))
	if _, err := m.Inject(specOf(adapter.Targets{Names: []string{"q_proj"}}, 2), rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	m.SetRecomputeDelta(true)
	m.Train(true)
	m.SetRegather(true)
	ids, _ := model.Int64Tensor([]int64{1, 2, 3, 4}, 1, 4)
	_, err := m.Begin(model.Inputs{InputIDs: ids})
	if err == nil || !errors.Is(err, model.ErrUnsupported) || !strings.Contains(err.Error(), "k_proj has no adapter") {
		t.Fatalf("Begin gave %v, want ErrUnsupported naming k_proj", err)
	}
	if len(h.calls) != 0 {
		t.Errorf("hook calls before the refusal: %v", h.calls)
	}
}
