package train

import (
	"context"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/phiop"
)

// The buffers of model.split_delta's exchange (splitdelta.go) and the collectives
// on them.

// rawCalls is one of the split's collectives on two buffers' data: plain, and where
// the group offers it, ordered (stream-ordered against libtorch's CUDA stream).
type rawCalls struct {
	plain, ordered func(send, recv unsafe.Pointer) error
}

// gatherWeights is the all-gather of the owners' blocks of held weights.
func (sh *deltaShare) gatherWeights(ctx context.Context) rawCalls {
	n, dt := int(sh.block), sh.reduceDT
	c := rawCalls{plain: func(send, recv unsafe.Pointer) error { return sh.sg.AllGatherRaw(ctx, send, recv, n, dt) }}
	if og, ok := sh.sg.(collective.StreamOrderedAllGatherer); ok {
		c.ordered = func(send, recv unsafe.Pointer) error {
			return og.AllGatherRawOrdered(ctx, send, recv, n, dt, collective.DefaultStream)
		}
	}
	return c
}

// scatterGrads is the reduce-scatter of the held weights' gradients: each rank
// receives the sum of its own block.
func (sh *deltaShare) scatterGrads(ctx context.Context) rawCalls {
	n, dt := int(sh.block), sh.reduceDT
	c := rawCalls{plain: func(send, recv unsafe.Pointer) error {
		return sh.sg.ReduceScatterRaw(ctx, send, recv, n, dt, collective.Sum)
	}}
	if os, ok := sh.sg.(collective.StreamOrderedReduceScatterer); ok {
		c.ordered = func(send, recv unsafe.Pointer) error {
			return os.ReduceScatterRawOrdered(ctx, send, recv, n, dt, collective.Sum, collective.DefaultStream)
		}
	}
	return c
}

// collective runs c on send's and recv's data (onDevice chooses ordered or plain); it
// returns once recv is written, so the buffers may be freed to libtorch's caching
// allocator after the call.
func (sh *deltaShare) collective(dev gotch.Device, send, recv *ts.Tensor, c rawCalls) error {
	s, err := send.DataPtr()
	if err != nil {
		return err
	}
	r, err := recv.DataPtr()
	if err != nil {
		return err
	}
	var ordered func() error
	if c.ordered != nil {
		ordered = func() error { return c.ordered(s, r) }
	}
	err = onDevice(dev, ordered, func() error { return c.plain(s, r) })
	runtime.KeepAlive(send)
	runtime.KeepAlive(recv)
	return err
}

// withSlot calls f with the n elements of flat from off (a view, dropped after f).
func withSlot(flat *ts.Tensor, off, n int64, f func(slot *ts.Tensor) error) error {
	slot, err := flat.Narrow(0, off, n, false)
	if err != nil {
		return fmt.Errorf("slot [%d, %d): %w", off, off+n, err)
	}
	defer slot.Drop()
	return f(slot)
}

// gradsInPlace allocates the gradient buffer (zeros: slots of weights no pass
// reaches, and the padding, stay zero) and makes each held weight's .grad its slot,
// so that the passes add into the buffer in place. Called before the step's first
// backward (or, on a rank without micro-batches, at its end); later calls do nothing.
func (sh *deltaShare) gradsInPlace(dev gotch.Device) error {
	if sh.grads != nil {
		return nil
	}
	var err error
	if sh.grads, err = ts.Zeros([]int64{int64(sh.ranks) * sh.block}, sh.dtype, dev); err != nil {
		return fmt.Errorf("train: split ΔW: gradient buffer of %d elements: %w", int64(sh.ranks)*sh.block, err)
	}
	for i, ad := range sh.ads {
		if err := withSlot(sh.grads, sh.off[i], sh.n[i], ad.GatherGradInto); err != nil {
			return fmt.Errorf("train: split ΔW: %w", err)
		}
	}
	return nil
}

// release drops the gradient buffer (the caller releases the held weights); a
// no-op once done.
func (sh *deltaShare) release() {
	if sh.grads != nil {
		sh.grads.Drop()
		sh.grads = nil
	}
}

// zeroMissingGrads gives every parameter without a gradient a zero one (a backward
// from the leaf itself with a zero gradient): under a split the layers another rank
// owns get none on this rank, and the all-reduce of the gradients needs one per
// parameter. From the second step on the optimizer's zeroing keeps them.
func zeroMissingGrads(params []ts.NamedTensor) error {
	var leaves, zeros []*ts.Tensor
	defer func() { dropAll(zeros) }()
	for _, p := range params {
		g, err := p.Tensor.Grad(false)
		if err != nil {
			return fmt.Errorf("train: gradient of %s: %w", p.Name, err)
		}
		ok, err := g.Defined()
		g.Drop()
		if err != nil {
			return fmt.Errorf("train: gradient of %s: %w", p.Name, err)
		}
		if ok {
			continue
		}
		z, err := p.Tensor.ZerosLike(false)
		if err != nil {
			return fmt.Errorf("train: zero gradient of %s: %w", p.Name, err)
		}
		leaves, zeros = append(leaves, p.Tensor), append(zeros, z)
	}
	if err := phiop.Backward(leaves, zeros); err != nil {
		return fmt.Errorf("train: zero gradients: %w", err)
	}
	return nil
}
