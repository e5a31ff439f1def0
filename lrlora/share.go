package lrlora

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/phiop"
)

// Sharing the held weights between processes. Data-parallel ranks hold the same
// adapters, so every rank forming every layer's merged weight repeats the step's φ
// work on each of them. Instead one rank (the layer's owner) can form a layer's
// weight (HoldDeltaInto), the others take its values (HoldReceived); after the
// micro-batches each rank's gradient of the held weight (HeldGrad, or in place in a
// buffer of the caller's: GatherGradInto) is summed across
// ranks and the owner alone runs the layer's backward with the sum (BackwardHeldWith).
// φ's backward is linear in its upstream gradient, so that equals the sum of the
// ranks' own backwards, up to the order of the sums. The collectives are the
// caller's.

// HeldSize is the number of elements and the dtype of the tensor HoldDelta holds:
// d_out×d_in in the parameters' dtype (W_eff when W0 has that dtype and dropout is 0,
// otherwise ΔW).
func (ad *Adapter) HeldSize() (int64, gotch.DType) { return ad.dOut * ad.dIn, ad.dtype }

// HoldDeltaInto is HoldDelta, and copies the held values into slot, a tensor of
// HeldSize's elements and dtype on the adapter's device (any shape: another rank's
// HoldReceived takes them from there). For LR-LoRA the held weight then is slot's
// memory (phiop.LeanDeltaInto; slot must be contiguous and not require grad), not a
// second copy: slot must keep the values until BackwardHeldWith or ReleaseDelta. It
// does nothing where Holds is false.
func (ad *Adapter) HoldDeltaInto(slot *ts.Tensor) error {
	if !ad.Holds() {
		return nil
	}
	if err := ad.checkSlot(slot); err != nil {
		return err
	}
	if ad.spec.Method == adapter.LRLoRA {
		return ad.hold(func(weff bool) (*ts.Tensor, error) { return ad.leanDeltaInto(slot, weff) })
	}
	if err := ad.HoldDelta(); err != nil {
		return err
	}
	if err := tensorkit.CopyValues(slot, ad.held.leaf); err != nil {
		ad.ReleaseDelta()
		return fmt.Errorf("lrlora: hold delta %q: copy out: %w", ad.name, err)
	}
	return nil
}

// HoldReceived holds slot's storage (HeldSize's elements and dtype on the adapter's
// device, filled by the caller before the first forward pass with what another
// process's HoldDeltaInto wrote for the same parameters) as the adapter's merged
// weight for the step, without forming it. Its gradient gathers as HoldDelta's does
// (read it with HeldGrad); it has no graph, so BackwardHeld and BackwardHeldWith skip
// it. It does nothing where Holds is false.
func (ad *Adapter) HoldReceived(slot *ts.Tensor) error {
	if !ad.Holds() {
		return nil
	}
	if ad.held != nil {
		return fmt.Errorf("lrlora: hold delta %q: already held", ad.name)
	}
	if err := ad.checkSlot(slot); err != nil {
		return err
	}
	h := &heldDelta{weff: ad.spec.Dropout == 0 && ad.w0.DType() == ad.dtype}
	err := tensorkit.NoGrad(func() error {
		v, err := slot.View([]int64{ad.dOut, ad.dIn}, false)
		if err != nil {
			return err
		}
		defer v.Drop()
		d, err := v.Detach(false)
		if err != nil {
			return err
		}
		h.leaf, err = d.SetRequiresGrad(true, true)
		return err
	})
	if err != nil {
		return fmt.Errorf("lrlora: hold delta %q: received weight: %w", ad.name, err)
	}
	ad.held = h
	return nil
}

