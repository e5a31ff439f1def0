package model_test

import (
	"errors"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

func perturbed(o *hfinit.Options) { o.InitStd, o.Perturb = 0.2, true }

func ids(t *testing.T, vals []int64, b, n int64) *ts.Tensor {
	t.Helper()
	x, err := model.Int64Tensor(vals, b, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Drop() })
	return x
}

// ids1 is a 1-D int64 tensor of vals, dropped after the test.
func ids1(t *testing.T, vals []int64) *ts.Tensor {
	t.Helper()
	x, err := model.Int64Tensor(vals, int64(len(vals)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Drop() })
	return x
}

// rowsOf returns logits[row, :n] flattened (B×T×V logits).
func rowsOf(t *testing.T, logits *ts.Tensor, row, n int64) []float64 {
	t.Helper()
	r := logits.MustSelect(0, row, false)
	defer r.Drop()
	p := r.MustNarrow(0, 0, n, false)
	defer p.Drop()
	return tensortest.Values(t, p)
}

// TestPaddingDoesNotChangeTokens checks that right padding changes nothing for the real
// tokens of a decoder and nothing for an encoder's classification.
func TestPaddingDoesNotChangeTokens(t *testing.T) {
	seq := []int64{0, 40, 41, 42, 43}
	for _, arch := range []string{"llama", "qwen2", "mistral", "phi3", "roberta", "bert"} {
		t.Run(arch, func(t *testing.T) {
			m := mustLoad(t, writeTiny(t, arch, perturbed), model.WithDType(gotch.Double))
			pad := int64(2)
			if id, ok := m.Config().PadTokenID.First(); ok {
				pad = int64(id)
			}
			alone, err := m.Forward(model.Inputs{InputIDs: ids(t, seq, 1, 5)})
			if err != nil {
				t.Fatal(err)
			}
			defer alone.Drop()
			padded, err := m.Forward(model.Inputs{
				InputIDs:      ids(t, append(append([]int64{}, seq...), pad, pad, pad), 1, 8),
				AttentionMask: ids(t, []int64{1, 1, 1, 1, 1, 0, 0, 0}, 1, 8),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer padded.Drop()
			if m.Architecture().Task == model.CausalLM {
				checkClose(t, "logits of the real tokens", rowsOf(t, padded, 0, 5), rowsOf(t, alone, 0, 5), 1e-12)
			} else {
				checkClose(t, "class logits", tensortest.Values(t, padded), tensortest.Values(t, alone), 1e-12)
			}
		})
	}
}

// TestPackedDocumentsAreIndependent packs two documents into one row with segment ids
// and restarting position ids: each document's logits equal those of the document alone.
func TestPackedDocumentsAreIndependent(t *testing.T) {
	for _, arch := range []string{"llama", "phi3"} {
		t.Run(arch, func(t *testing.T) {
			m := mustLoad(t, writeTiny(t, arch, perturbed), model.WithDType(gotch.Double))
			a, b := []int64{1, 50, 51, 52}, []int64{1, 60, 61}
			la, err := m.Forward(model.Inputs{InputIDs: ids(t, a, 1, 4)})
			if err != nil {
				t.Fatal(err)
			}
			lb, err := m.Forward(model.Inputs{InputIDs: ids(t, b, 1, 3)})
			if err != nil {
				t.Fatal(err)
			}
			packed, err := m.Forward(model.Inputs{
				InputIDs:    ids(t, append(append([]int64{}, a...), b...), 1, 7),
				PositionIDs: ids(t, []int64{0, 1, 2, 3, 0, 1, 2}, 1, 7),
				SegmentIDs:  ids(t, []int64{1, 1, 1, 1, 2, 2, 2}, 1, 7),
			})
			if err != nil {
				t.Fatal(err)
			}
			all := tensortest.Values(t, packed)
			v := int(m.Config().VocabSize)
			checkClose(t, "first document", all[:4*v], tensortest.Values(t, la), 1e-12)
			checkClose(t, "second document", all[4*v:], tensortest.Values(t, lb), 1e-12)
		})
	}
}

// TestSlidingWindowLimitsAttention: with a window of 2 each layer lets token i see
// tokens i−1 and i, so after two layers token i depends on tokens i−2..i: changing
// token 0 changes the logits of token 2 but not those of tokens 3 and later.
func TestSlidingWindowLimitsAttention(t *testing.T) {
	dir := writeTiny(t, "mistral", perturbed, func(o *hfinit.Options) {
		o.Overrides = map[string]any{"sliding_window": 2}
	})
	m := mustLoad(t, dir, model.WithDType(gotch.Double))
	x, err := m.Forward(model.Inputs{InputIDs: ids(t, []int64{10, 20, 30, 40, 50, 60}, 1, 6)})
	if err != nil {
		t.Fatal(err)
	}
	y, err := m.Forward(model.Inputs{InputIDs: ids(t, []int64{11, 20, 30, 40, 50, 60}, 1, 6)})
	if err != nil {
		t.Fatal(err)
	}
	v := int(m.Config().VocabSize)
	a, b := tensortest.Values(t, x), tensortest.Values(t, y)
	checkClose(t, "tokens 3..5", a[3*v:], b[3*v:], 0)
	if e, _ := maxRelErr(a[2*v:3*v], b[2*v:3*v]); e == 0 {
		t.Error("token 2 does not see token 0 through two layers of window 2")
	}
}

func TestForwardRejectsBadInputs(t *testing.T) {
	m := mustLoad(t, writeTiny(t, "qwen2"))
	good := ids(t, []int64{1, 2, 3, 4}, 2, 2)
	flat, _ := model.Int64Tensor([]int64{1, 2, 3, 4}, 4)
	defer flat.Drop()
	floats, _ := model.Float32Tensor([]float32{1, 2, 3, 4}, 2, 2)
	defer floats.Drop()
	for name, in := range map[string]model.Inputs{
		"no ids":         {},
		"1-D ids":        {InputIDs: flat},
		"float ids":      {InputIDs: floats},
		"mask shape":     {InputIDs: good, AttentionMask: flat},
		"position shape": {InputIDs: good, PositionIDs: flat},
	} {
		out, err := m.Forward(in)
		if !errors.Is(err, model.ErrInput) {
			t.Errorf("%s: error %v, want ErrInput", name, err)
		}
		if out != nil {
			out.Drop()
		}
	}
	enc := mustLoad(t, writeTiny(t, "roberta"))
	long := make([]int64, 200)
	if _, err := enc.Forward(model.Inputs{InputIDs: ids(t, long, 1, 200)}); !errors.Is(err, model.ErrInput) {
		t.Errorf("RoBERTa sequence longer than its position table: %v", err)
	}
}

func TestLossCounts(t *testing.T) {
	logits, _ := model.Float32Tensor(make([]float32, 2*3*4), 2, 3, 4) // uniform over 4
	defer logits.Drop()
	labels := ids(t, []int64{-100, 1, 2, -100, -100, -100}, 2, 3)
	loss, n, err := model.CausalLMLoss(logits, labels)
	if err != nil {
		t.Fatal(err)
	}
	defer loss.Drop()
	// Targets are labels[:, 1:] = {1, 2} and {-100, -100}: two tokens of loss ln 4.
	if n != 2 {
		t.Errorf("count %d, want 2", n)
	}
	checkClose(t, "loss", tensortest.Values(t, loss), []float64{2 * 1.3862943611198906}, 1e-6)

	scores, _ := model.Float32Tensor([]float32{1, 2, 3}, 3, 1)
	defer scores.Drop()
	target, _ := model.Float32Tensor([]float32{1, 0, 0}, 3)
	defer target.Drop()
	exMask := ids(t, []int64{1, 1, 0}, 1, 3)
	sq, n, err := model.RegressionLoss(scores, target, exMask)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Drop()
	if n != 2 {
		t.Errorf("regression count %d, want 2", n)
	}
	checkClose(t, "squared error", tensortest.Values(t, sq), []float64{4}, 1e-6)
}

// The host counts of the targets equal the device counts the losses read, and the
// *Sum forms return the same sums without reading the device.
func TestHostTargetCounts(t *testing.T) {
	lm := []int64{-100, 1, 2, 5, 7, -100, 3, 4, -100}
	cls := []int64{2, -100, 0, 1}
	mask := []int64{1, 0, 1, 1}
	logits, _ := model.Float32Tensor(make([]float32, 3*3*8), 3, 3, 8)
	defer logits.Drop()
	classLogits, _ := model.Float32Tensor(make([]float32, 4*3), 4, 3)
	defer classLogits.Drop()
	scores, _ := model.Float32Tensor([]float32{1, 2, 3, 4}, 4, 1)
	defer scores.Drop()
	targets, _ := model.Float32Tensor([]float32{0, 0, 1, 1}, 4)
	defer targets.Drop()
	labels, classes, use := ids(t, lm, 3, 3), ids1(t, cls), ids1(t, mask)
	for _, c := range []struct {
		name      string
		host      int64
		counted   func() (*ts.Tensor, int64, error)
		uncounted func() (*ts.Tensor, error)
	}{
		{"causal LM", model.CausalLMTargets(lm, 3),
			func() (*ts.Tensor, int64, error) { return model.CausalLMLoss(logits, labels) },
			func() (*ts.Tensor, error) { return model.CausalLMLossSum(logits, labels) }},
		{"classification", model.ClassTargets(cls),
			func() (*ts.Tensor, int64, error) { return model.ClassificationLoss(classLogits, classes) },
			func() (*ts.Tensor, error) { return model.ClassificationLossSum(classLogits, classes) }},
		{"regression", model.RegressionTargets(mask),
			func() (*ts.Tensor, int64, error) { return model.RegressionLoss(scores, targets, use) },
			func() (*ts.Tensor, error) { return model.RegressionLossSum(scores, targets, use) }},
	} {
		loss, n, err := c.counted()
		if err != nil {
			t.Fatal(err)
		}
		before := tensorkit.HostReads()
		sum, err := c.uncounted()
		if err != nil {
			t.Fatal(err)
		}
		if reads := tensorkit.HostReads() - before; reads != 0 {
			t.Errorf("%s: the *Sum form read the device %d times", c.name, reads)
		}
		if n != c.host {
			t.Errorf("%s: host count %d, device count %d", c.name, c.host, n)
		}
		// The same ops on the same inputs: bit for bit.
		if a, b := tensortest.Values(t, loss), tensortest.Values(t, sum); a[0] != b[0] {
			t.Errorf("%s: loss %v with the count, %v without", c.name, a[0], b[0])
		}
		loss.Drop()
		sum.Drop()
	}
	one, _ := model.Float32Tensor(make([]float32, 3*8), 3, 1, 8) // T = 1: nothing to predict
	defer one.Drop()
	zero, err := model.CausalLMLossSum(one, ids(t, []int64{5, 6, 7}, 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer zero.Drop()
	if v := tensortest.Values(t, zero); len(v) != 1 || v[0] != 0 || model.CausalLMTargets([]int64{5, 6, 7}, 1) != 0 {
		t.Errorf("T = 1: loss %v, want one 0 and no targets", v)
	}
	if got := model.CausalLMTargets(lm, 3); got != 4 {
		t.Errorf("CausalLMTargets = %d, want 4 (1 2 | 7 | 4)", got)
	}
}
