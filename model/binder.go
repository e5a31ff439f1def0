package model

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/safetensors"
)

// InitKind says how a tensor is initialised when it is created rather than loaded
// (init-model, and classification heads a pretrained checkpoint lacks), following
// transformers' _init_weights.
type InitKind int

const (
	InitNormal InitKind = iota // normal(0, initializer_range): linear weights, embeddings
	InitZeros                  // biases
	InitOnes                   // norm weights
)

// TensorSpec is one tensor of an architecture's checkpoint layout.
type TensorSpec struct {
	Name  string
	Shape []int64
	Init  InitKind
	// Head marks classification-head tensors: trained with the adapters, and created
	// (InitKind) when a pretrained backbone checkpoint does not have them.
	Head bool
}

// binder binds the tensors a network needs, by their Hugging Face names, to tensors
// loaded from a checkpoint. With a nil source it only records the layout (Layout).
// Problems are collected and reported together by finish, so that one error lists every
// missing tensor.
type binder struct {
	cfg    *Config
	src    safetensors.Reader // nil: record the layout only
	dtype  gotch.DType
	device gotch.Device
	rng    *rand.Rand // draws heads the checkpoint lacks
	// resizeHeads re-creates head tensors whose checkpoint shape differs (the caller
	// asked for another number of labels: transformers' ignore_mismatched_sizes).
	resizeHeads bool
	// deferrer, when set, is offered every frozen tensor (WithBlockHook).
	deferrer WeightDeferrer

	specs   []TensorSpec
	weights []param.Tensor  // bound tensors in binding order
	linears []*Linear       // adaptable linear layers in module order
	used    map[string]bool // checkpoint names consumed
	missing []string
	created []string // heads created because the checkpoint lacks them
	errs    []error

	// ignore reports checkpoint tensors the architecture tolerates without using them
	// (transformers' _keys_to_ignore_on_load_unexpected, tied lm_head copies, …).
	ignore func(name string) bool
	// alternates lists other spellings of a wanted name (LayerNorm gamma/beta, a
	// checkpoint saved without the base-model prefix).
	alternates func(name string) []string
}

func (b *binder) recording() bool { return b.src == nil }

// where names the file holding a checkpoint tensor, for errors.
func (b *binder) where(name string) string {
	switch r := b.src.(type) {
	case *safetensors.Index:
		if shard, ok := r.Shard(name); ok {
			return filepath.Join(r.Dir(), shard)
		}
		return r.Dir()
	case *safetensors.File:
		return r.Path()
	}
	return "checkpoint"
}

// weight binds a frozen tensor.
func (b *binder) weight(name string, shape []int64, init InitKind) *ts.Tensor {
	return b.bind(TensorSpec{Name: name, Shape: shape, Init: init})
}

// head binds a trainable classification-head tensor, created with init when the
// checkpoint does not have it.
func (b *binder) head(name string, shape []int64, init InitKind) *ts.Tensor {
	return b.bind(TensorSpec{Name: name, Shape: shape, Init: init, Head: true})
}

// linear binds module.weight (dOut×dIn) and, with bias, module.bias, and registers the
// layer as adaptable.
func (b *binder) linear(module string, dOut, dIn int, bias bool) *Linear {
	l := &Linear{Name: module, DOut: dOut, DIn: dIn}
	l.Weight = b.weight(module+".weight", []int64{int64(dOut), int64(dIn)}, InitNormal)
	if bias {
		l.Bias = b.weight(module+".bias", []int64{int64(dOut)}, InitZeros)
	}
	b.linears = append(b.linears, l)
	return l
}

// outputLinear binds a frozen output layer (a language-model head) that is never adapted.
func (b *binder) outputLinear(module string, dOut, dIn int) *Linear {
	l := &Linear{Name: module, DOut: dOut, DIn: dIn, head: true}
	l.Weight = b.weight(module+".weight", []int64{int64(dOut), int64(dIn)}, InitNormal)
	return l
}

// headLinear binds a trainable head layer (never adapted).
func (b *binder) headLinear(module string, dOut, dIn int) *Linear {
	l := &Linear{Name: module, DOut: dOut, DIn: dIn, head: true}
	l.Weight = b.head(module+".weight", []int64{int64(dOut), int64(dIn)}, InitNormal)
	l.Bias = b.head(module+".bias", []int64{int64(dOut)}, InitZeros)
	return l
}

func (b *binder) bind(spec TensorSpec) *ts.Tensor {
	b.specs = append(b.specs, spec)
	if b.recording() {
		return nil
	}
	t, err := b.load(spec)
	if err != nil {
		b.errs = append(b.errs, err)
		return nil
	}
	if t == nil {
		return nil // missing; reported by finish
	}
	b.weights = append(b.weights, param.Tensor{Name: spec.Name, Tensor: t, Trainable: spec.Head})
	return t
}

// lookup finds the checkpoint name for a wanted tensor name.
func (b *binder) lookup(name string) (string, safetensors.TensorInfo, bool) {
	if info, ok := b.src.Info(name); ok {
		return name, info, true
	}
	if b.alternates != nil {
		for _, alt := range b.alternates(name) {
			if info, ok := b.src.Info(alt); ok {
				return alt, info, true
			}
		}
	}
	return "", safetensors.TensorInfo{}, false
}

