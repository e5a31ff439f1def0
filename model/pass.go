package model

import (
	"errors"
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// SetCheckpointing turns activation checkpointing per block on or off for Begin.
//
// gotch has no checkpoint API, so the model drives it: Begin runs the embeddings and
// every block without autograd, keeping only each block's input, and records the head
// with autograd on a leaf copy of the last hidden state. Pass.Backward first
// back-propagates the loss to that leaf, then, from the top block down, recomputes
// block i from its saved input with autograd on and back-propagates the incoming
// gradient g through it (as backward of ⟨y, g⟩), which accumulates the adapters'
// gradients and yields the gradient for block i − 1. Memory holds the block inputs
// plus one block's activations instead of every block's; the price is a second forward
// pass through the blocks. Dropout in checkpointed passes uses reproducible masks (see
// SetDropoutSeed), so the recomputation sees the masks of the first pass and the
// gradients equal those of a pass without checkpointing.
func (m *Model) SetCheckpointing(on bool) { m.checkpointing = on }

// Checkpointing reports whether Begin checkpoints activations.
func (m *Model) Checkpointing() bool { return m.checkpointing }

// Pass is one training forward pass whose backward the model drives. Use it from one
// goroutine locked to its OS thread (libtorch's grad mode is per thread).
type Pass struct {
	m      *Model
	ctx    *fwdCtx
	logits *ts.Tensor
	loss   *ts.Tensor   // the loss computed in the head (SetFusedLoss), instead of logits
	inputs []*ts.Tensor // checkpointing: the input of every block, no grad
	last   *ts.Tensor   // checkpointing: leaf holding the last block's output
	// regather (SetRegather): every block's output with its graph; inputs then holds
	// the blocks' input leaves (block 0's needs no gradient).
	outputs []*ts.Tensor
	done    bool
	// headHeld: the block hook's After for the head is due once backward has gone
	// through the head (or at Close).
	headHeld bool
}

// Begin runs the forward pass of a training step (see SetCheckpointing) and returns it;
// Logits gives its output. Call Backward with a loss computed from the logits, then
// Close. With SetFusedLoss and in.Labels a causal LM's pass computes its summed loss
// instead (LossSum), and Backward takes that, scaled as the trainer normalises it.
func (m *Model) Begin(in Inputs) (*Pass, error) {
	if m.closed {
		return nil, ErrClosed
	}
	fused, err := m.fusesLoss(in)
	if err != nil {
		return nil, err
	}
	if m.regather && m.opt.hook != nil && !m.checkpointing {
		return m.beginRegather(in, fused)
	}
	if !m.checkpointing {
		out, err := m.forward(in, fused)
		if err != nil {
			return nil, err
		}
		if fused {
			return &Pass{m: m, loss: out}, nil
		}
		return &Pass{m: m, logits: out}, nil
	}
	if m.training {
		for _, a := range m.adapters {
			if a.Spec().Dropout > 0 {
				return nil, fmt.Errorf("%w: activation checkpointing with adapter dropout (%s has %v): lrlora draws its dropout masks from libtorch's generator, so a recomputed block would see other masks",
					ErrUnsupported, a.Name(), a.Spec().Dropout)
			}
		}
	}
	ctx, err := m.newCtx(in, true)
	if err != nil {
		return nil, err
	}
	ctx.fused = fused
	if err := m.streamRows(ctx); err != nil {
		ctx.close()
		return nil, err
	}
	p := &Pass{m: m, ctx: ctx}
	if err := p.forward(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// forward runs embeddings and blocks without autograd and the head with it.
func (p *Pass) forward() (err error) {
	if err := p.m.hookSchedule(p.m.trainOrder()); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.m.hookSchedule(nil))
		}
	}()
	h, err := withGrad(false, func() (*ts.Tensor, error) {
		h, err := p.m.hooked(-1, func() (*ts.Tensor, error) { return p.m.runEmbed(p.ctx) })
		if err != nil {
			return nil, err
		}
		for i := 0; i < p.m.net.numBlocks(); i++ {
			in := h
			p.inputs = append(p.inputs, in)
			if h, err = p.m.hooked(i, func() (*ts.Tensor, error) { return p.m.runBlock(p.ctx, i, in) }); err != nil {
				return nil, err
			}
		}
		return h, nil
	})
	if err != nil {
		return err
	}
	return p.head(h)
}

// head runs the head with autograd on a leaf holding h, the last block's output
// (without grad; the leaf takes h over), and keeps the leaf for Backward. The head's
// weights stay until Backward has used them (releaseHead).
func (p *Pass) head(h *ts.Tensor) (err error) {
	if p.last, err = h.SetRequiresGrad(true, true); err != nil {
		return fmt.Errorf("model: last block output: %w", err)
	}
	if err := p.m.hookBefore(p.m.net.numBlocks()); err != nil {
		return err
	}
	p.headHeld = p.m.opt.hook != nil
	out, err := withGrad(true, func() (*ts.Tensor, error) { return p.m.runHead(p.ctx, p.last) })
	if p.ctx.fused {
		p.loss = out
	} else {
		p.logits = out
	}
	return err
}

// releaseHead calls the block hook's After for the head if it is due.
func (p *Pass) releaseHead() error {
	if !p.headHeld {
		return nil
	}
	p.headHeld = false
	return p.m.hookAfter(p.m.net.numBlocks())
}

// Logits is the pass's output (owned by the pass); nil when the pass computed its
// loss in the head (LossSum).
func (p *Pass) Logits() *ts.Tensor { return p.logits }

