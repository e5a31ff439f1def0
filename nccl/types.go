package nccl

import (
	"fmt"
	"strings"
)

// DataType is ncclDataType_t. The numeric values are NCCL's and are passed
// to the library unchanged.
type DataType int32

// ncclDataType_t values (NCCL 2.x; BFloat16 needs NCCL >= 2.10 built with
// CUDA >= 11).
const (
	Int8     DataType = 0
	Uint8    DataType = 1
	Int32    DataType = 2
	Uint32   DataType = 3
	Int64    DataType = 4
	Uint64   DataType = 5
	Float16  DataType = 6
	Float32  DataType = 7
	Float64  DataType = 8
	BFloat16 DataType = 9
)

type dataTypeInfo struct {
	name string
	size int
}

var dataTypes = map[DataType]dataTypeInfo{
	Int8: {"int8", 1}, Uint8: {"uint8", 1},
	Int32: {"int32", 4}, Uint32: {"uint32", 4},
	Int64: {"int64", 8}, Uint64: {"uint64", 8},
	Float16: {"float16", 2}, Float32: {"float32", 4}, Float64: {"float64", 8},
	BFloat16: {"bfloat16", 2},
}

// Aliases accepted by ParseDataType, in PyTorch's and NCCL's spelling.
var dataTypeAliases = map[string]DataType{
	"char": Int8, "byte": Uint8, "int": Int32, "long": Int64,
	"half": Float16, "fp16": Float16, "float": Float32, "fp32": Float32,
	"double": Float64, "fp64": Float64, "bf16": BFloat16,
}

// Valid reports whether d is one of the declared data types.
func (d DataType) Valid() bool { _, ok := dataTypes[d]; return ok }

// Size is the element size in bytes (0 for an invalid type).
func (d DataType) Size() int { return dataTypes[d].size }

// String returns the lower-case name ("float32", "bfloat16", ...).
func (d DataType) String() string {
	if info, ok := dataTypes[d]; ok {
		return info.name
	}
	return fmt.Sprintf("DataType(%d)", int32(d))
}

// ParseDataType maps a name such as "float32", "bf16", "half" or "long"
// (case-insensitive, optional "torch." prefix) to a DataType.
func ParseDataType(name string) (DataType, error) {
	n := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(name)), "torch.")
	for d, info := range dataTypes {
		if info.name == n {
			return d, nil
		}
	}
	if d, ok := dataTypeAliases[n]; ok {
		return d, nil
	}
	return 0, fmt.Errorf("nccl: unknown data type %q: %w", name, InvalidArgument)
}

// Scalar lists the Go element types that have an NCCL data type. float16
// and bfloat16 have no Go type; use Float16/BFloat16 with raw buffers.
type Scalar interface {
	int8 | uint8 | int32 | uint32 | int64 | uint64 | float32 | float64
}

// DataTypeOf returns the NCCL data type of the Go element type T.
func DataTypeOf[T Scalar]() DataType {
	var zero T
	switch any(zero).(type) {
	case int8:
		return Int8
	case uint8:
		return Uint8
	case int32:
		return Int32
	case uint32:
		return Uint32
	case int64:
		return Int64
	case uint64:
		return Uint64
	case float32:
		return Float32
	default: // float64: the constraint admits nothing else
		return Float64
	}
}

// RedOp is ncclRedOp_t.
type RedOp int32

// ncclRedOp_t values (Avg needs NCCL >= 2.10).
const (
	Sum  RedOp = 0
	Prod RedOp = 1
	Max  RedOp = 2
	Min  RedOp = 3
	Avg  RedOp = 4
)

var redOpNames = map[RedOp]string{Sum: "sum", Prod: "prod", Max: "max", Min: "min", Avg: "avg"}

// Valid reports whether op is one of the declared reduction ops.
func (op RedOp) Valid() bool { _, ok := redOpNames[op]; return ok }

// String returns "sum", "prod", "max", "min" or "avg".
func (op RedOp) String() string {
	if s, ok := redOpNames[op]; ok {
		return s
	}
	return fmt.Sprintf("RedOp(%d)", int32(op))
}

// ParseRedOp maps "sum", "prod", "max", "min", "avg" (or "mean",
// case-insensitive) to a RedOp.
func ParseRedOp(name string) (RedOp, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "mean" {
		return Avg, nil
	}
	for op, s := range redOpNames {
		if s == n {
			return op, nil
		}
	}
	return 0, fmt.Errorf("nccl: unknown reduction op %q: %w", name, InvalidArgument)
}
