package adapterio

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Loaded is an adapter attached to a model by Dir.Attach.
type Loaded struct {
	// Tensors is the trainable list (the model's, then a shared φ's), as loaded.
	Tensors []param.Tensor
	shared  *lrlora.SharedPhi
}

// Close frees a shared φ, if any; call it after closing the model.
func (l *Loaded) Close() {
	if l.shared != nil {
		l.shared.Close()
		l.shared = nil
	}
}

// Attach injects d's adapters into m (which must have none) and loads every tensor of
// the file into them: the injected modules must be exactly d.Modules, and the file
// must hold exactly the model's trainable list (adapters, φ, heads), shape for shape.
// On an error m may hold partly loaded adapters: close it.
func (d *Dir) Attach(m *model.Model) (*Loaded, error) {
	if n := len(m.Adapters()); n > 0 {
		return nil, fmt.Errorf("adapterio: attach %s: the model already has %d adapters", d.Path, n)
	}
	spec := d.Spec
	l := &Loaded{}
	var opts []lrlora.Option
	if spec.Method == adapter.LRLoRA && spec.Share != adapter.ShareNone {
		dt := gotch.Float
		if m.DType() == gotch.Double {
			dt = gotch.Double
		}
		var err error
		if l.shared, err = lrlora.NewSharedPhi(spec.Phi, dt, m.Device()); err != nil {
			return nil, fmt.Errorf("adapterio: %w", err)
		}
		opts = append(opts, lrlora.WithSharedPhi(l.shared))
	}
	// The initial values are all overwritten; the seed only has to be fixed.
	ads, err := m.Inject(spec, rand.New(rand.NewPCG(0, 0)), opts...)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrMismatch, d.Path, err)
	}
	var got []string
	for _, ad := range ads {
		got = append(got, ad.Name())
	}
	if missing, extra := diff(d.Modules, got); len(missing)+len(extra) > 0 {
		l.Close()
		return nil, fmt.Errorf("%w: %s: target_modules %q selects %d modules of the model, the tensors adapt %d (not in the model: %s; not in the file: %s)",
			ErrMismatch, d.Path, spec.TargetModules.String(), len(got), len(d.Modules), list(missing), list(extra))
	}
	l.Tensors = m.TrainableTensors()
	if l.shared != nil {
		l.Tensors = append(l.Tensors, l.shared.Tensors()...)
	}
	if err := d.LoadInto(l.Tensors); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// LoadInto copies the file's tensors into params, an lrtrain trainable list whose
// adapters have d's settings: each params name maps to its file name (FileName); a
// tensor missing on either side, or of another shape, is an error wrapping
// ErrMismatch naming it. Values are converted from the file's dtype (float32,
// bfloat16, float16 or float64) to each parameter's.
func (d *Dir) LoadInto(params []param.Tensor) error {
	used := map[string]bool{}
	var missing []string
	for _, p := range params {
		name := FileName(p.Name)
		if _, ok := d.file.Info(name); !ok {
			missing = append(missing, name)
			continue
		}
		used[name] = true
	}
	var extra []string
	for _, name := range d.file.Names() {
		if !used[name] {
			extra = append(extra, name)
		}
	}
	if len(missing)+len(extra) > 0 {
		return fmt.Errorf("%w: %s: the model's adapters need %s, which the file lacks; the file has %s, which the model does not",
			ErrMismatch, d.file.Path(), list(missing), list(extra))
	}
	for _, p := range params {
		if err := d.copyInto(p.Tensor, FileName(p.Name)); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMismatch, d.file.Path(), err)
		}
	}
	return nil
}

// copyInto writes the file tensor name into dst, converting its dtype.
func (d *Dir) copyInto(dst *ts.Tensor, name string) error {
	shape, err := dst.Size()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	info, _ := d.file.Info(name)
	if !slices.Equal(shape, info.Shape) {
		return fmt.Errorf("%s: the file has %s%v, the model %v", name, info.DType, info.Shape, shape)
	}
	var data []byte
	switch dt := dst.DType(); dt {
	case gotch.Double:
		vals, err := d.file.Float64s(name)
		if err == nil {
			data, err = safetensors.EncodeFloat64s(safetensors.F64, vals)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	case gotch.Float:
		vals, err := d.file.Float32s(name)
		if err == nil {
			data, err = safetensors.EncodeFloat32s(safetensors.F32, vals)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	default:
		return fmt.Errorf("%s: the model's tensor is %v; adapters are float32 or float64", name, dt)
	}
	src, err := ts.OfDataSize(data, shape, dst.DType())
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer src.Drop()
	dev, err := dst.Device()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if dev != gotch.CPU {
		moved, err := src.ToDevice(dev, dst.DType(), false, false, false)
		if err != nil {
			return fmt.Errorf("%s: to %v: %w", name, dev, err)
		}
		defer moved.Drop()
		src = moved
	}
	return tensorkit.NoGrad(func() error {
		out, err := dst.CopyOut(dst, src, false, false)
		if err != nil {
			return fmt.Errorf("%s: copy: %w", name, err)
		}
		return out.Drop()
	})
}

func diff(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}

// list names at most five items.
func list(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	if len(xs) > 5 {
		return strings.Join(xs[:5], ", ") + fmt.Sprintf(" and %d more", len(xs)-5)
	}
	return strings.Join(xs, ", ")
}
