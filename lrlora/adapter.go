package lrlora

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/param"
)

// Adapter adapts one frozen linear layer y = x·W0ᵀ + bias (docs/method.md §1):
//
//	M     = B·A                  A: r×d_in, Kaiming-uniform (a = √5): U(−1/√d_in, 1/√d_in)
//	                             B: d_out×r, zeros
//	ΔW    = s·φ(M)               s = α/r (α defaults to 2r), or α/√r with rsLoRA
//	y     = x·(W0 + ΔW)ᵀ + bias
//
// φ depends on the method: LR-LoRA's learned transfer function
// φ(x) = Σ_k a_k f(b_k(x − g_k)), b_k = softplus(β_k), a = 0 and b = 1 at
// initialisation (the LR-LoRA paper); φ(x) = x for LoRA (Hu et al. 2021);
// φ(x) = sin(ω·x)/√d_in for SineLoRA (Ji et al. 2025). In every case ΔW = 0 at
// initialisation because B = 0 (and, for LR-LoRA, a = 0).
//
// W0 and bias belong to the model; the adapter owns A, B and its unshared φ tensors
// and frees them in Close. An Adapter is not safe for concurrent use.
type Adapter struct {
	name     string
	spec     adapter.Spec // resolved: α is set
	scaling  float64
	phiScale float64
	dIn      int64
	dOut     int64
	dtype    gotch.DType // dtype of the adapter parameters

	w0, bias *ts.Tensor // not owned
	a, b     *ts.Tensor // lora_A (r×d_in), lora_B (d_out×r)
	phi      phiTensors // LR-LoRA only

	training bool
	closed   bool
	// recompute: LR-LoRA's training forward is phiop.LeanLinear (SetRecomputeDelta).
	recompute bool
	// held: the merged weight formed once for an optimizer step (HoldDelta).
	held *heldDelta
}

// Option configures New.
type Option func(*options)

type options struct{ shared *SharedPhi }

// WithSharedPhi makes the adapter use the shared φ tensors of s (see Sharing).
func WithSharedPhi(s *SharedPhi) Option { return func(o *options) { o.shared = s } }

// New creates the adapter named name (the module path, e.g.
// "model.layers.0.self_attn.q_proj") for the frozen weight w0 (d_out×d_in) and
// optional bias (d_out, or nil), shaped by spec (its TargetModules are not consulted:
// the caller chose the layer). A is drawn from rng, so the same seed gives the same
// adapter. Parameters are float64 when w0 is, float32 otherwise, and live on w0's
// device. The adapter starts in training mode. An invalid spec is an error wrapping
// ErrConfig and adapter.ErrInvalid that names each bad key.
func New(name string, w0, bias *ts.Tensor, spec adapter.Spec, rng *rand.Rand, opts ...Option) (*Adapter, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("lrlora: new %q: %w: %w", name, ErrConfig, err)
	}
	spec = spec.Resolved()
	phiScale, err := spec.Phi.BasisScale()
	if err != nil {
		return nil, fmt.Errorf("lrlora: new %q: %w: %w", name, ErrConfig, err)
	}
	if rng == nil {
		return nil, fmt.Errorf("lrlora: new %q: %w: nil rng", name, ErrConfig)
	}
	shape, err := w0.Size()
	if err != nil {
		return nil, fmt.Errorf("lrlora: new %q: weight size: %w", name, err)
	}
	if len(shape) != 2 {
		return nil, fmt.Errorf("lrlora: new %q: %w: weight has shape %v, want d_out×d_in", name, ErrShape, shape)
	}
	if bias != nil {
		bs, err := bias.Size()
		if err != nil {
			return nil, fmt.Errorf("lrlora: new %q: bias size: %w", name, err)
		}
		if len(bs) != 1 || bs[0] != shape[0] {
			return nil, fmt.Errorf("lrlora: new %q: %w: bias %v for weight %v", name, ErrShape, bs, shape)
		}
	}
	dev, err := w0.Device()
	if err != nil {
		return nil, fmt.Errorf("lrlora: new %q: weight device: %w", name, err)
	}
	ad := &Adapter{
		name: name, spec: spec, scaling: spec.Scaling(), phiScale: phiScale, dOut: shape[0], dIn: shape[1],
		dtype: floatDTypeFor(w0.DType()), w0: w0, bias: bias, training: true,
	}
	r := int64(spec.R)
	// Kaiming-uniform with a = √5 (nn.Linear's and PEFT's init of lora_A):
	// bound = gain·√(3/fan_in), gain = √(2/(1+a²)) = 1/√3, so bound = 1/√fan_in.
	bound := 1 / math.Sqrt(float64(ad.dIn))
	av := make([]float64, r*ad.dIn)
	for i := range av {
		av[i] = (2*rng.Float64() - 1) * bound
	}
	if ad.a, err = newTensor(av, []int64{r, ad.dIn}, ad.dtype, dev, true); err != nil {
		return nil, fmt.Errorf("lrlora: new %q: lora_A: %w", name, err)
	}
	if ad.b, err = newTensor(make([]float64, ad.dOut*r), []int64{ad.dOut, r}, ad.dtype, dev, true); err != nil {
		ad.Close()
		return nil, fmt.Errorf("lrlora: new %q: lora_B: %w", name, err)
	}
	if spec.Method == adapter.LRLoRA {
		if ad.phi, err = newPhiTensors(spec.Phi, o.shared, ad.dtype, dev); err != nil {
			ad.Close()
			return nil, fmt.Errorf("lrlora: new %q: %w", name, err)
		}
	} else if o.shared != nil {
		ad.Close()
		return nil, fmt.Errorf("lrlora: new %q: %w: SharedPhi given for method %v", name, ErrConfig, spec.Method)
	}
	return ad, nil
}