// load reads one tensor, converts it to the compute dtype and device and, for heads,
// makes it a leaf that requires grad. A missing tensor returns (nil, nil) and is
// recorded; a missing head is created.
func (b *binder) load(spec TensorSpec) (*ts.Tensor, error) {
	ckName, info, ok := b.lookup(spec.Name)
	if !ok {
		if spec.Head {
			b.created = append(b.created, spec.Name)
			return b.create(spec)
		}
		b.missing = append(b.missing, spec.Name)
		return nil, nil
	}
	b.used[ckName] = true
	where := b.where(ckName)
	if spec.Head && b.resizeHeads && !slices.Equal(info.Shape, spec.Shape) {
		b.created = append(b.created, spec.Name)
		return b.create(spec)
	}
	if !slices.Equal(info.Shape, spec.Shape) {
		return nil, fmt.Errorf("%w: %s: tensor %q has shape %v, but the config implies %v",
			ErrShape, where, ckName, info.Shape, spec.Shape)
	}
	dt, ok := TorchDType(info.DType)
	if !ok {
		return nil, fmt.Errorf("%w: %s: tensor %q is %s (want F32, F16, BF16 or F64)", ErrDType, where, ckName, info.DType)
	}
	if !spec.Head && b.deferrer != nil {
		ph, err := placeholder(spec.Shape, b.dtype, b.device)
		if err != nil {
			return nil, fmt.Errorf("model: %s: placeholder for tensor %q: %w", where, ckName, err)
		}
		if b.deferrer.DeferWeight(spec.Name, ckName, ph) {
			return ph, nil
		}
		ph.Drop()
	}
	raw, err := b.src.Bytes(ckName)
	if err != nil {
		return nil, fmt.Errorf("model: %s: read tensor %q: %w", where, ckName, err)
	}
	t, err := tensorFromBytes(raw, info.Shape, dt)
	if err != nil {
		return nil, fmt.Errorf("model: %s: tensor %q: %w", where, ckName, err)
	}
	// The tensor is a copy: its mapped pages need not stay resident beside it until the
	// file is closed. Advisory: if the kernel refuses, they stay mapped until Close.
	_ = b.src.Release(ckName)
	if t, err = b.place(t, spec.Head); err != nil {
		return nil, fmt.Errorf("model: %s: tensor %q: %w", where, ckName, err)
	}
	return t, nil
}

// create draws a tensor that the checkpoint does not hold.
func (b *binder) create(spec TensorSpec) (*ts.Tensor, error) {
	n := int64(1)
	for _, d := range spec.Shape {
		n *= d
	}
	t, err := Float32Tensor(initValues(spec.Init, n, b.cfg.InitializerRange, b.rng), spec.Shape...)
	if err != nil {
		return nil, fmt.Errorf("model: create %q: %w", spec.Name, err)
	}
	if t, err = b.place(t, spec.Head); err != nil {
		return nil, fmt.Errorf("model: create %q: %w", spec.Name, err)
	}
	return t, nil
}

// place converts t (owned) to the compute dtype — float32 for trainable heads, whose
// master weights stay in full precision — and device.
func (b *binder) place(t *ts.Tensor, trainable bool) (*ts.Tensor, error) {
	dt := b.dtype
	if trainable && dt != gotch.Double {
		dt = gotch.Float
	}
	var err error
	if t.DType() != dt {
		if t, err = t.Totype(dt, true); err != nil {
			return nil, fmt.Errorf("cast to %v: %w", dt, err)
		}
	}
	if b.device.IsCuda() {
		if t, err = t.To(b.device, true); err != nil {
			return nil, fmt.Errorf("move to %v: %w", b.device, err)
		}
	}
	if trainable {
		if t, err = t.SetRequiresGrad(true, true); err != nil {
			return nil, fmt.Errorf("requires grad: %w", err)
		}
	}
	return t, nil
}

// finish reports, in this order, missing tensors, shape or dtype problems and
// checkpoint tensors nothing used. On error it frees what was loaded.
func (b *binder) finish(archName string) error {
	if b.recording() {
		return nil
	}
	err := b.problems(archName)
	if err != nil {
		for _, w := range b.weights {
			w.Tensor.Drop()
		}
		b.weights = nil
	}
	return err
}

func (b *binder) problems(archName string) error {
	if len(b.missing) > 0 {
		return fmt.Errorf("%w: %s lacks %d tensor(s) that %s needs: %s",
			ErrMissingTensor, b.srcName(), len(b.missing), archName, listNames(b.missing))
	}
	if len(b.errs) > 0 {
		if len(b.errs) == 1 {
			return b.errs[0]
		}
		return fmt.Errorf("%w (and %d more problems)", b.errs[0], len(b.errs)-1)
	}
	var extra []string
	for _, n := range b.src.Names() {
		if !b.used[n] && (b.ignore == nil || !b.ignore(n)) {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("%w: %s has %d tensor(s) that %s does not use: %s",
			ErrUnexpectedTensor, b.srcName(), len(extra), archName, listNames(extra))
	}
	return nil
}

// srcName names the checkpoint: its one file, or the index of a sharded one.
func (b *binder) srcName() string {
	switch r := b.src.(type) {
	case *safetensors.Index:
		if shards := r.Shards(); len(shards) == 1 {
			return filepath.Join(r.Dir(), shards[0])
		}
		return filepath.Join(r.Dir(), safetensors.IndexFileName)
	case *safetensors.File:
		return r.Path()
	}
	return "checkpoint"
}

// listNames quotes up to five names and says how many more there are.
func listNames(names []string) string {
	const show = 5
	q := make([]string, 0, show)
	for i, n := range names {
		if i == show {
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	s := strings.Join(q, ", ")
	if len(names) > show {
		s += fmt.Sprintf(" and %d more", len(names)-show)
	}
	return s
}
