package main

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
)

// klSum is Σ p_t·(log p_t − log q) over all positions and the vocabulary, where p_t is
// the teacher's distribution (from its log-probs tlp) and q the student's (logits).
func klSum(logits, tlp *ts.Tensor) (*ts.Tensor, error) {
	lq, err := logits.LogSoftmax(-1, gotch.Float, false)
	if err != nil {
		return nil, err
	}
	defer lq.Drop()
	diff, err := tlp.Sub(lq, false)
	if err != nil {
		return nil, err
	}
	defer diff.Drop()
	p, err := tlp.Exp(false)
	if err != nil {
		return nil, err
	}
	defer p.Drop()
	prod, err := p.Mul(diff, false)
	if err != nil {
		return nil, err
	}
	defer prod.Drop()
	return prod.Sum(gotch.Float, false)
}

// meanKL is the mean per-token KL(teacher ‖ m) over the sequences, without autograd.
func meanKL(m *model.Model, tokens []int64, tlp *ts.Tensor, seqLen int) (float64, error) {
	total := 0.0
	err := forwardBatches(m, tokens, seqLen, func(start, count int, logits *ts.Tensor) error {
		part, err := tlp.Narrow(0, int64(start), int64(count), false)
		if err != nil {
			return err
		}
		defer part.Drop()
		kl, err := klSum(logits, part)
		if err != nil {
			return err
		}
		defer kl.Drop()
		v, err := tensorkit.Scalar(kl)
		total += v
		return err
	})
	return total / float64(len(tokens)), err
}

// forwardBatches runs m without autograd on the sequences (tokens cut into rows of
// seqLen), 32 at a time, and hands each batch's logits (dropped afterwards) to fn with
// the index of its first sequence and their count.
func forwardBatches(m *model.Model, tokens []int64, seqLen int, fn func(start, count int, logits *ts.Tensor) error) error {
	n := len(tokens) / seqLen
	var err error
	for start := 0; start < n && err == nil; start += 32 {
		count := min(32, n-start)
		err = tensorkit.NoGrad(func() error {
			ids, err := model.Int64Tensor(tokens[start*seqLen:(start+count)*seqLen], int64(count), int64(seqLen))
			if err != nil {
				return err
			}
			defer ids.Drop()
			logits, err := m.Forward(model.Inputs{InputIDs: ids})
			if err != nil {
				return err
			}
			defer logits.Drop()
			return fn(start, count, logits)
		})
	}
	return err
}

// constShare is the mean over m's adapters of n·mean(ΔW)²/‖ΔW‖²_F (n entries).
func constShare(m *model.Model) (float64, error) {
	total := 0.0
	for _, ad := range m.Adapters() {
		var vals []float32
		var err error
		err = tensorkit.NoGrad(func() error {
			dw, err := ad.DeltaWeight()
			if err != nil {
				return err
			}
			defer dw.Drop()
			vals, err = tensorkit.Float32s(dw)
			return err
		})
		if err != nil {
			return 0, err
		}
		var sum, sq float64
		for _, v := range vals {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		if sq > 0 {
			total += sum * sum / float64(len(vals)) / sq
		}
	}
	return total / float64(len(m.Adapters())), nil
}