// Name is the module path the adapter was created with; tensor names start with it.
func (ad *Adapter) Name() string { return ad.name }

// Spec returns the spec the adapter was made from, resolved (α is set).
func (ad *Adapter) Spec() adapter.Spec { return ad.spec }

// Scaling returns s (α/r, or α/√r with rsLoRA).
func (ad *Adapter) Scaling() float64 { return ad.scaling }

// Train switches between training mode (dropout active) and eval mode.
func (ad *Adapter) Train(on bool) { ad.training = on }

// Training reports whether the adapter is in training mode.
func (ad *Adapter) Training() bool { return ad.training }

// SetRecomputeDelta chooses how an LR-LoRA adapter's training forward keeps what its
// backward needs. Off (the default), autograd keeps M = B·A and W0 + ΔW, two
// d_out×d_in tensors per layer, from forward to backward. On, the layer is one
// phiop.LeanLinear node that keeps neither and recomputes both in backward: one B·A
// and one W0 + ΔW more per step, and a φ forward where φ's backward is tabulated
// (docs/method.md §4.2). Outputs are
// bit-identical; gradients equal up to the order of GEMM sums. Other methods, eval
// mode and dropout > 0 ignore it.
func (ad *Adapter) SetRecomputeDelta(on bool) { ad.recompute = on }

// RecomputeDelta reports SetRecomputeDelta's setting.
func (ad *Adapter) RecomputeDelta() bool { return ad.recompute }

// Weight returns the frozen W0 the adapter was created for (owned by the model).
func (ad *Adapter) Weight() *ts.Tensor { return ad.w0 }

// Bias returns the frozen bias, or nil.
func (ad *Adapter) Bias() *ts.Tensor { return ad.bias }

// Tensors lists the adapter's tensors in a fixed order with stable names:
// <name>.lora_A, <name>.lora_B and, for LR-LoRA, <name>.phi.amplitude,
// <name>.phi.bandwidth_raw (trained, a buffer under phi.fixed_bandwidth) and
// <name>.phi.grid (a buffer). Tensors held
// by a SharedPhi are left out (SharedPhi.Tensors lists them). Freezing, counting,
// optimizing and saving all derive from this one list.
func (ad *Adapter) Tensors() []param.Tensor {
	out := []param.Tensor{
		{Name: ad.name + ".lora_A", Tensor: ad.a, Trainable: true},
		{Name: ad.name + ".lora_B", Tensor: ad.b, Trainable: true},
	}
	if ad.spec.Method != adapter.LRLoRA {
		return out
	}
	if ad.phi.ownAmplitude {
		out = append(out, param.Tensor{Name: ad.name + ".phi.amplitude", Tensor: ad.phi.amplitude, Trainable: true})
	}
	if ad.phi.ownBandwidth {
		out = append(out, param.Tensor{Name: ad.name + ".phi.bandwidth_raw", Tensor: ad.phi.bandwidthRaw, Trainable: !ad.spec.FixedBandwidth})
	}
	if ad.phi.ownGrid {
		out = append(out, param.Tensor{Name: ad.name + ".phi.grid", Tensor: ad.phi.grid, Trainable: false})
	}
	return out
}

// TrainableParameters is the trainable subset of Tensors, in the same order, in the
// form the optimizer takes.
func (ad *Adapter) TrainableParameters() []ts.NamedTensor {
	return param.Trainable(ad.Tensors())
}

// NumParameters counts the elements of the trainable tensors: r·(d_in + d_out) + 2K
// for an unshared LR-LoRA adapter, r·(d_in + d_out) for LoRA and SineLoRA.
func (ad *Adapter) NumParameters() (int64, error) {
	n, err := param.Count(ad.Tensors())
	if err != nil {
		return 0, fmt.Errorf("lrlora: %w", err)
	}
	return n, nil
}

// Close frees A, B and the φ tensors the adapter owns (not W0, bias or shared φ).
func (ad *Adapter) Close() {
	if ad.closed {
		return
	}
	ad.ReleaseDelta()
	ad.closed = true
	if ad.a != nil {
		ad.a.Drop()
	}
	if ad.b != nil {
		ad.b.Drop()
	}
	ad.phi.drop()
	ad.a, ad.b = nil, nil
}
