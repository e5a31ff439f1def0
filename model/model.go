package model

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/safetensors"
)

// network is one architecture's computation, split into the pieces that activation
// checkpointing drives one at a time: embeddings, blocks, head.
type network interface {
	prepare(ctx *fwdCtx) error // per-pass tables (rotary cos/sin, masks)
	embedTokens(s *scope, ctx *fwdCtx) *ts.Tensor
	numBlocks() int
	block(s *scope, ctx *fwdCtx, i int, h *ts.Tensor) *ts.Tensor
	head(s *scope, ctx *fwdCtx, h *ts.Tensor) *ts.Tensor
	close()
}

// Inputs is one batch for Forward. Only InputIDs is required.
type Inputs struct {
	InputIDs      *ts.Tensor // B×T int64
	AttentionMask *ts.Tensor // B×T, 1 on tokens and 0 on padding; nil: no padding
	PositionIDs   *ts.Tensor // B×T int64 (decoders; packed sequences); nil: 0..T−1
	SegmentIDs    *ts.Tensor // B×T int64 packed-document ids (decoders); nil: one per row
	TokenTypeIDs  *ts.Tensor // B×T int64 (BERT); nil: zeros
	// Labels are a causal LM's B×T int64 labels, unshifted as CausalLMLoss takes them.
	// Only Begin reads them, and only with SetFusedLoss: the pass then computes the
	// loss in its head (Pass.LossSum) instead of the logits.
	Labels *ts.Tensor
}

// Model is a loaded Hugging Face model: a frozen backbone, optional LR-LoRA adapters on
// its linear layers and, for classifiers, a trainable head. It is not safe for
// concurrent use; autograd state is per OS thread, so train from one locked goroutine.
type Model struct {
	arch *Architecture
	cfg  *Config
	opt  options
	net  network

	weights  []param.Tensor    // every bound tensor, HF names, binding order
	created  []string          // head tensors drawn because the checkpoint lacked them
	linears  []*Linear         // adaptable layers, module order
	adapters []*lrlora.Adapter // injected, module order

	training      bool
	checkpointing bool
	regather      bool // SetRegather
	fused         struct {
		on    bool
		chunk int
	} // SetFusedLoss
	dropout struct {
		seeded bool
		seed   uint64
		passes uint64 // training passes so far: the next pass's dropout key
	}
	closed bool
}

// Option configures Load.
type Option func(*options)

type options struct {
	dtype     gotch.DType
	device    gotch.Device
	numLabels int
	seed      uint64
	eager     bool
	hook      BlockHook
}

// WithDType sets the compute dtype of the backbone: gotch.Float (the default),
// gotch.BFloat16, gotch.Half or gotch.Double. Adapters and heads keep float32 master
// weights (float64 with a float64 backbone).
func WithDType(dt gotch.DType) Option { return func(o *options) { o.dtype = dt } }

// WithDevice places the model on dev (default CPU).
func WithDevice(dev gotch.Device) Option { return func(o *options) { o.device = dev } }

// WithNumLabels overrides the config's number of labels (classifiers; 1 is regression).
// Head tensors of the checkpoint that do not fit the new number are drawn afresh, as
// transformers does with ignore_mismatched_sizes.
func WithNumLabels(n int) Option { return func(o *options) { o.numLabels = n } }

// WithSeed seeds the initialisation of classification heads the checkpoint lacks.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithEagerAttention disables libtorch's fused attention even where it exists.
func WithEagerAttention() Option { return func(o *options) { o.eager = true } }

func buildOptions(opts []Option) (options, error) {
	o := options{dtype: gotch.Float, device: gotch.CPU}
	for _, f := range opts {
		f(&o)
	}
	switch o.dtype {
	case gotch.Float, gotch.BFloat16, gotch.Half, gotch.Double:
	default:
		return o, fmt.Errorf("%w: compute dtype %v (want float32, bfloat16, float16 or float64)", ErrConfig, o.dtype)
	}
	if o.numLabels < 0 {
		return o, fmt.Errorf("%w: num_labels %d", ErrConfig, o.numLabels)
	}
	return o, nil
}

// Load reads a Hugging Face model directory: config.json and model.safetensors or a
// sharded model.safetensors.index.json. Weights on disk may be F32, BF16, F16 or F64;
// they are converted to the compute dtype (WithDType). Errors name the file and, where
// one is at fault, the tensor: missing or unexpected tensors, wrong shapes, unsupported
// dtypes, corrupt files.
func Load(dir string, opts ...Option) (*Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	src, err := safetensors.OpenIndex(dir)
	if err != nil {
		return nil, fmt.Errorf("model: load %s: %w", dir, err)
	}
	// The model holds converted copies of every tensor, so the mapping can go.
	defer src.Close()
	return New(cfg, src, opts...)
}

