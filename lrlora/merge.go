package lrlora

import (
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// Merged returns a new tensor W0 + ΔW (no autograd), as export writes it. It fails
// with ErrNonFinite, naming the adapter, if any entry is NaN or Inf.
func (ad *Adapter) Merged() (*ts.Tensor, error) {
	var out *ts.Tensor
	err := tensorkit.NoGrad(func() error {
		dw, err := ad.DeltaWeight()
		if err != nil {
			return err
		}
		defer dw.Drop()
		out, err = Merge(ad.w0, dw, ad.name)
		return err
	})
	return out, err
}

// Merge is the pure merge of docs/method.md §7: it returns a new tensor W0 + ΔW in
// W0's dtype and leaves both inputs untouched. A result with NaN or Inf entries is
// refused with an error wrapping ErrNonFinite that names the adapter.
func Merge(w0, delta *ts.Tensor, name string) (*ts.Tensor, error) {
	ws, err := w0.Size()
	if err != nil {
		return nil, fmt.Errorf("lrlora: merge %q: %w", name, err)
	}
	ds, err := delta.Size()
	if err != nil {
		return nil, fmt.Errorf("lrlora: merge %q: %w", name, err)
	}
	if fmt.Sprint(ws) != fmt.Sprint(ds) {
		return nil, fmt.Errorf("lrlora: merge %q: %w: W0 %v, ΔW %v", name, ErrShape, ws, ds)
	}
	d := delta
	if delta.DType() != w0.DType() {
		if d, err = delta.Totype(w0.DType(), false); err != nil {
			return nil, fmt.Errorf("lrlora: merge %q: cast ΔW: %w", name, err)
		}
		defer d.Drop()
	}
	out, err := w0.Add(d, false)
	if err != nil {
		return nil, fmt.Errorf("lrlora: merge %q: W0 + ΔW: %w", name, err)
	}
	ok, err := allFinite(out)
	if err != nil {
		out.Drop()
		return nil, fmt.Errorf("lrlora: merge %q: finiteness check: %w", name, err)
	}
	if !ok {
		out.Drop()
		return nil, fmt.Errorf("lrlora: merge adapter %q: %w in W0 + ΔW", name, ErrNonFinite)
	}
	return out, nil
}
