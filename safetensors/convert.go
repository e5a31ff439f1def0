package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

var le = binary.LittleEndian

// tensorOf fetches a tensor's info and bytes for a conversion, checking the dtype family.
func tensorOf(r Reader, name string, ok func(DType) bool, want string) (TensorInfo, []byte, error) {
	b, err := r.Bytes(name)
	if err != nil {
		return TensorInfo{}, nil, err
	}
	ti, _ := r.Info(name)
	if !ok(ti.DType) {
		return TensorInfo{}, nil, fmt.Errorf("%w: tensor %q is %s, want %s", ErrUnsupportedDType, name, ti.DType, want)
	}
	return ti, b, nil
}

func float32sOf(r Reader, name string) ([]float32, error) {
	ti, b, err := tensorOf(r, name, DType.IsFloat, "a float type (F64, F32, F16, BF16)")
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(b)/ti.DType.Size())
	switch ti.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToFloat32(le.Uint16(b[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = BF16ToFloat32(le.Uint16(b[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	}
	return out, nil
}

func float64sOf(r Reader, name string) ([]float64, error) {
	ti, b, err := tensorOf(r, name, DType.IsFloat, "a float type (F64, F32, F16, BF16)")
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(b)/ti.DType.Size())
	switch ti.DType {
	case F64:
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case F32:
		for i := range out {
			out[i] = float64(math.Float32frombits(le.Uint32(b[4*i:])))
		}
	case F16:
		for i := range out {
			out[i] = float64(F16ToFloat32(le.Uint16(b[2*i:])))
		}
	case BF16:
		for i := range out {
			out[i] = float64(BF16ToFloat32(le.Uint16(b[2*i:])))
		}
	}
	return out, nil
}

func int64sOf(r Reader, name string) ([]int64, error) {
	ti, b, err := tensorOf(r, name, DType.IsInteger, "an integer type or BOOL")
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(b)/ti.DType.Size())
	for i := range out {
		switch ti.DType {
		case I64:
			out[i] = int64(le.Uint64(b[8*i:]))
		case U64:
			u := le.Uint64(b[8*i:])
			if u > math.MaxInt64 {
				return nil, fmt.Errorf("safetensors: tensor %q: U64 element %d = %d overflows int64", name, i, u)
			}
			out[i] = int64(u)
		case I32:
			out[i] = int64(int32(le.Uint32(b[4*i:])))
		case U32:
			out[i] = int64(le.Uint32(b[4*i:]))
		case I16:
			out[i] = int64(int16(le.Uint16(b[2*i:])))
		case U16:
			out[i] = int64(le.Uint16(b[2*i:]))
		case I8:
			out[i] = int64(int8(b[i]))
		case U8, BOOL:
			out[i] = int64(b[i])
		}
	}
	return out, nil
}

// EncodeFloat32s encodes xs as little-endian bytes of dtype dt (F32, F16, BF16 or F64),
// ready for a Tensor's Data. F16 and BF16 round to nearest, ties to even.
func EncodeFloat32s(dt DType, xs []float32) ([]byte, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("%w: cannot encode float32 values as %s", ErrUnsupportedDType, dt)
	}
	b := make([]byte, len(xs)*dt.Size())
	for i, x := range xs {
		switch dt {
		case F32:
			le.PutUint32(b[4*i:], math.Float32bits(x))
		case F16:
			le.PutUint16(b[2*i:], Float32ToF16(x))
		case BF16:
			le.PutUint16(b[2*i:], Float32ToBF16(x))
		case F64:
			le.PutUint64(b[8*i:], math.Float64bits(float64(x)))
		}
	}
	return b, nil
}

// EncodeFloat64s encodes xs as F64 bytes, or as F32/F16/BF16 after rounding each value to
// float32 first (so F16/BF16 may round twice; use F64 or F32 when that matters).
func EncodeFloat64s(dt DType, xs []float64) ([]byte, error) {
	if dt == F64 {
		b := make([]byte, 8*len(xs))
		for i, x := range xs {
			le.PutUint64(b[8*i:], math.Float64bits(x))
		}
		return b, nil
	}
	f := make([]float32, len(xs))
	for i, x := range xs {
		f[i] = float32(x)
	}
	return EncodeFloat32s(dt, f)
}

// EncodeInt64s encodes xs as little-endian bytes of integer dtype dt (or BOOL, which takes
// 0 and 1). A value that does not fit in dt is an error naming its index.
func EncodeInt64s(dt DType, xs []int64) ([]byte, error) {
	if !dt.IsInteger() {
		return nil, fmt.Errorf("%w: cannot encode integers as %s", ErrUnsupportedDType, dt)
	}
	lo, hi := intRange(dt)
	b := make([]byte, len(xs)*dt.Size())
	for i, x := range xs {
		if x < lo || x > hi {
			return nil, fmt.Errorf("safetensors: element %d = %d does not fit in %s", i, x, dt)
		}
		switch dt.Size() {
		case 8:
			le.PutUint64(b[8*i:], uint64(x))
		case 4:
			le.PutUint32(b[4*i:], uint32(x))
		case 2:
			le.PutUint16(b[2*i:], uint16(x))
		case 1:
			b[i] = byte(x)
		}
	}
	return b, nil
}

func intRange(dt DType) (lo, hi int64) {
	switch dt {
	case I32:
		return math.MinInt32, math.MaxInt32
	case I16:
		return math.MinInt16, math.MaxInt16
	case I8:
		return math.MinInt8, math.MaxInt8
	case I64:
		return math.MinInt64, math.MaxInt64
	case U64:
		return 0, math.MaxInt64
	case U32:
		return 0, math.MaxUint32
	case U16:
		return 0, math.MaxUint16
	case U8:
		return 0, math.MaxUint8
	case BOOL:
		return 0, 1
	}
	return 0, -1
}