func (ad *Adapter) checkSlot(slot *ts.Tensor) error {
	if slot == nil {
		return fmt.Errorf("lrlora: hold delta %q: no slot", ad.name)
	}
	shape, err := slot.Size()
	if err != nil {
		return fmt.Errorf("lrlora: hold delta %q: slot: %w", ad.name, err)
	}
	n, dt := ad.HeldSize()
	var have int64 = 1
	for _, d := range shape {
		have *= d
	}
	at, err := slot.Device()
	if err != nil {
		return fmt.Errorf("lrlora: hold delta %q: slot: %w", ad.name, err)
	}
	want, err := ad.w0.Device()
	if err != nil {
		return fmt.Errorf("lrlora: hold delta %q: W0: %w", ad.name, err)
	}
	if have != n || slot.DType() != dt || at != want {
		return fmt.Errorf("lrlora: hold delta %q: slot of %v %v on %v, want %d elements of %v on %v",
			ad.name, shape, slot.DType(), at, n, dt, want)
	}
	return nil
}

// GatherGradInto makes the held weight's gradient live in slot (HeldSize's elements
// and dtype on the adapter's device, zero: the passes add into it in place), so that
// a collective can read the step's gradient there without a copy. It must be called
// after HoldDelta, HoldDeltaInto or HoldReceived and before the first backward that
// reaches the held weight (a gradient already gathered is refused, not dropped);
// HeldGrad then returns a view of slot. It does nothing where nothing is held.
func (ad *Adapter) GatherGradInto(slot *ts.Tensor) error {
	if ad.held == nil {
		return nil
	}
	if err := ad.checkSlot(slot); err != nil {
		return err
	}
	if g, err := ad.HeldGrad(); err != nil || g != nil {
		if g != nil {
			g.Drop()
			err = fmt.Errorf("lrlora: held delta %q: gradient slot set after a backward reached it", ad.name)
		}
		return err
	}
	v, err := slot.View([]int64{ad.dOut, ad.dIn}, false)
	if err != nil {
		return fmt.Errorf("lrlora: held delta %q: gradient slot: %w", ad.name, err)
	}
	defer v.Drop()
	if err := phiop.SetGrad(ad.held.leaf, v); err != nil {
		return fmt.Errorf("lrlora: held delta %q: %w", ad.name, err)
	}
	return nil
}

// HeldGrad returns a new handle to the gradient the held weight gathered over the
// step's passes (d_out×d_in), or nil when nothing is held or no pass reached it.
func (ad *Adapter) HeldGrad() (*ts.Tensor, error) {
	if ad.held == nil {
		return nil, nil
	}
	g, err := ad.held.leaf.Grad(false)
	if err != nil {
		return nil, fmt.Errorf("lrlora: held delta %q: gradient: %w", ad.name, err)
	}
	ok, err := g.Defined()
	if err != nil || !ok {
		g.Drop()
		if err != nil {
			return nil, fmt.Errorf("lrlora: held delta %q: gradient: %w", ad.name, err)
		}
		return nil, nil
	}
	return g, nil
}

// BackwardHeldWith is BackwardHeld with the gradient of each held weight given
// (grads[i] for ads[i], HeldSize's elements, any shape; nil skips the adapter)
// instead of the one it gathered: a sum over ranks, say. Adapters holding a received
// weight (HoldReceived) are skipped. Every held weight is released, also on error.
func BackwardHeldWith(ads []*Adapter, grads []*ts.Tensor) error {
	if len(grads) != len(ads) {
		return fmt.Errorf("lrlora: backward of held deltas: %d adapters but %d gradients", len(ads), len(grads))
	}
	var roots, shaped []*ts.Tensor
	defer func() {
		for _, g := range shaped {
			g.Drop()
		}
		for _, ad := range ads {
			ad.ReleaseDelta()
		}
	}()
	for i, ad := range ads {
		if ad.held == nil || ad.held.root == nil || grads[i] == nil {
			continue
		}
		if err := ad.checkSlot(grads[i]); err != nil {
			return err
		}
		g, err := grads[i].View([]int64{ad.dOut, ad.dIn}, false)
		if err != nil {
			return fmt.Errorf("lrlora: held delta %q: gradient: %w", ad.name, err)
		}
		roots, shaped = append(roots, ad.held.root), append(shaped, g)
	}
	return backwardRoots(roots, shaped)
}
