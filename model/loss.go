package model

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// IgnoreIndex marks labels that do not count in a loss (prompt tokens, padding).
const IgnoreIndex = -100

// CausalLMLoss is the next-token cross-entropy of transformers' causal LMs with
// reduction "sum": the logits at position t (B×T×V) predict labels[t+1] (B×T int64,
// unshifted as in Hugging Face), labels equal to IgnoreIndex do not count, and the
// logits are upcast to float32 (float64 stays) first. It returns the summed loss (a float32 scalar
// tensor that autograd can differentiate) and the number of target tokens, so that a
// trainer can normalise by the tokens of all micro-batches together.
func CausalLMLoss(logits, labels *ts.Tensor) (*ts.Tensor, int64, error) {
	ls, err := logits.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("model: causal LM loss: %w", err)
	}
	ys, err := labels.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("model: causal LM loss: %w", err)
	}
	if len(ls) != 3 || len(ys) != 2 || ls[0] != ys[0] || ls[1] != ys[1] {
		return nil, 0, fmt.Errorf("%w: causal LM loss: logits %v and labels %v, want B×T×V and B×T", ErrInput, ls, ys)
	}
	s := newScope("causal LM loss")
	defer s.drop()
	if ls[1] < 2 {
		z, err := ts.Zeros([]int64{}, gotch.Float, gotch.CPU)
		return z, 0, err
	}
	b, t, v := ls[0], ls[1], ls[2]
	pred := s.view(s.toDType(s.narrow(logits, 1, 0, t-1), upcast(logits.DType())), b*(t-1), v)
	target := s.view(s.narrow(labels, 1, 1, t-1), b*(t-1))
	return crossEntropySum(s, pred, target)
}

// ClassificationLoss is the cross-entropy of class logits (B×C) against labels (B
// int64, IgnoreIndex for padding examples) with reduction "sum", and the number of
// labelled examples.
func ClassificationLoss(logits, labels *ts.Tensor) (*ts.Tensor, int64, error) {
	s := newScope("classification loss")
	defer s.drop()
	return crossEntropySum(s, s.toDType(logits, upcast(logits.DType())), labels)
}

func crossEntropySum(s *scope, pred, target *ts.Tensor) (*ts.Tensor, int64, error) {
	if !s.ok(pred, target) {
		return nil, 0, s.err
	}
	noWeight := ts.NewTensor()
	defer noWeight.Drop()
	loss, err := pred.CrossEntropyLoss(target, noWeight, ts.ReductionSum, IgnoreIndex, 0, false)
	loss = s.track(loss, err, "cross entropy")
	n := s.toDType(s.neScalar(target, IgnoreIndex), gotch.Int64)
	if !s.ok(loss, n) {
		return nil, 0, s.err
	}
	cnt, err := n.Sum(gotch.Int64, false)
	cnt = s.track(cnt, err, "count")
	if !s.ok(cnt) {
		return nil, 0, s.err
	}
	count, err := tensorkit.Int64Scalar(cnt)
	if err != nil {
		return nil, 0, fmt.Errorf("model: %s: read count: %w", s.what, err)
	}
	return s.keep(loss), count, nil
}

// RegressionLoss is the squared error of one predicted score per example (B×1) against
// float targets (B) with reduction "sum" over the examples where mask (B, nonzero for
// real examples; nil: all) is set, and the number of those examples. Divided by the
// count it is transformers' MSELoss for num_labels == 1.
func RegressionLoss(pred, targets, mask *ts.Tensor) (*ts.Tensor, int64, error) {
	s := newScope("regression loss")
	defer s.drop()
	p := s.view(s.toDType(pred, upcast(pred.DType())), -1)
	y := s.view(s.toDType(targets, upcast(pred.DType())), -1)
	se := s.square(s.sub(p, y))
	var count int64
	if mask != nil {
		keep := s.view(s.neScalar(mask, 0), -1)
		se = s.mul(se, s.toDType(keep, upcast(pred.DType())))
		k := s.toDType(keep, gotch.Int64)
		if !s.ok(k) {
			return nil, 0, s.err
		}
		cnt, err := k.Sum(gotch.Int64, false)
		if cnt = s.track(cnt, err, "count"); !s.ok(cnt) {
			return nil, 0, s.err
		}
		if count, err = tensorkit.Int64Scalar(cnt); err != nil {
			return nil, 0, fmt.Errorf("model: regression loss: read count: %w", err)
		}
	} else if s.ok(y) {
		shape, err := y.Size()
		if err != nil {
			return nil, 0, fmt.Errorf("model: regression loss: %w", err)
		}
		count = shape[0]
	}
	if !s.ok(se) {
		return nil, 0, s.err
	}
	sum, err := se.Sum(upcast(pred.DType()), false)
	if sum = s.track(sum, err, "sum"); !s.ok(sum) {
		return nil, 0, s.err
	}
	return s.keep(sum), count, nil
}
