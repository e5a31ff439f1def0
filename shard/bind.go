package shard

import (
	"fmt"
	"runtime"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// How a Gatherer takes a model's frozen weights: the model defers them while it loads
// (DeferWeight), Bind plans them across the shard group and loads this rank's shards,
// and the weights become views of gathered buffers while their block runs.

// DeferWeight implements model.WeightDeferrer: it takes every frozen weight of the
// model being loaded.
func (g *Gatherer) DeferWeight(name, checkpointName string, placeholder *ts.Tensor) bool {
	if g.bound {
		return false // a second model: it loads its own weights
	}
	shape, err := placeholder.Size()
	if err != nil {
		return false
	}
	spare, err := placeholder.Detach(false)
	if err != nil {
		return false
	}
	g.deferred = append(g.deferred, Tensor{Name: name, Shape: shape})
	g.ckNames[name] = checkpointName
	g.weights[name], g.spares[name] = placeholder, spare
	return true
}

// Bind plans the weights that m deferred to g across the shard group and loads this
// rank's shards from the checkpoint src (see LoadLocal). m must have been loaded with
// model.WithBlockHook(g).
func (g *Gatherer) Bind(m *model.Model, src safetensors.Reader) error {
	if g.bound {
		return fmt.Errorf("%w: Bind called twice", ErrState)
	}
	if len(g.deferred) == 0 {
		return fmt.Errorf("%w: the model deferred no weights: load it with model.WithBlockHook(g)", ErrState)
	}
	raw, ok := g.pg.(collective.RawAllGatherer)
	if !ok && g.pg.Size() > 1 {
		return fmt.Errorf("%w: a shard group (%T) without a raw all-gather", ErrUnsupported, g.pg)
	}
	plan, err := NewPlan(g.deferred, g.pg.Size(), Options{ElemSize: int(m.DType().Size())})
	if err != nil {
		return err
	}
	if plan.Blocks != m.NumBlocks() {
		return fmt.Errorf("%w: the plan has %d blocks, the model %d", ErrPlan, plan.Blocks, m.NumBlocks())
	}
	local, err := LoadLocal(src, plan, g.pg.Rank(), m.DType(), g.ckNames)
	if err != nil {
		return err
	}
	if err := local.moveTo(m.Device()); err != nil {
		local.Close()
		return err
	}
	if g.pg.Size() > 1 && m.Device() == gotch.CPU { // peer reads: CPU memory only
		if g.peers, g.peerWhy, err = openPeers(g.ctx, raw, g.pg, local); err != nil {
			local.Close()
			return err
		}
	}
	g.plan, g.local, g.bound, g.raw, g.dev = plan, local, true, raw, m.Device()
	g.held = make([]int, len(plan.Units))
	g.bufs = make([]*ts.Tensor, len(plan.Units))
	g.extra = map[int][]int{}
	cfg := m.Config()
	if cfg.TieWordEmbeddings && m.Architecture().Task == model.CausalLM {
		if u, ok := plan.Unit(Embeddings); ok {
			g.extra[plan.Blocks] = []int{u}
		}
	}
	g.stats.ShardBytes = plan.ShardBytes()
	return nil
}

// bindView points w at entry e's elements of the flat buffer full.
func bindView(w, full *ts.Tensor, e Entry) error {
	v, err := full.Narrow(0, e.Offset, e.Numel(), false)
	if err != nil {
		return err
	}
	defer v.Drop()
	vv, err := v.View(e.Shape, false)
	if err != nil {
		return err
	}
	defer vv.Drop()
	return setSource(w, vv)
}

// setSource makes dst use src's storage, offset, sizes and strides (libtorch's
// Tensor::set_): the tensor object, and every holder of it, stays the same. Called
// directly rather than through gotch's SetSourceTensor_, which would leak a handle.
func setSource(dst, src *ts.Tensor) error {
	// libtorch's error is thread-local in gotch's C layer: read it on the op's thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer runtime.KeepAlive(dst)
	defer runtime.KeepAlive(src)
	var out lib.Ctensor
	lib.AtgSetSourceTensor_(&out, lib.Ctensor(dst.Ctensor()), lib.Ctensor(src.Ctensor()))
	if err := ts.TorchErr(); err != nil {
		return err
	}
	lib.AtFree(out)
	return nil
}
