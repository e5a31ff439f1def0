package lrlora

import (
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/phiop"
)

// heldDelta is the merged weight an adapter formed once for an optimizer step
// (HoldDelta): root records the graph back to B, A and φ's parameters; leaf holds
// root's values (the same storage), detached and requiring grad, and is what every
// micro-batch's forward reads, so their gradients add up in leaf's .grad.
type heldDelta struct {
	root, leaf *ts.Tensor
	// weff: leaf is W_eff = W0 + ΔW in W0's dtype (forward uses it as the weight);
	// otherwise it is ΔW in the parameters' dtype (forward adds it to W0 per pass).
	weff bool
}

func (h *heldDelta) drop() {
	h.leaf.Drop()
	if h.root != nil { // nil: a received weight (HoldReceived)
		h.root.Drop()
	}
}

// Holds reports whether HoldDelta would form this adapter's ΔW once for a step:
// in training mode for the methods whose forward forms ΔW (LR-LoRA and SineLoRA;
// plain LoRA trains unmerged), except LR-LoRA layers that recompute ΔW in backward
// (SetRecomputeDelta: they keep no d_out×d_in tensor, and holding would keep two).
func (ad *Adapter) Holds() bool {
	switch {
	case ad.closed || !ad.training:
		return false
	case ad.spec.Method == adapter.LoRA:
		return false
	case ad.spec.Method == adapter.LRLoRA && ad.recompute && ad.spec.Dropout == 0:
		return false
	}
	return true
}

// HoldDelta forms the adapter's merged weight once, for every forward pass until
// BackwardHeld (or ReleaseDelta): an optimizer step over several micro-batches then
// evaluates φ once forward and once backward instead of once per micro-batch, with
// the same gradient up to the order of its sums (∂L/∂ΔW is linear in the upstream
// gradient, so φ's backward on the sum of the micro-batches' gradients equals the sum
// of its backwards). With dropout 0 and W0 in the parameters' dtype the held tensor
// is W_eff = W0 + ΔW itself (each pass then skips the d_out×d_in addition);
// otherwise it is ΔW in the parameters' dtype, so that the micro-batches' gradients
// add up in float32 even under a bfloat16 backbone. Memory: the held tensor and its
// gradient, two d_out×d_in tensors per layer for the whole step. For LR-LoRA the
// held tensor is one phiop.LeanDelta node, which keeps B, A and the K-vectors and
// recomputes M = B·A in backward (one rank-r product per layer and step); composed
// op by op, φ's node would keep M, a third d_out×d_in tensor. W0 must be present
// (not a released shard) for the W_eff form.
// It does nothing, and returns nil, where Holds is false.
func (ad *Adapter) HoldDelta() error {
	return ad.hold(func(weff bool) (*ts.Tensor, error) {
		switch {
		case ad.spec.Method == adapter.LRLoRA:
			return ad.leanDelta(weff)
		case weff:
			return ad.mergedWeight()
		}
		return ad.DeltaWeight()
	})
}

// hold is HoldDelta with the held weight's graph made by form (W_eff when weff, else
// ΔW).
func (ad *Adapter) hold(form func(weff bool) (*ts.Tensor, error)) error {
	if !ad.Holds() {
		return nil
	}
	if ad.held != nil {
		return fmt.Errorf("lrlora: hold delta %q: already held", ad.name)
	}
	h := &heldDelta{weff: ad.spec.Dropout == 0 && ad.w0.DType() == ad.dtype}
	err := tensorkit.WithGrad(true, func() error {
		var err error
		if h.root, err = form(h.weff); err != nil {
			return err
		}
		d, err := h.root.Detach(false)
		if err != nil {
			return fmt.Errorf("lrlora: hold delta %q: detach: %w", ad.name, err)
		}
		if h.leaf, err = d.SetRequiresGrad(true, true); err != nil {
			return fmt.Errorf("lrlora: hold delta %q: leaf: %w", ad.name, err)
		}
		return nil
	})
	if err != nil {
		if h.root != nil {
			h.root.Drop()
		}
		return err
	}
	ad.held = h
	return nil
}

// ReleaseDelta drops the held weight (HoldDelta) without back-propagating its
// gradient; a no-op when nothing is held.
func (ad *Adapter) ReleaseDelta() {
	if ad.held != nil {
		ad.held.drop()
		ad.held = nil
	}
}

// BackwardHeld back-propagates the gradient each adapter's held weight gathered over
// the step's passes into its B, A and φ parameters, in one backward call for all of
// them, then releases every held weight (also on error). Adapters holding nothing, or
// whose held weight received no gradient, are skipped.
func BackwardHeld(ads []*Adapter) error {
	var roots, grads []*ts.Tensor
	defer func() {
		for _, g := range grads {
			g.Drop()
		}
		for _, ad := range ads {
			ad.ReleaseDelta()
		}
	}()
	for _, ad := range ads {
		if ad.held == nil || ad.held.root == nil {
			continue
		}
		g, err := ad.HeldGrad()
		if err != nil {
			return err
		}
		if g != nil {
			roots, grads = append(roots, ad.held.root), append(grads, g)
		}
	}
	return backwardRoots(roots, grads)
}

func backwardRoots(roots, grads []*ts.Tensor) error {
	if err := phiop.Backward(roots, grads); err != nil {
		return fmt.Errorf("lrlora: backward of %d held deltas: %w", len(roots), err)
	}
	return nil
}

// heldAs returns a new handle to the held weight when HoldDelta holds it in the form
// asked for (W_eff when weff, else ΔW), or nil. A pass that finds no match forms ΔW
// afresh, which is slower but gives the same values and gradients.
func (ad *Adapter) heldAs(weff bool) (*ts.Tensor, error) {
	if ad.held == nil || ad.held.weff != weff {
		return nil, nil
	}
	w, err := ad.held.leaf.ShallowClone()
	if err != nil {
		return nil, fmt.Errorf("lrlora: forward %q: held weight: %w", ad.name, err)
	}
	return w, nil
}
