package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// BlockHook is called around each piece of a pass: Before(i) before and After(i)
// after the piece runs, where i is −1 for the embeddings, 0..NumBlocks()−1 for the
// blocks and NumBlocks() for the head. Package shard uses it to all-gather a block's
// sharded frozen weights before the block and free them after.
//
// The model calls After(i) only once nothing still needs the weights of piece i:
// Forward right after the piece; a checkpointed pass (SetCheckpointing, Begin) right
// after the embeddings and each block, which run without autograd, but after the
// head only once Pass.Backward has gone back through it (or at Pass.Close), and the
// recomputation of block i in Pass.Backward is bracketed by its own Before(i) and
// After(i) around the block's forward and backward. A Forward that records autograd
// would need every block's weights again in its backward, so with a hook it fails
// with ErrUnsupported: train with activation checkpointing, evaluate with grad mode
// off. An error from the hook fails the pass.
type BlockHook interface {
	Before(block int) error
	After(block int) error
}

// WeightDeferrer is an optional interface of a BlockHook that supplies frozen
// weights itself. At load, every frozen tensor of the checkpoint (not the trainable
// heads) is checked for shape and dtype as usual and then offered to DeferWeight with
// its Hugging Face name, the name it has in the checkpoint (an alternate spelling,
// such as LayerNorm gamma) and a placeholder: a model-owned tensor of the right shape,
// compute dtype and device whose elements are all one NaN (stride 0, no storage to
// speak of). If DeferWeight returns true the checkpoint's bytes are never read and the
// placeholder is the weight the model computes with: the hook gives it storage in
// Before (libtorch's set_, which keeps the tensor object the layers and adapters
// hold) and takes it back in After. A deferred weight that the hook forgot to bind
// turns the output into NaN instead of silently computing with stale values.
// Weights() lists the placeholders; their values are meaningful only between Before
// and After.
type WeightDeferrer interface {
	DeferWeight(name, checkpointName string, placeholder *ts.Tensor) bool
}

// BlockScheduler is an optional interface of a BlockHook that prepares pieces ahead:
// before a run of pieces the model calls Schedule with the order in which it will
// call Before for them — Forward: the embeddings, the blocks, the head; a training
// pass's forward (Begin): the embeddings and the blocks, the head's Before following
// unannounced; Pass.Backward: once the top block's backward is done, the blocks below
// it from the top down — and it calls
// Schedule(nil) when it leaves a run before its end (an error, a backward that stops
// below the lowest adapter) and at the end of Pass.Backward. Package shard gathers
// the next blocks' weights on a goroutine of its own while the current block
// computes. The calls depend only on the model and the pass, so every rank of a
// shard group makes the same ones, in the same order: a hook may issue collectives
// from them. An error from Schedule fails the pass.
type BlockScheduler interface {
	Schedule(order []int) error
}

// WithBlockHook installs h around every piece of every pass (see BlockHook); if h is
// also a WeightDeferrer, it is offered the frozen weights at load.
func WithBlockHook(h BlockHook) Option { return func(o *options) { o.hook = h } }

// NumBlocks is the number of transformer blocks (decoder or encoder layers); the
// BlockHook numbers the head NumBlocks() and the embeddings −1.
func (m *Model) NumBlocks() int { return m.net.numBlocks() }

// placeholder makes the stand-in for a deferred weight: one NaN expanded to shape.
func placeholder(shape []int64, dt gotch.DType, dev gotch.Device) (*ts.Tensor, error) {
	one, err := ts.Full([]int64{1}, ts.FloatScalar(math.NaN()), dt, dev)
	if err != nil {
		return nil, err
	}
	defer one.Drop()
	if len(shape) == 0 {
		return one.Reshape(shape, false)
	}
	return one.Expand(shape, false, false)
}

// hooked runs one piece of a Forward (−1 embeddings, i a block, numBlocks the head)
// between the hook's Before and After. The piece must not have recorded autograd,
// whose backward would need the weights that After takes away.
func (m *Model) hooked(i int, run func() (*ts.Tensor, error)) (*ts.Tensor, error) {
	if m.opt.hook == nil {
		return run()
	}
	return m.around(i, func() (*ts.Tensor, error) {
		out, err := run()
		if err == nil {
			if rg, rerr := out.RequiresGrad(); rerr != nil || rg {
				out.Drop()
				out, err = nil, fmt.Errorf("%w: Forward with a block hook (sharded weights) and autograd on: the %s's weights are released after it runs, so backward could not go through it; train with SetCheckpointing(true) and Begin, or run Forward with grad mode off",
					ErrUnsupported, pieceName(i, m.net.numBlocks()))
			}
		}
		return out, err
	})
}

// around runs piece i between the hook's Before(i) and After(i) (just runs it without
// a hook), dropping the output if After fails.
func (m *Model) around(i int, run func() (*ts.Tensor, error)) (*ts.Tensor, error) {
	if err := m.hookBefore(i); err != nil {
		return nil, err
	}
	out, err := run()
	if aerr := m.hookAfter(i); aerr != nil {
		if out != nil {
			out.Drop()
		}
		return nil, errors.Join(err, aerr)
	}
	return out, err
}

// hookSchedule tells a BlockScheduler hook the order of the next Before calls (nil:
// none).
func (m *Model) hookSchedule(order []int) error {
	sc, ok := m.opt.hook.(BlockScheduler)
	if !ok {
		return nil
	}
	if err := sc.Schedule(order); err != nil {
		return fmt.Errorf("model: block hook schedule: %w", err)
	}
	return nil
}

// forwardOrder is the order of a forward pass's pieces: embeddings, blocks, head.
func (m *Model) forwardOrder() []int {
	order := make([]int, 0, m.net.numBlocks()+2)
	for i := -1; i <= m.net.numBlocks(); i++ {
		order = append(order, i)
	}
	return order
}

// trainOrder is what a training pass's forward schedules: the embeddings and the
// blocks, not the head. The last block's forward ends with every block's activations
// kept for backward (the pass's largest memory); weights prepared ahead beside it
// would raise the step's peak, so the head's are prepared when it starts.
func (m *Model) trainOrder() []int {
	order := m.forwardOrder()
	return order[:len(order)-1]
}

func (m *Model) hookBefore(i int) error {
	if m.opt.hook == nil {
		return nil
	}
	if err := m.opt.hook.Before(i); err != nil {
		return fmt.Errorf("model: before the %s: %w", pieceName(i, m.net.numBlocks()), err)
	}
	return nil
}

func (m *Model) hookAfter(i int) error {
	if m.opt.hook == nil {
		return nil
	}
	if err := m.opt.hook.After(i); err != nil {
		return fmt.Errorf("model: after the %s: %w", pieceName(i, m.net.numBlocks()), err)
	}
	return nil
}

// pieceName names piece i of a pass for errors.
func pieceName(i, blocks int) string {
	switch {
	case i < 0:
		return "embeddings"
	case i >= blocks:
		return "head"
	}
	return fmt.Sprintf("block %d", i)
}
