package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/safetensors"
)

// TorchDType maps a safetensors float dtype to gotch's; ok is false for the dtypes that
// cannot hold weights here (integers, bool, 8-bit floats).
func TorchDType(dt safetensors.DType) (gotch.DType, bool) {
	switch dt {
	case safetensors.F32:
		return gotch.Float, true
	case safetensors.F16:
		return gotch.Half, true
	case safetensors.BF16:
		return gotch.BFloat16, true
	case safetensors.F64:
		return gotch.Double, true
	}
	return gotch.Invalid, false
}

// tensorFromBytes makes a CPU tensor of the given shape and dtype from little-endian
// bytes (a zero-copy view into a memory-mapped safetensors file). libtorch copies the
// bytes once into the tensor's own storage; nothing else is copied.
func tensorFromBytes(data []byte, shape []int64, dt gotch.DType) (*ts.Tensor, error) {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	if want := n * int64(dt.Size()); want != int64(len(data)) {
		return nil, fmt.Errorf("%d bytes for shape %v of %v, want %d", len(data), shape, dt, want)
	}
	if len(shape) == 0 || n == 0 {
		// Nothing to copy (or a scalar, which at_tensor_of_data's dims pointer cannot take).
		t, err := ts.Zeros(shape, dt, gotch.CPU)
		if err != nil || n == 0 {
			return t, err
		}
		flat, err := tensorFromBytes(data, []int64{1}, dt)
		if err != nil {
			t.Drop()
			return nil, err
		}
		defer flat.Drop()
		out, err := flat.Reshape(shape, false)
		t.Drop()
		return out, err
	}
	dims := append([]int64(nil), shape...)
	// libtorch's error is thread-local in gotch's C layer: read it on the op's thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := lib.AtTensorOfData(unsafe.Pointer(&data[0]), dims, uint(len(dims)), dt.Size(), int(dt.CKind()))
	if err := ts.TorchErr(); err != nil {
		return nil, err
	}
	return ts.New(c), nil
}

// Int64Tensor makes a CPU int64 tensor of the given shape from vals (input ids,
// attention masks, labels).
func Int64Tensor(vals []int64, shape ...int64) (*ts.Tensor, error) {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	if n != int64(len(vals)) {
		return nil, fmt.Errorf("%w: %d values for shape %v", ErrInput, len(vals), shape)
	}
	if n == 0 {
		return ts.Zeros(shape, gotch.Int64, gotch.CPU)
	}
	return tensorFromBytes(unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 8*len(vals)), shape, gotch.Int64)
}

// Float32Tensor makes a CPU float32 tensor of the given shape from vals.
func Float32Tensor(vals []float32, shape ...int64) (*ts.Tensor, error) {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	if n != int64(len(vals)) {
		return nil, fmt.Errorf("%w: %d values for shape %v", ErrInput, len(vals), shape)
	}
	if n == 0 {
		return ts.Zeros(shape, gotch.Float, gotch.CPU)
	}
	return tensorFromBytes(unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 4*len(vals)), shape, gotch.Float)
}

// initValues draws a tensor's initial values the way transformers' _init_weights does:
// normal(0, std) for weights and embeddings, zeros for biases, ones for norm weights.
func initValues(kind InitKind, n int64, std float64, rng *rand.Rand) []float32 {
	v := make([]float32, n)
	switch kind {
	case InitNormal:
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
	case InitOnes:
		for i := range v {
			v[i] = 1
		}
	}
	return v
}

// minValue is torch.finfo(dt).min, the additive mask value transformers uses.
func minValue(dt gotch.DType) float64 {
	switch dt {
	case gotch.BFloat16:
		return -3.3895313892515355e38
	case gotch.Half:
		return -65504
	case gotch.Double:
		return -math.MaxFloat64
	}
	return -math.MaxFloat32
}
