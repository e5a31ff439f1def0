package model

import (
	"errors"
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
)

// SetRegather chooses, for a model whose weights a block hook releases after each
// piece (a sharded backbone), how Begin and Pass.Backward get through the blocks
// without activation checkpointing. On, Begin keeps every block's autograd graph, as a
// model without a hook does, and Pass.Backward runs the blocks' backward one at a time
// from the top between the hook's Before(i) and After(i): the hook gathers block i's
// weights again and the graph's nodes read them, instead of the block being recomputed.
// Only nodes that hold the weights by reference, not as saved variables (whose version
// check would catch the release), may use them: every adapted linear must be an LR-LoRA
// layer recomputing ΔW (lrlora.Adapter.SetRecomputeDelta, phiop.LeanLinear), and the
// blocks use copies of the norm weights. Begin refuses with ErrUnsupported, naming the
// layer, where a block's linear is not; activation checkpointing (SetCheckpointing), when
// on, takes precedence. Memory: every block's activations, as without a hook, but no
// d_out×d_in tensor per layer and 1/S of the frozen weights plus the gathered buffers.
func (m *Model) SetRegather(on bool) { m.regather = on }

// Regather reports SetRegather's setting.
func (m *Model) Regather() bool { return m.regather }

// RegatherReady returns nil when SetRegather can take effect, else an error (wrapping
// ErrUnsupported) naming the first linear whose backward would need a
// released weight as a saved variable.
func (m *Model) RegatherReady() error {
	for _, l := range m.linears {
		a := l.adapter
		switch {
		case a == nil:
			return fmt.Errorf("%w: regathering weights in backward: %s has no adapter, so its backward would keep the released weight; adapt every linear layer or use activation checkpointing", ErrUnsupported, l.Name)
		case a.Spec().Method != adapter.LRLoRA || !a.RecomputeDelta() || !a.Training() || a.Spec().Dropout > 0:
			return fmt.Errorf("%w: regathering weights in backward: %s is not an LR-LoRA layer recomputing ΔW in training with dropout 0 (model.recompute_delta), so its backward would keep the released weight; use activation checkpointing", ErrUnsupported, l.Name)
		}
	}
	return nil
}

// beginRegather is Begin under SetRegather: embeddings without autograd, then each
// block with autograd on a leaf copy of its input between Before(i) and After(i),
// keeping its output and graph, then the head as the checkpointed pass runs it.
func (m *Model) beginRegather(in Inputs, fused bool) (*Pass, error) {
	if err := m.RegatherReady(); err != nil {
		return nil, err
	}
	ctx, err := m.newCtx(in, true)
	if err != nil {
		return nil, err
	}
	ctx.copyFrozen, ctx.fused = true, fused
	if err := m.streamRows(ctx); err != nil {
		ctx.close()
		return nil, err
	}
	p := &Pass{m: m, ctx: ctx, outputs: []*ts.Tensor{}}
	if err := p.forwardRegather(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Pass) forwardRegather() (err error) {
	m := p.m
	if err := m.hookSchedule(m.trainOrder()); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, m.hookSchedule(nil))
		}
	}()
	h, err := withGrad(false, func() (*ts.Tensor, error) {
		return m.hooked(-1, func() (*ts.Tensor, error) { return m.runEmbed(p.ctx) })
	})
	if err != nil {
		return err
	}
	for i := 0; i < m.net.numBlocks(); i++ {
		x := h
		if i > 0 {
			if x, err = h.SetRequiresGrad(true, false); err != nil {
				h.Drop()
				return fmt.Errorf("model: block %d input: %w", i, err)
			}
			h.Drop()
		}
		p.inputs = append(p.inputs, x)
		y, err := withGrad(true, func() (*ts.Tensor, error) {
			return m.around(i, func() (*ts.Tensor, error) { return m.runBlock(p.ctx, i, x) })
		})
		if err != nil {
			return err
		}
		p.outputs = append(p.outputs, y)
		if h, err = y.Detach(false); err != nil {
			return fmt.Errorf("model: block %d output: %w", i, err)
		}
	}
	return p.head(h)
}