// New builds the model cfg describes from the tensors of src (any safetensors reader).
func New(cfg *Config, src safetensors.Reader, opts ...Option) (*Model, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if len(cfg.Architectures) == 0 {
		return nil, fmt.Errorf("%w: config has no architectures", ErrConfig)
	}
	arch, err := LookupArchitecture(cfg.Architectures[0])
	if err != nil {
		return nil, err
	}
	c := *cfg
	resize := o.numLabels > 0 && o.numLabels != c.NumLabels
	if resize {
		c.NumLabels, c.ID2Label, c.ProblemType = o.numLabels, nil, ""
	}
	b := &binder{cfg: &c, src: src, dtype: o.dtype, device: o.device, used: map[string]bool{},
		rng: rand.New(rand.NewPCG(o.seed, 0x6d6f64656c)), resizeHeads: resize}
	b.deferrer, _ = o.hook.(WeightDeferrer)
	net, err := arch.build(&c, b)
	if err == nil {
		err = b.finish(arch.Name)
	} else {
		for _, w := range b.weights {
			w.Tensor.Drop()
		}
	}
	if err != nil {
		if net != nil {
			net.close()
		}
		return nil, err
	}
	return &Model{arch: arch, cfg: &c, opt: o, net: net, weights: b.weights, linears: b.linears, created: b.created}, nil
}

// Layout returns the tensors, with shapes and initialisation, of the checkpoint that
// cfg describes, in binding order (init-model writes them).
func Layout(cfg *Config) ([]TensorSpec, error) {
	if len(cfg.Architectures) == 0 {
		return nil, fmt.Errorf("%w: config has no architectures", ErrConfig)
	}
	arch, err := LookupArchitecture(cfg.Architectures[0])
	if err != nil {
		return nil, err
	}
	b := &binder{cfg: cfg}
	if _, err := arch.build(cfg, b); err != nil {
		return nil, err
	}
	return b.specs, nil
}

// Config returns the model's configuration (after options such as WithNumLabels).
func (m *Model) Config() *Config { return m.cfg }

// Architecture returns the registry entry the model was built from.
func (m *Model) Architecture() *Architecture { return m.arch }

// DType is the compute dtype of the backbone.
func (m *Model) DType() gotch.DType { return m.opt.dtype }

// Device is where the model's tensors live.
func (m *Model) Device() gotch.Device { return m.opt.device }

// Train switches training mode (dropout) on or off for the backbone and every adapter.
func (m *Model) Train(on bool) {
	m.training = on
	for _, a := range m.adapters {
		a.Train(on)
	}
}

// SetDropoutSeed makes dropout reproducible: every training pass draws its masks from
// (seed, passes), counting passes from the given number, which a resumed run sets to
// the number of training passes (forward passes in training mode) done before. Without
// a seed, dropout uses libtorch's generator, except in checkpointed passes.
func (m *Model) SetDropoutSeed(seed, passes uint64) {
	m.dropout.seeded, m.dropout.seed, m.dropout.passes = true, seed, passes
}

// DropoutPasses is the number of training passes so far (see SetDropoutSeed).
func (m *Model) DropoutPasses() uint64 { return m.dropout.passes }

// Training reports whether the model is in training mode.
func (m *Model) Training() bool { return m.training }

// Weights lists every tensor bound from the checkpoint (and created heads) under its
// Hugging Face name, in binding order; Trainable marks classification-head tensors.
// Tied weights appear once. The tensors belong to the model.
func (m *Model) Weights() []param.Tensor { return slices.Clone(m.weights) }

// NewlyInitialized names the head tensors that were drawn at load time because the
// checkpoint lacked them or they did not fit WithNumLabels (transformers warns about
// the same ones); they must be trained.
func (m *Model) NewlyInitialized() []string { return slices.Clone(m.created) }

// Linears lists the layers adapters can attach to, in module order; language-model
// heads and classification heads are not among them.
func (m *Model) Linears() []*Linear { return slices.Clone(m.linears) }

// Close frees the model's tensors and its adapters.
func (m *Model) Close() {
	if m.closed {
		return
	}
	m.closed = true
	for _, a := range m.adapters {
		a.Close()
	}
	for _, w := range m.weights {
		w.Tensor.Drop()
	}
	m.net.close()
	m.adapters, m.weights, m.linears = nil, nil, nil
}
