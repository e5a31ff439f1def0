package optim

import (
	"errors"
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/phiop"
)

// stepStats counts what one Step did.
type stepStats struct {
	nativeCalls    int // phiop.AdamW calls: one per dtype/device group
	nativeParams   int // parameters stepped by those calls
	fallbackParams int // parameters stepped by the libtorch ops
}

// pending is a parameter with a gradient in the step being taken.
type pending struct {
	name string
	p, g *ts.Tensor
	st   *ParamState
	lr   float64
}

// step gathers the parameters that have a gradient (creating their state at the
// first one), groups them by dtype and device and steps each group with one
// native call; the libtorch-op path takes what the native op refuses. It runs
// under no-grad (Step).
func (o *AdamW) step(lr float64) error {
	o.last = stepStats{}
	var work []pending
	defer func() {
		for _, w := range work {
			w.g.Drop()
		}
	}()
	for _, p := range o.params {
		g, err := gradOf(p.Tensor)
		if err != nil {
			return fmt.Errorf("optim: adamw step %q: %w", p.Name, err)
		}
		if g == nil {
			continue
		}
		work = append(work, pending{name: p.Name, p: p.Tensor, g: g, lr: lr * o.lrScale(p.Name)})
		st, ok := o.state[p.Name]
		if !ok {
			if st, err = o.newState(p.Tensor); err != nil {
				return fmt.Errorf("optim: adamw step %q: %w", p.Name, err)
			}
			o.state[p.Name] = st
		}
		work[len(work)-1].st = st
	}

	var order []int64 // group keys in order of first appearance
	groups := map[int64][]int{}
	var fallback []int
	for i, w := range work {
		if o.opsOnly {
			fallback = append(fallback, i)
			continue
		}
		key, err := phiop.AdamWCheck(w.p, w.g, w.st.ExpAvg, w.st.ExpAvgSq)
		switch {
		case err == nil:
			if _, seen := groups[key]; !seen {
				order = append(order, key)
			}
			groups[key] = append(groups[key], i)
		case errors.Is(err, phiop.ErrUnsupported):
			// The native op takes contiguous float32/float64 tensors on cpu or cuda
			// only; a non-contiguous parameter (a transposed view made a leaf, whose
			// gradient and moments share its strides) or a half-precision one steps
			// through the libtorch ops, which take any layout and dtype.
			fallback = append(fallback, i)
		default: // a mismatch between a parameter and its gradient or state
			return fmt.Errorf("optim: adamw step %q: %w", w.name, err)
		}
	}

	for _, key := range order {
		if err := o.stepNative(work, groups[key]); err != nil {
			return err
		}
	}
	for _, i := range fallback {
		w := work[i]
		if err := o.stepOps(w.p, w.g, w.st, w.lr); err != nil {
			return fmt.Errorf("optim: adamw step %q: %w", w.name, err)
		}
		o.last.fallbackParams++
	}
	return nil
}

// stepNative steps the parameters work[idx] (one dtype and device) in one
// phiop.AdamW call and advances their step counts once it has succeeded; a
// refused call changes nothing.
func (o *AdamW) stepNative(work []pending, idx []int) error {
	list := make([]phiop.AdamWEntry, len(idx))
	for j, i := range idx {
		w := work[i]
		list[j] = phiop.AdamWEntry{Param: w.p, Grad: w.g, ExpAvg: w.st.ExpAvg, ExpAvgSq: w.st.ExpAvgSq,
			Step: w.st.Step + 1, LR: w.lr}
	}
	c := o.cfg
	err := phiop.AdamW(list, phiop.AdamWHyper{Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay})
	if err != nil {
		var ee *phiop.EntryError
		if errors.As(err, &ee) && ee.Index >= 0 && ee.Index < len(idx) {
			return fmt.Errorf("optim: adamw step %q: %w", work[idx[ee.Index]].name, err)
		}
		return fmt.Errorf("optim: adamw step (%d parameters): %w", len(idx), err)
	}
	for _, i := range idx {
		work[i].st.Step++
	}
	o.last.nativeCalls++
	o.last.nativeParams += len(idx)
	return nil
}
