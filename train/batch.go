package train

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/model"
)

// batchTensors is one collated micro-batch as tensors.
type batchTensors struct {
	in                   model.Inputs
	labels               *ts.Tensor // B×T token labels (language modelling)
	classes, scores, use *ts.Tensor // B class labels, B scores, B example mask (classification)
	all                  []*ts.Tensor
	tokens               int64 // real (non-padding) input tokens
	// The targets each loss sums over, counted on the host from the collated labels
	// (so that no count is read back from the device): tokens for language
	// modelling; labelled examples for classification, real examples for regression.
	lmTargets, classTargets, scoreTargets int64
}

// toTensors makes the model's inputs and the loss targets of a batch on dev. Position
// and segment ids are passed for packed batches only (otherwise the model's defaults
// are the same and cheaper).
func toTensors(b *data.Batch, packed bool, dev gotch.Device) (*batchTensors, error) {
	bt := &batchTensors{}
	shape := []int64{int64(b.Size), int64(b.SeqLen)}
	var err error
	mk := func(vals []int64, shape ...int64) *ts.Tensor {
		if err != nil {
			return nil
		}
		var t *ts.Tensor
		if t, err = model.Int64Tensor(vals, shape...); err == nil {
			bt.all = append(bt.all, t)
		}
		return t
	}
	bt.in.InputIDs = mk(b.InputIDs, shape...)
	bt.in.AttentionMask = mk(b.AttentionMask, shape...)
	if packed {
		bt.in.PositionIDs = mk(b.PositionIDs, shape...)
		bt.in.SegmentIDs = mk(b.SegmentIDs, shape...)
	}
	if b.Labels != nil {
		bt.labels = mk(b.Labels, shape...)
	} else {
		bt.classes = mk(b.ClassLabels, int64(b.Size))
		bt.use = mk(b.ExampleMask, int64(b.Size))
		if err == nil {
			if bt.scores, err = model.Float32Tensor(b.Scores, int64(b.Size)); err == nil {
				bt.all = append(bt.all, bt.scores)
			}
		}
	}
	if err == nil && dev.IsCuda() {
		err = bt.moveTo(dev)
	}
	if err != nil {
		bt.drop()
		return nil, fmt.Errorf("train: batch tensors: %w", err)
	}
	for _, n := range b.Lengths {
		bt.tokens += n
	}
	if b.Labels != nil {
		bt.lmTargets = model.CausalLMTargets(b.Labels, b.SeqLen)
	} else {
		bt.classTargets, bt.scoreTargets = model.ClassTargets(b.ClassLabels), model.RegressionTargets(b.ExampleMask)
	}
	return bt, nil
}

// moveTo replaces every tensor of the batch with a copy on dev.
func (bt *batchTensors) moveTo(dev gotch.Device) error {
	for _, p := range []**ts.Tensor{&bt.in.InputIDs, &bt.in.AttentionMask, &bt.in.PositionIDs,
		&bt.in.SegmentIDs, &bt.labels, &bt.classes, &bt.scores, &bt.use} {
		if *p == nil {
			continue
		}
		moved, err := (*p).To(dev, false)
		if err != nil {
			return fmt.Errorf("move to %v: %w", dev, err)
		}
		bt.all = append(bt.all, moved)
		*p = moved
	}
	return nil
}

func (bt *batchTensors) drop() {
	for _, t := range bt.all {
		t.Drop()
	}
	bt.all = nil
}

// lossSum is the summed loss of the batch (a scalar autograd can differentiate) and the
// number of targets it sums over: tokens for language modelling, examples for
// classification and regression. It reads nothing from the device: the count is the
// host's.
func (bt *batchTensors) lossSum(logits *ts.Tensor, regression bool) (*ts.Tensor, int64, error) {
	var sum *ts.Tensor
	var n int64
	var err error
	switch {
	case bt.labels != nil:
		sum, err = model.CausalLMLossSum(logits, bt.labels)
		n = bt.lmTargets
	case regression:
		sum, err = model.RegressionLossSum(logits, bt.scores, bt.use)
		n = bt.scoreTargets
	default:
		sum, err = model.ClassificationLossSum(logits, bt.classes)
		n = bt.classTargets
	}
	if err != nil {
		return nil, 0, err
	}
	return sum, n, nil
}

// targetsOf is the loss normaliser of a step: the global target tokens of a language
// model, the global examples of a classifier.
func targetsOf(sd *data.StepData, classify bool) int64 {
	if classify {
		return int64(sd.GlobalExamples)
	}
	return sd.GlobalTargetTokens
}