// LossSum is the summed causal-LM loss the pass computed in its head (Inputs.Labels
// with SetFusedLoss), the value CausalLMLossSum gives from the logits, as a scalar to
// back-propagate from (scaled, through Backward); nil when the pass computed logits.
// Owned by the pass.
func (p *Pass) LossSum() *ts.Tensor { return p.loss }

// Backward back-propagates loss (a scalar computed from Logits) into the gradients of
// the adapters and the head. It may be called once.
func (p *Pass) Backward(loss *ts.Tensor) error {
	if p.done {
		return fmt.Errorf("model: backward called twice on one pass")
	}
	p.done = true
	if p.ctx == nil {
		if err := loss.Backward(); err != nil {
			return fmt.Errorf("model: backward: %w", err)
		}
		return nil
	}
	// Nothing is prepared (gathered) ahead until the top block's backward is done:
	// not while the head's backward runs (with logits, the loss's logits and their
	// gradient are a pass's largest transient), and not while the top block's runs
	// beside every block's activations, the most backward holds. The top block's
	// weights are prepared when it starts; the other blocks' are scheduled from the
	// top down once it is done. The schedule ends with the loop, or drops what a
	// loop that stopped early left.
	top := len(p.inputs) - 1
	order := make([]int, 0, top)
	for i := top - 1; i >= 0; i-- {
		order = append(order, i)
	}
	_, err := withGrad(true, func() (*ts.Tensor, error) {
		if err := loss.Backward(); err != nil {
			return nil, fmt.Errorf("model: backward through the head: %w", err)
		}
		if err := p.releaseHead(); err != nil {
			return nil, err
		}
		g, err := p.last.Grad(false)
		if err != nil {
			return nil, fmt.Errorf("model: gradient of the last block: %w", err)
		}
		for i := top; i >= 0 && g != nil; i-- {
			if i == top-1 {
				if err := p.m.hookSchedule(order); err != nil {
					g.Drop()
					return nil, err
				}
			}
			next, err := p.backwardBlock(i, g)
			g.Drop()
			if err != nil {
				return nil, err
			}
			g = next
		}
		if g != nil {
			g.Drop()
		}
		return nil, nil
	})
	return errors.Join(err, p.m.hookSchedule(nil))
}

// backwardBlock back-propagates g (the gradient of block i's output) through block i,
// between the block hook's Before(i) and After(i): through the graph Begin kept
// (SetRegather), or through the block recomputed from its saved input (checkpointing).
// It returns the gradient of the block's input, or nil when nothing below needs one
// (block 0: the embeddings are frozen).
func (p *Pass) backwardBlock(i int, g *ts.Tensor) (gx *ts.Tensor, err error) {
	if err := p.m.hookBefore(i); err != nil {
		return nil, err
	}
	defer func() {
		if aerr := p.m.hookAfter(i); aerr != nil && err == nil {
			if gx != nil {
				gx.Drop()
			}
			gx, err = nil, aerr
		}
	}()
	if p.outputs != nil {
		return p.through(i, p.outputs[i], p.inputs[i], g)
	}
	x, err := p.inputs[i].Detach(false)
	if err != nil {
		return nil, fmt.Errorf("model: checkpoint block %d: %w", i, err)
	}
	defer x.Drop()
	if i > 0 {
		if x, err = x.SetRequiresGrad(true, false); err != nil {
			return nil, fmt.Errorf("model: checkpoint block %d: %w", i, err)
		}
		defer x.Drop()
	}
	y, err := p.m.runBlock(p.ctx, i, x)
	if err != nil {
		return nil, err
	}
	defer y.Drop()
	return p.through(i, y, x, g)
}

// through runs backward of ⟨y, g⟩, y block i's output with autograd from its input
// leaf x, which accumulates the adapters' gradients, and returns x's gradient (nil for
// block 0, or when y records no autograd: no adapter in this block or below).
func (p *Pass) through(i int, y, x, g *ts.Tensor) (*ts.Tensor, error) {
	if ok, _ := y.RequiresGrad(); !ok {
		return nil, nil
	}
	s := newScope(fmt.Sprintf("backward of block %d", i))
	defer s.drop()
	sum := s.sumProduct(y, g)
	if !s.ok(sum) {
		return nil, s.err
	}
	if err := sum.Backward(); err != nil {
		return nil, fmt.Errorf("model: block %d: backward: %w", i, err)
	}
	if i == 0 {
		return nil, nil
	}
	gx, err := x.Grad(false)
	if err != nil {
		return nil, fmt.Errorf("model: block %d: input gradient: %w", i, err)
	}
	return gx, nil
}

// Close frees the pass's tensors (and lets the block hook release the head's weights
// if Backward did not run).
func (p *Pass) Close() {
	_ = p.releaseHead()
	for _, t := range []**ts.Tensor{&p.logits, &p.loss} {
		if *t != nil {
			(*t).Drop()
			*t = nil
		}
	}
	for _, t := range append(p.inputs, p.outputs...) {
		t.Drop()
	}
	p.inputs, p.outputs = nil, nil
	if p.last != nil {
		p.last.Drop()
		p.last = nil
	}
	if p.ctx != nil {
		p.ctx.close()
		p.ctx = nil
	}
}

// withGrad runs fn with libtorch's grad mode set to on (tensorkit.WithGrad: the
// goroutine stays on its OS thread meanwhile) and restores the previous mode.
func withGrad(on bool, fn func() (*ts.Tensor, error)) (*ts.Tensor, error) {
	var out *ts.Tensor
	err := tensorkit.WithGrad(on, func() error {
		var err error
		out, err = fn()
		return err
	})
	return out, err
}
