package model

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// IgnoreIndex marks labels that do not count in a loss (prompt tokens, padding).
const IgnoreIndex = -100

// Each loss comes in two forms. The *Sum form returns only the summed loss and never
// reads the device; a trainer that built the labels on the host counts the targets
// there (CausalLMTargets, ClassTargets, RegressionTargets). The plain form also
// counts the targets on the labels' device and reads the count to the host (one
// device-to-host copy, which on a GPU waits for the device).

// CausalLMLoss is the next-token cross-entropy of transformers' causal LMs with
// reduction "sum": the logits at position t (B×T×V) predict labels[t+1] (B×T int64,
// unshifted as in Hugging Face), labels equal to IgnoreIndex do not count, and the
// logits are upcast to float32 (float64 stays) first. It returns the summed loss (a float32 scalar
// tensor that autograd can differentiate) and the number of target tokens, so that a
// trainer can normalise by the tokens of all micro-batches together.
func CausalLMLoss(logits, labels *ts.Tensor) (*ts.Tensor, int64, error) {
	return withCount("causal LM loss", true, logits, labels, CausalLMLossSum)
}

// CausalLMLossSum is CausalLMLoss without the count (no host read).
func CausalLMLossSum(logits, labels *ts.Tensor) (*ts.Tensor, error) {
	ls, err := logits.Size()
	if err != nil {
		return nil, fmt.Errorf("model: causal LM loss: %w", err)
	}
	ys, err := labels.Size()
	if err != nil {
		return nil, fmt.Errorf("model: causal LM loss: %w", err)
	}
	if len(ls) != 3 || len(ys) != 2 || ls[0] != ys[0] || ls[1] != ys[1] {
		return nil, fmt.Errorf("%w: causal LM loss: logits %v and labels %v, want B×T×V and B×T", ErrInput, ls, ys)
	}
	s := newScope("causal LM loss")
	defer s.drop()
	if ls[1] < 2 {
		dev, err := logits.Device()
		if err != nil {
			return nil, fmt.Errorf("model: causal LM loss: %w", err)
		}
		z, err := ts.Zeros([]int64{1}, gotch.Float, dev) // gotch's Zeros takes no 0-dim shape
		if err != nil {
			return nil, fmt.Errorf("model: causal LM loss: %w", err)
		}
		return z.Squeeze(true)
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
	return withCount("classification loss", false, logits, labels, ClassificationLossSum)
}

// ClassificationLossSum is ClassificationLoss without the count (no host read).
func ClassificationLossSum(logits, labels *ts.Tensor) (*ts.Tensor, error) {
	s := newScope("classification loss")
	defer s.drop()
	return crossEntropySum(s, s.toDType(logits, upcast(logits.DType())), labels)
}

func crossEntropySum(s *scope, pred, target *ts.Tensor) (*ts.Tensor, error) {
	if !s.ok(pred, target) {
		return nil, s.err
	}
	noWeight := ts.NewTensor()
	defer noWeight.Drop()
	loss, err := pred.CrossEntropyLoss(target, noWeight, ts.ReductionSum, IgnoreIndex, 0, false)
	loss = s.track(loss, err, "cross entropy")
	if !s.ok(loss) {
		return nil, s.err
	}
	return s.keep(loss), nil
}

// withCount runs a *Sum loss and counts, on the device, the labels it sums over (those
// other than IgnoreIndex; for the causal LM, labels[:, 1:]), then reads the count.
func withCount(what string, shifted bool, logits, labels *ts.Tensor, sum func(_, _ *ts.Tensor) (*ts.Tensor, error)) (*ts.Tensor, int64, error) {
	loss, err := sum(logits, labels)
	if err != nil {
		return nil, 0, err
	}
	count, err := countLabels(what, labels, shifted)
	if err != nil {
		loss.Drop()
		return nil, 0, err
	}
	return loss, count, nil
}

// countLabels counts the labels other than IgnoreIndex (shifted: from the second column
// of B×T labels on) with one host read.
func countLabels(what string, labels *ts.Tensor, shifted bool) (int64, error) {
	s := newScope(what)
	defer s.drop()
	target := labels
	if shifted {
		ys, err := labels.Size()
		if err != nil {
			return 0, fmt.Errorf("model: %s: %w", what, err)
		}
		if ys[1] < 2 {
			return 0, nil
		}
		target = s.narrow(labels, 1, 1, ys[1]-1)
	}
	return s.count(s.neScalar(target, IgnoreIndex))
}

// count sums a boolean mask on its device and reads the sum (one host read).
func (s *scope) count(mask *ts.Tensor) (int64, error) {
	k := s.toDType(mask, gotch.Int64)
	if !s.ok(k) {
		return 0, s.err
	}
	cnt, err := k.Sum(gotch.Int64, false)
	if cnt = s.track(cnt, err, "count"); !s.ok(cnt) {
		return 0, s.err
	}
	n, err := tensorkit.Int64Scalar(cnt)
	if err != nil {
		return 0, fmt.Errorf("model: %s: read count: %w", s.what, err)
	}
	return n, nil
}

// RegressionLoss is the squared error of one predicted score per example (B×1) against
// float targets (B) with reduction "sum" over the examples where mask (B, nonzero for
// real examples; nil: all) is set, and the number of those examples. Divided by the
// count it is transformers' MSELoss for num_labels == 1.
func RegressionLoss(pred, targets, mask *ts.Tensor) (*ts.Tensor, int64, error) {
	sum, err := RegressionLossSum(pred, targets, mask)
	if err != nil {
		return nil, 0, err
	}
	var count int64
	if mask != nil {
		s := newScope("regression loss")
		defer s.drop()
		count, err = s.count(s.view(s.neScalar(mask, 0), -1))
	} else {
		var shape []int64
		if shape, err = targets.Size(); err == nil {
			count = tensorkit.NumElements(shape)
		}
	}
	if err != nil {
		sum.Drop()
		return nil, 0, fmt.Errorf("model: regression loss: count: %w", err)
	}
	return sum, count, nil
}

// RegressionLossSum is RegressionLoss without the count (no host read).
func RegressionLossSum(pred, targets, mask *ts.Tensor) (*ts.Tensor, error) {
	s := newScope("regression loss")
	defer s.drop()
	p := s.view(s.toDType(pred, upcast(pred.DType())), -1)
	y := s.view(s.toDType(targets, upcast(pred.DType())), -1)
	se := s.square(s.sub(p, y))
	if mask != nil {
		keep := s.view(s.neScalar(mask, 0), -1)
		se = s.mul(se, s.toDType(keep, upcast(pred.DType())))
	}
	if !s.ok(se) {
		return nil, s.err
	}
	sum, err := se.Sum(upcast(pred.DType()), false)
	if sum = s.track(sum, err, "sum"); !s.ok(sum) {
		return nil, s.err
	}
	return s.keep(sum), nil
}

// CausalLMTargets counts on the host the targets CausalLMLoss sums over for B×T labels
// given row-major (len(labels) = B·T): the labels of positions 1…T−1 of each row other
// than IgnoreIndex.
func CausalLMTargets(labels []int64, seqLen int) int64 {
	var n int64
	for i, y := range labels {
		if seqLen > 0 && i%seqLen != 0 && y != IgnoreIndex {
			n++
		}
	}
	return n
}

// ClassTargets counts on the host the labelled examples ClassificationLoss sums over:
// the labels other than IgnoreIndex.
func ClassTargets(labels []int64) int64 {
	var n int64
	for _, y := range labels {
		if y != IgnoreIndex {
			n++
		}
	}
	return n
}

// RegressionTargets counts on the host the examples RegressionLoss sums over: the
// nonzero entries of the example mask.
func RegressionTargets(mask []int64) int64 {
	var n int64
	for _, m := range mask {
		if m != 0 {
			n++
		}
	}
	return n
}
