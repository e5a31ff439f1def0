package model

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Forward runs the model on a batch and returns its logits: B×T×V next-token logits
// for causal LMs, B×num_labels for classifiers (B×1 for regression). With grad mode on
// and adapters (or a head) that require grad, autograd records the pass; call
// Backward on a loss built from the logits. The caller drops the result.
//
// With activation checkpointing on, use Begin instead: it records only block inputs.
func (m *Model) Forward(in Inputs) (logits *ts.Tensor, err error) {
	return m.forward(in, false)
}

// forward is Forward; with fused the head returns the loss (SetFusedLoss).
func (m *Model) forward(in Inputs, fused bool) (logits *ts.Tensor, err error) {
	if m.closed {
		return nil, ErrClosed
	}
	ctx, err := m.newCtx(in, false)
	if err != nil {
		return nil, err
	}
	ctx.fused = fused
	defer ctx.close()
	if err := m.streamRows(ctx); err != nil {
		return nil, err
	}
	if err := m.hookSchedule(m.forwardOrder()); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil { // a run left early: the hook drops what it prepared
			err = errors.Join(err, m.hookSchedule(nil))
		}
	}()
	h, err := m.hooked(-1, func() (*ts.Tensor, error) { return m.runEmbed(ctx) })
	if err != nil {
		return nil, err
	}
	for i := 0; i < m.net.numBlocks(); i++ {
		next, err := m.hooked(i, func() (*ts.Tensor, error) { return m.runBlock(ctx, i, h) })
		h.Drop()
		if err != nil {
			return nil, err
		}
		h = next
	}
	defer h.Drop()
	return m.hooked(m.net.numBlocks(), func() (*ts.Tensor, error) { return m.runHead(ctx, h) })
}

// newCtx validates the inputs and prepares the pass. Training passes with a dropout
// seed, or checkpointed ones, draw their dropout masks from a key of their own.
func (m *Model) newCtx(in Inputs, checkpointed bool) (*fwdCtx, error) {
	if in.InputIDs == nil {
		return nil, fmt.Errorf("%w: no input ids", ErrInput)
	}
	shape, err := in.InputIDs.Size()
	if err != nil {
		return nil, fmt.Errorf("model: input ids: %w", err)
	}
	if len(shape) != 2 || shape[0] == 0 || shape[1] == 0 {
		return nil, fmt.Errorf("%w: input ids have shape %v, want B×T with B, T > 0", ErrInput, shape)
	}
	if dt := in.InputIDs.DType(); dt != gotch.Int64 {
		return nil, fmt.Errorf("%w: input ids are %v, want int64", ErrInput, dt)
	}
	for _, x := range []struct {
		name string
		t    *ts.Tensor
	}{{"attention mask", in.AttentionMask}, {"position ids", in.PositionIDs},
		{"segment ids", in.SegmentIDs}, {"token type ids", in.TokenTypeIDs}} {
		if x.t == nil {
			continue
		}
		s, err := x.t.Size()
		if err != nil {
			return nil, fmt.Errorf("model: %s: %w", x.name, err)
		}
		if !slices.Equal(s, shape) {
			return nil, fmt.Errorf("%w: %s have shape %v, input ids %v", ErrInput, x.name, s, shape)
		}
	}
	if m.arch.Task == SequenceClassification && (in.PositionIDs != nil || in.SegmentIDs != nil) {
		return nil, fmt.Errorf("%w: %s takes no position or segment ids", ErrInput, m.arch.Name)
	}
	ctx := &fwdCtx{b: shape[0], t: shape[1], dtype: m.opt.dtype, device: m.opt.device,
		train: m.training, eager: m.opt.eager, in: in, masks: map[int]*ts.Tensor{},
		own: newScope("forward"), hashed: m.dropout.seeded || checkpointed}
	if ctx.train {
		ctx.passKey = mix64(m.dropout.seed ^ mix64(m.dropout.passes))
		m.dropout.passes++
	}
	if err := m.net.prepare(ctx); err != nil {
		ctx.close()
		return nil, err
	}
	return ctx, nil
}

// runEmbed returns the embeddings (the first block's input), owned by the caller.
func (m *Model) runEmbed(ctx *fwdCtx) (*ts.Tensor, error) {
	s := newScope("embeddings")
	defer s.drop()
	ctx.at(-1)
	h := m.net.embedTokens(s, ctx)
	if !s.ok(h) {
		return nil, s.err
	}
	return m.own(s, h)
}

// runBlock runs block i on h and returns its output, owned by the caller.
func (m *Model) runBlock(ctx *fwdCtx, i int, h *ts.Tensor) (*ts.Tensor, error) {
	s := newScope(fmt.Sprintf("block %d", i))
	s.copyFrozen = ctx.copyFrozen
	defer s.drop()
	ctx.at(i)
	out := m.net.block(s, ctx, i, h)
	if !s.ok(out) {
		return nil, s.err
	}
	return m.own(s, out)
}

// runHead returns the logits for the last hidden states (a fused pass: its loss),
// owned by the caller.
func (m *Model) runHead(ctx *fwdCtx, h *ts.Tensor) (*ts.Tensor, error) {
	if ctx.fused {
		return m.runFusedLoss(ctx, h)
	}
	s := newScope("head")
	defer s.drop()
	ctx.at(m.net.numBlocks())
	out := m.net.head(s, ctx, h)
	if !s.ok(out) {
		return nil, s.err
	}
	return m.own(s, out)
}

// own takes t out of s, or gives the caller its own handle when t is not s's (a
// pass-through input).
func (m *Model) own(s *scope, t *ts.Tensor) (*ts.Tensor, error) {
	if slices.Contains(s.tmp, t) {
		return s.keep(t), nil
	}
	c, err := t.ShallowClone()
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", s.what, err)
	}
	return c, nil
}
