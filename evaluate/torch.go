package evaluate

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
)

// inputs holds the tensors of one collated batch; close frees them.
type inputs struct {
	model.Inputs
	own []*ts.Tensor
}

func (in *inputs) close() {
	for _, t := range in.own {
		t.Drop()
	}
	in.own = nil
}

// batchInputs turns a padded batch into forward inputs: ids, attention mask and, for
// packed batches, positions and segments (decoders only).
func batchInputs(b *data.Batch, packed bool) (*inputs, error) {
	in := &inputs{}
	mk := func(vals []int64) (*ts.Tensor, error) {
		t, err := model.Int64Tensor(vals, int64(b.Size), int64(b.SeqLen))
		if err != nil {
			in.close()
			return nil, fmt.Errorf("evaluate: batch tensor: %w", err)
		}
		in.own = append(in.own, t)
		return t, nil
	}
	var err error
	if in.InputIDs, err = mk(b.InputIDs); err != nil {
		return nil, err
	}
	if in.AttentionMask, err = mk(b.AttentionMask); err != nil {
		return nil, err
	}
	if packed {
		if in.PositionIDs, err = mk(b.PositionIDs); err != nil {
			return nil, err
		}
		if in.SegmentIDs, err = mk(b.SegmentIDs); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// float64s copies a tensor's values to the host as float64.
func float64s(t *ts.Tensor) ([]float64, error) {
	f, err := tensorkit.Float32s(t)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out, nil
}

// nextTokenLogProbs returns, for logits B×T×V and the batch's ids (B×T, row-major),
// log p(ids[b][t+1] | ids[b][..t]) as a B×(T−1) row-major slice, computed in float32
// with a float32 log-softmax.
func nextTokenLogProbs(logits *ts.Tensor, ids []int64, b, t int) ([]float64, error) {
	if t < 2 {
		return nil, nil
	}
	pred, err := logits.Narrow(1, 0, int64(t-1), false)
	if err != nil {
		return nil, fmt.Errorf("evaluate: log-probs: %w", err)
	}
	lp, err := pred.LogSoftmax(-1, gotch.Float, true)
	if err != nil {
		return nil, fmt.Errorf("evaluate: log-softmax: %w", err)
	}
	defer lp.Drop()
	next := make([]int64, 0, b*(t-1))
	for r := 0; r < b; r++ {
		next = append(next, ids[r*t+1:(r+1)*t]...)
	}
	idx, err := model.Int64Tensor(next, int64(b), int64(t-1), 1)
	if err != nil {
		return nil, fmt.Errorf("evaluate: log-probs: %w", err)
	}
	defer idx.Drop()
	g, err := lp.Gather(2, idx, false, false)
	if err != nil {
		return nil, fmt.Errorf("evaluate: gather log-probs: %w", err)
	}
	defer g.Drop()
	return float64s(g)
}

func sqrt(x float64) float64 { return math.Sqrt(x) }
