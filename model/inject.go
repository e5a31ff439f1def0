package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/param"
)

// Inject attaches an adapter made from spec to every adaptable linear layer that
// spec.TargetModules selects (PEFT's rule, adapter.Targets.Match; the language-model
// head and classification heads are never adapted, even under all-linear), in module
// order, drawing A from rng (so a seed fixes the adapters) and passing opts
// (lrlora.WithSharedPhi) to lrlora.New. It returns the new adapters in module order;
// Adapters lists all of them. A target list that selects nothing, or a layer that
// already has an adapter, is an error and leaves the model unchanged.
func (m *Model) Inject(spec adapter.Spec, rng *rand.Rand, opts ...lrlora.Option) ([]*lrlora.Adapter, error) {
	if m.closed {
		return nil, ErrClosed
	}
	t := spec.TargetModules
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTarget, err)
	}
	var chosen []*Linear
	for _, l := range m.linears {
		if !l.head && t.Match(l.Name) {
			if l.adapter != nil {
				return nil, fmt.Errorf("%w: %s already has an adapter", ErrTarget, l.Name)
			}
			chosen = append(chosen, l)
		}
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("%w: targets %q match no linear layer of %s (layers look like %q)",
			ErrTarget, t.String(), m.arch.Name, m.linears[0].Name)
	}
	var made []*lrlora.Adapter
	for _, l := range chosen {
		a, err := lrlora.New(l.Name, l.Weight, l.Bias, spec, rng, opts...)
		if err != nil {
			for _, x := range made {
				x.Close()
			}
			for _, x := range chosen {
				x.adapter = nil
			}
			return nil, fmt.Errorf("model: inject: %w", err)
		}
		a.Train(m.training)
		l.adapter = a
		made = append(made, a)
	}
	m.adapters = m.adapters[:0]
	for _, l := range m.linears {
		if l.adapter != nil {
			m.adapters = append(m.adapters, l.adapter)
		}
	}
	return made, nil
}

// SetRecomputeDelta sets lrlora.Adapter.SetRecomputeDelta on every injected adapter:
// on, LR-LoRA layers keep neither B·A nor W0 + ΔW from forward to backward and
// recompute them there.
func (m *Model) SetRecomputeDelta(on bool) {
	for _, a := range m.adapters {
		a.SetRecomputeDelta(on)
	}
}

// HoldDeltas makes every adapter that forms ΔW in training (lrlora.Adapter.Holds)
// form its merged weight once, for every pass until BackwardHeldDeltas or
// ReleaseDeltas: an optimizer step over several micro-batches then runs φ forward and
// backward once instead of once per micro-batch (lrlora.Adapter.HoldDelta). With a
// block hook (sharded weights) it holds nothing: W0 is not present outside its block,
// and holding a d_out×d_in tensor per layer for the step would undo what sharding
// saves. It returns the number of adapters holding; on error none holds.
func (m *Model) HoldDeltas() (int, error) {
	if m.closed {
		return 0, ErrClosed
	}
	held := m.HoldingAdapters()
	for _, a := range held {
		if err := a.HoldDelta(); err != nil {
			m.ReleaseDeltas()
			return 0, fmt.Errorf("model: %w", err)
		}
	}
	return len(held), nil
}

// HoldingAdapters returns the adapters HoldDeltas makes hold, in module order: those
// whose Holds is true, and none with a block hook or once closed. Data-parallel
// ranks that share the held weights (lrlora.Adapter.HoldDeltaInto and HoldReceived)
// hold these.
func (m *Model) HoldingAdapters() []*lrlora.Adapter {
	if m.closed || m.opt.hook != nil {
		return nil
	}
	var held []*lrlora.Adapter
	for _, a := range m.adapters {
		if a.Holds() {
			held = append(held, a)
		}
	}
	return held
}

// BackwardHeldDeltas back-propagates what the held weights (HoldDeltas) gathered over
// the passes into the adapters' parameters, in one backward call, and releases them
// (also on error).
func (m *Model) BackwardHeldDeltas() error {
	if err := lrlora.BackwardHeld(m.adapters); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return nil
}

// ReleaseDeltas drops every held weight without back-propagating it (a step that
// failed part-way).
func (m *Model) ReleaseDeltas() {
	for _, a := range m.adapters {
		a.ReleaseDelta()
	}
}

// Adapters returns every injected adapter, in module order.
func (m *Model) Adapters() []*lrlora.Adapter { return append([]*lrlora.Adapter(nil), m.adapters...) }

// HeadTensors lists the trainable classification-head tensors under their Hugging Face
// names (classifier.dense.weight, …), like PEFT's modules_to_save; nil for causal LMs.
func (m *Model) HeadTensors() []param.Tensor {
	var out []param.Tensor
	for _, w := range m.weights {
		if w.Trainable {
			out = append(out, w)
		}
	}
	return out
}

// TrainableTensors lists, in a fixed order, everything a checkpoint of the fine-tune
// holds: each adapter's Tensors (module order; φ grids are marked not trainable) and
// then the head tensors. Tensors of a SharedPhi passed to Inject are not included
// (SharedPhi.Tensors lists them). Optimising, counting and saving derive from it.
func (m *Model) TrainableTensors() []param.Tensor {
	var out []param.Tensor
	for _, a := range m.adapters {
		out = append(out, a.Tensors()...)
	}
	return append(out, m.HeadTensors()...)
}

// ParamCount summarises trainable and total parameters.
type ParamCount struct {
	Adapter int64 // trainable adapter elements: Σ r·(d_in + d_out) + 2K for LR-LoRA
	Head    int64 // classification head elements
	Frozen  int64 // backbone elements
}

// Trainable is Adapter + Head.
func (p ParamCount) Trainable() int64 { return p.Adapter + p.Head }

// All is every parameter: frozen and trainable.
func (p ParamCount) All() int64 { return p.Frozen + p.Trainable() }

// String reads like PEFT's print_trainable_parameters.
func (p ParamCount) String() string {
	pct := 0.0
	if p.All() > 0 {
		pct = 100 * float64(p.Trainable()) / float64(p.All())
	}
	return fmt.Sprintf("trainable params: %d (adapters %d, head %d) || all params: %d || trainable%%: %.4f",
		p.Trainable(), p.Adapter, p.Head, p.All(), pct)
}

// CountParameters counts the model's parameters.
func (m *Model) CountParameters() (ParamCount, error) {
	var p ParamCount
	for _, a := range m.adapters {
		n, err := a.NumParameters()
		if err != nil {
			return p, fmt.Errorf("model: count %s: %w", a.Name(), err)
		}
		p.Adapter += n
	}
	for _, w := range m.weights {
		shape, err := w.Tensor.Size()
		if err != nil {
			return p, fmt.Errorf("model: count %s: %w", w.Name, err)
		}
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		if w.Trainable {
			p.Head += n
		} else {
			p.Frozen += n
		}
	}
	return p, nil
}
