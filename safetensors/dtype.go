package safetensors

// DType is a safetensors element type, spelled as in the file header ("F32", "BF16", ...).
type DType string

// The element types of the safetensors format.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U64  DType = "U64"
	U32  DType = "U32"
	U16  DType = "U16"
	U8   DType = "U8"
	BOOL DType = "BOOL"
	// The 8-bit float types are recognised (their bytes can be read and written) but not
	// converted: Float32s and friends report ErrUnsupportedDType for them.
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
)

var dtypeSizes = map[DType]int{
	F64: 8, F32: 4, F16: 2, BF16: 2,
	I64: 8, I32: 4, I16: 2, I8: 1,
	U64: 8, U32: 4, U16: 2, U8: 1,
	BOOL: 1, F8E4M3: 1, F8E5M2: 1,
}

// Size returns the size of one element in bytes, or 0 for an unknown type.
func (d DType) Size() int { return dtypeSizes[d] }

// Valid reports whether d is one of the element types this package knows.
func (d DType) Valid() bool { return dtypeSizes[d] != 0 }

// IsFloat reports whether d is a floating-point type that Float32s and Float64s convert.
func (d DType) IsFloat() bool { return d == F64 || d == F32 || d == F16 || d == BF16 }

// IsInteger reports whether d is an integer or boolean type that Int64s converts.
func (d DType) IsInteger() bool {
	switch d {
	case I64, I32, I16, I8, U64, U32, U16, U8, BOOL:
		return true
	}
	return false
}

// NumElements returns the product of shape, or ok=false when a dimension is negative or
// the product overflows int64.
func NumElements(shape []int64) (n int64, ok bool) {
	n = 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > (1<<62)/d {
			// Too large for any file; also keeps n*8 (bytes) from overflowing.
			return 0, false
		}
		n *= d
	}
	return n, true
}
