package export

import (
	"bytes"
	"fmt"
	"io"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/safetensors"
)

// encodeTensor converts t to a safetensors tensor of dtype dt, held in memory (the
// adapter export's small tensors): streamTensor's bytes.
func encodeTensor(name string, t *ts.Tensor, dt safetensors.DType) (safetensors.Tensor, error) {
	shape, err := t.Size()
	if err != nil {
		return safetensors.Tensor{}, fmt.Errorf("export: %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := streamTensor(&buf, name, t, dt); err != nil {
		return safetensors.Tensor{}, err
	}
	return safetensors.Tensor{Name: name, DType: dt, Shape: shape, Data: buf.Bytes()}, nil
}

// streamChunk is how many elements streamTensor reads out of a tensor at a time.
const streamChunk = 1 << 20

// streamTensor writes t's values to w in dtype dt, a chunk of streamChunk elements at
// a time: the host holds one chunk's values and bytes, not the tensor's (a 151936×896
// embedding table is 545 MB of float32). Float tensors go through float32, element by
// element (exact for float32, bfloat16 and float16 sources; float64 sources are
// rounded once to float32 and, for bf16/f16 outputs, once more — export dtypes are at
// most float32).
func streamTensor(w io.Writer, name string, t *ts.Tensor, dt safetensors.DType) error {
	return tensorkit.NoGrad(func() error {
		flat, err := t.Reshape([]int64{-1}, false)
		if err != nil {
			return fmt.Errorf("export: %s: %w", name, err)
		}
		defer flat.Drop()
		n := flat.Numel()
		for off := int64(0); off < int64(n); off += streamChunk {
			part, err := flat.Narrow(0, off, min(streamChunk, int64(n)-off), false)
			if err != nil {
				return fmt.Errorf("export: %s: %w", name, err)
			}
			vals, err := tensorkit.Float32s(part)
			part.Drop()
			if err != nil {
				return fmt.Errorf("export: %s: read values: %w", name, err)
			}
			data, err := safetensors.EncodeFloat32s(dt, vals)
			if err != nil {
				return fmt.Errorf("export: %s: %w", name, err)
			}
			if _, err := w.Write(data); err != nil {
				return err
			}
		}
		return nil
	})
}

// mergedWeight returns W0 + ΔW for one adapter, in float32 whatever the backbone's
// compute dtype (float64 stays float64): ΔW comes from Adapter.DeltaWeight, the
// sum and its finiteness check from lrlora.Merge, which names the adapter when the
// result has NaN or Inf entries.
func mergedWeight(ad *lrlora.Adapter) (*ts.Tensor, error) {
	var out *ts.Tensor
	err := tensorkit.NoGrad(func() error {
		dw, err := ad.DeltaWeight()
		if err != nil {
			return err
		}
		defer dw.Drop()
		w0 := ad.Weight()
		if dt := w0.DType(); dt != gotch.Float && dt != gotch.Double {
			if w0, err = w0.Totype(gotch.Float, false); err != nil {
				return fmt.Errorf("export: %s: upcast W0: %w", ad.Name(), err)
			}
			defer w0.Drop()
		}
		out, err = lrlora.Merge(w0, dw, ad.Name())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return out, nil
}
