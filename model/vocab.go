package model

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// RowReader is an optional interface of a BlockHook that supplies rows of deferred
// weights (see WeightDeferrer) without binding them whole. A causal LM's training
// pass that computes its loss in the head (SetFusedLoss) needs its vocabulary
// matrices — the embedding table and the LM head's weight, one tensor when tied —
// only a few rows at a time: the rows of the batch's token ids for the embeddings,
// and a range of rows after another for the loss. At the start of every pass the
// model calls StreamRows with the weights it would read that way (nil for a pass that
// needs them whole: Forward, or a training pass without fused loss); where the hook
// returns true, the Before calls of that pass need not bind those weights, and the
// pass reads their rows through ReadRows instead. Package shard uses it so that a
// sharded rank never gathers a vocabulary matrix whole (Qwen2-0.5B's is 9× a block).
type RowReader interface {
	// StreamRows reports whether the hook serves ws through ReadRows for the pass
	// that starts (false: they are bound in Before as any deferred weight). Every
	// rank of a shard group makes the same calls, as with Before.
	StreamRows(ws []*ts.Tensor) (bool, error)
	// ReadRows copies rows [from, from+n) of w, one of the weights StreamRows took,
	// into dst: a contiguous tensor of n rows of w's other dimensions, w's dtype and
	// device (for a 1-D w, a row is one element).
	ReadRows(w *ts.Tensor, from int64, dst *ts.Tensor) error
}

// vocabStreamer is a network whose vocabulary matrices a pass may read by rows.
type vocabStreamer interface {
	vocabWeights() []*ts.Tensor
}

// streamRows asks a RowReader hook, at the start of a pass, whether it serves the
// vocabulary matrices by rows — for a pass that computes its loss in the head; any
// other pass tells it that it needs them bound — and records the answer in ctx.
func (m *Model) streamRows(ctx *fwdCtx) error {
	rr, ok := m.opt.hook.(RowReader)
	if !ok {
		return nil
	}
	var ws []*ts.Tensor
	if vs, ok := m.net.(vocabStreamer); ok && ctx.fused {
		ws = vs.vocabWeights()
	}
	on, err := rr.StreamRows(ws)
	if err != nil {
		return fmt.Errorf("model: block hook: rows of the vocabulary: %w", err)
	}
	if on && len(ws) > 0 {
		ctx.rows = rr
	}
	return nil
}

// rowSource gives rows of one vocabulary matrix for a pass: views of the bound
// weight, or copies read through the hook's RowReader.
type rowSource struct {
	w      *ts.Tensor
	reader RowReader // nil: w is bound
	shape  []int64   // w's
	dtype  gotch.DType
	device gotch.Device
}

func newRowSource(w *ts.Tensor, reader RowReader) (*rowSource, error) {
	shape, err := w.Size()
	if err != nil {
		return nil, err
	}
	if len(shape) == 0 {
		return nil, fmt.Errorf("model: rows of a scalar")
	}
	dev, err := w.Device()
	if err != nil {
		return nil, err
	}
	return &rowSource{w: w, reader: reader, shape: shape, dtype: w.DType(), device: dev}, nil
}

// rows returns rows [from, from+n): a view of the weight, or a copy read into a
// tensor the scope owns.
func (r *rowSource) rows(s *scope, from, n int64) *ts.Tensor {
	if !s.ok() {
		return nil
	}
	if r.reader == nil {
		return s.narrow(r.w, 0, from, n)
	}
	shape := append([]int64{n}, r.shape[1:]...)
	dst, err := ts.Empty(shape, r.dtype, r.device)
	if dst = s.track(dst, err, "empty"); !s.ok(dst) {
		return nil
	}
	if err := r.reader.ReadRows(r.w, from, dst); err != nil {
		s.fail(fmt.Errorf("rows %d to %d of a vocabulary matrix: %w", from, from+n, err))
		return nil
	}
	return dst
}

// lookup returns the rows of ids (any shape, int64), shaped ids' shape × the row's:
// the embedding lookup. With a bound weight it is libtorch's embedding; read through
// the hook, each run of consecutive distinct ids is read once and the lookup indexes
// those rows (the same values: both copy rows).
func (r *rowSource) lookup(s *scope, ids *ts.Tensor) *ts.Tensor {
	if r.reader == nil {
		return s.embedding(r.w, ids)
	}
	if !s.ok(ids) {
		return nil
	}
	flat := s.view(ids, -1)
	if !s.ok(flat) {
		return nil
	}
	uniq, inv, counts, err := flat.UniqueDim(0, true, true, false, false)
	if err != nil {
		s.fail(fmt.Errorf("unique ids: %w", err))
		return nil
	}
	s.track(uniq, nil, "")
	s.track(inv, nil, "")
	s.track(counts, nil, "")
	vals, err := tensorkit.Int64s(uniq)
	if err != nil {
		s.fail(fmt.Errorf("ids: %w", err))
		return nil
	}
	table, err := ts.Empty(append([]int64{int64(len(vals))}, r.shape[1:]...), r.dtype, r.device)
	if table = s.track(table, err, "empty"); !s.ok(table) {
		return nil
	}
	for i := 0; i < len(vals); {
		j := i + 1
		for j < len(vals) && vals[j] == vals[j-1]+1 {
			j++
		}
		if vals[i] < 0 || vals[j-1] >= r.shape[0] {
			s.fail(fmt.Errorf("%w: token id %d outside the vocabulary of %d", ErrInput, vals[i], r.shape[0]))
			return nil
		}
		dst := s.narrow(table, 0, int64(i), int64(j-i))
		if !s.ok(dst) {
			return nil
		}
		if err := r.reader.ReadRows(r.w, vals[i], dst); err != nil {
			s.fail(fmt.Errorf("rows %d to %d of the embedding table: %w", vals[i], vals[j-1]+1, err))
			return nil
		}
		i = j
	}
	is, err := ids.Size()
	if err != nil {
		s.fail(err)
		return nil
	}
	out := s.indexSelect(table, 0, inv)
	return s.view(out, append(is, r.shape[1:]...)...)
}
