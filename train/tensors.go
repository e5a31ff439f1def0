package train

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/safetensors"
)

// hostTensor is a tensor's value on the host: its safetensors dtype, shape and
// little-endian bytes (the machines lrtrain runs on are little-endian).
type hostTensor struct {
	name  string
	dtype safetensors.DType
	shape []int64
	data  []byte
}

// stDType maps the dtypes checkpoints hold (float32 masters; float64 with a float64
// backbone) to safetensors.
func stDType(dt gotch.DType) (safetensors.DType, error) {
	switch dt {
	case gotch.Float:
		return safetensors.F32, nil
	case gotch.Double:
		return safetensors.F64, nil
	}
	return "", fmt.Errorf("dtype %v (checkpoints hold float32 or float64 tensors)", dt)
}

// readHost copies t (detached, contiguous, on the CPU) into Go memory.
func readHost(name string, t *ts.Tensor) (hostTensor, error) {
	h := hostTensor{name: name}
	var err error
	if h.dtype, err = stDType(t.DType()); err != nil {
		return h, fmt.Errorf("%s: %w", name, err)
	}
	if h.shape, err = t.Size(); err != nil {
		return h, fmt.Errorf("%s: %w", name, err)
	}
	if tensorkit.NumElements(h.shape) == 0 {
		return h, nil
	}
	// Typed slices keep the element alignment; the bytes are a view of them.
	switch h.dtype {
	case safetensors.F32:
		var vals []float32
		if vals, err = tensorkit.Float32s(t); err == nil {
			h.data = unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 4*len(vals))
		}
	case safetensors.F64:
		var vals []float64
		if vals, err = tensorkit.Float64s(t); err == nil {
			h.data = unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 8*len(vals))
		}
	}
	if err != nil {
		return h, fmt.Errorf("%s: read values: %w", name, err)
	}
	return h, nil
}

// firstNonFinite returns the index of the first NaN or ±Inf of a float tensor, or −1.
func (h hostTensor) firstNonFinite() int64 {
	switch h.dtype {
	case safetensors.F32:
		for i, v := range float32View(h.data) {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				return int64(i)
			}
		}
	case safetensors.F64:
		for i, v := range float64View(h.data) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return int64(i)
			}
		}
	}
	return -1
}

func (h hostTensor) safetensor() safetensors.Tensor {
	return safetensors.Tensor{Name: h.name, DType: h.dtype, Shape: h.shape, Data: h.data}
}

// writeInto copies src's bytes into dst in place, without autograd (dst may be a leaf
// that requires grad). Shape and dtype must match.
func writeInto(dst *ts.Tensor, src hostTensor) error {
	shape, err := dst.Size()
	if err != nil {
		return err
	}
	want, err := stDType(dst.DType())
	if err != nil {
		return err
	}
	if !slices.Equal(shape, src.shape) || want != src.dtype {
		return fmt.Errorf("%s: have %s%v, want %s%v", src.name, src.dtype, src.shape, want, shape)
	}
	tmp, err := ts.OfDataSize(src.data, src.shape, dst.DType())
	if err != nil {
		return fmt.Errorf("%s: %w", src.name, err)
	}
	defer tmp.Drop()
	return tensorkit.NoGrad(func() error {
		out, err := dst.CopyOut(dst, tmp, false, false)
		if err != nil {
			return fmt.Errorf("%s: copy: %w", src.name, err)
		}
		return out.Drop()
	})
}

// float32View and float64View reinterpret a host tensor's bytes.
func float32View(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

func float64View(b []byte) []float64 {
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/8)
}

// hostToTensor makes a CPU tensor holding a copy of h.
func hostToTensor(h hostTensor) (*ts.Tensor, error) {
	var dt gotch.DType
	switch h.dtype {
	case safetensors.F32:
		dt = gotch.Float
	case safetensors.F64:
		dt = gotch.Double
	default:
		return nil, fmt.Errorf("%s: dtype %s (want F32 or F64)", h.name, h.dtype)
	}
	t, err := ts.OfDataSize(h.data, h.shape, dt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.name, err)
	}
	return t, nil
}

// bytesOf views 64-bit words as bytes.
func bytesOf(words []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), 8*len(words))
}

// le64 reads a little-endian uint64.
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// readFile reads a whole file, naming it in the error.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
