package nccl

import (
	"errors"
	"testing"
)

// The numeric values cross into the library unchanged, so they are pinned
// here against ncclDataType_t and ncclRedOp_t as NCCL 2.x defines them.
func TestDataTypesMatchNCCLEnumAndSizes(t *testing.T) {
	cases := []struct {
		d    DataType
		code int32
		name string
		size int
	}{
		{Int8, 0, "int8", 1}, {Uint8, 1, "uint8", 1},
		{Int32, 2, "int32", 4}, {Uint32, 3, "uint32", 4},
		{Int64, 4, "int64", 8}, {Uint64, 5, "uint64", 8},
		{Float16, 6, "float16", 2}, {Float32, 7, "float32", 4},
		{Float64, 8, "float64", 8}, {BFloat16, 9, "bfloat16", 2},
	}
	for _, c := range cases {
		if int32(c.d) != c.code || c.d.String() != c.name || c.d.Size() != c.size || !c.d.Valid() {
			t.Errorf("%v: code %d size %d valid %v; want code %d name %s size %d",
				c.d, int32(c.d), c.d.Size(), c.d.Valid(), c.code, c.name, c.size)
		}
		got, err := ParseDataType(c.name)
		if err != nil || got != c.d {
			t.Errorf("ParseDataType(%q) = %v, %v", c.name, got, err)
		}
	}
	if DataType(10).Valid() || DataType(-1).Valid() || DataType(10).Size() != 0 {
		t.Error("types outside the declared set must be invalid with size 0")
	}
}

func TestParseDataTypeAliases(t *testing.T) {
	for name, want := range map[string]DataType{
		"torch.float32": Float32, "float": Float32, "Half": Float16, "bf16": BFloat16,
		"torch.bfloat16": BFloat16, "double": Float64, "long": Int64, "int": Int32, " fp16 ": Float16,
	} {
		if got, err := ParseDataType(name); err != nil || got != want {
			t.Errorf("ParseDataType(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := ParseDataType("complex64"); !errors.Is(err, InvalidArgument) {
		t.Errorf("unknown type: err = %v, want InvalidArgument", err)
	}
}

func TestDataTypeOfGoTypes(t *testing.T) {
	check := func(got, want DataType) {
		t.Helper()
		if got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	check(DataTypeOf[int8](), Int8)
	check(DataTypeOf[uint8](), Uint8)
	check(DataTypeOf[int32](), Int32)
	check(DataTypeOf[uint32](), Uint32)
	check(DataTypeOf[int64](), Int64)
	check(DataTypeOf[uint64](), Uint64)
	check(DataTypeOf[float32](), Float32)
	check(DataTypeOf[float64](), Float64)
}

func TestRedOpsMatchNCCLEnum(t *testing.T) {
	cases := []struct {
		op   RedOp
		code int32
		name string
	}{{Sum, 0, "sum"}, {Prod, 1, "prod"}, {Max, 2, "max"}, {Min, 3, "min"}, {Avg, 4, "avg"}}
	for _, c := range cases {
		if int32(c.op) != c.code || c.op.String() != c.name || !c.op.Valid() {
			t.Errorf("%v: code %d, want %d %s", c.op, int32(c.op), c.code, c.name)
		}
		if got, err := ParseRedOp(c.name); err != nil || got != c.op {
			t.Errorf("ParseRedOp(%q) = %v, %v", c.name, got, err)
		}
	}
	if got, err := ParseRedOp("MEAN"); err != nil || got != Avg {
		t.Errorf("ParseRedOp(MEAN) = %v, %v; want avg", got, err)
	}
	if _, err := ParseRedOp("xor"); !errors.Is(err, InvalidArgument) {
		t.Errorf("unknown op: err = %v", err)
	}
	if RedOp(5).Valid() || RedOp(5).String() != "RedOp(5)" {
		t.Error("RedOp(5) must be invalid")
	}
}
