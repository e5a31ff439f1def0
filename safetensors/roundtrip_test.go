package safetensors

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// sampleTensors returns one tensor of every dtype with known contents.
func sampleTensors(t *testing.T) []Tensor {
	t.Helper()
	mustF := func(dt DType, xs ...float32) []byte {
		b, err := EncodeFloat32s(dt, xs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mustI := func(dt DType, xs ...int64) []byte {
		b, err := EncodeInt64s(dt, xs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	f64, _ := EncodeFloat64s(F64, []float64{math.Pi, -1e-310, 1e300})
	return []Tensor{
		{"w.f64", F64, []int64{3}, f64, nil},
		{"w.f32", F32, []int64{2, 2}, mustF(F32, 1.5, -2, 0.1, float32(math.Inf(-1))), nil},
		{"w.f16", F16, []int64{1, 3}, mustF(F16, 1, -0.5, 0x1p-24), nil},
		{"w.bf16", BF16, []int64{3}, mustF(BF16, 1, -3, 1e38), nil},
		{"i.i64", I64, []int64{2}, mustI(I64, math.MinInt64, math.MaxInt64), nil},
		{"i.i32", I32, []int64{2}, mustI(I32, -5, math.MaxInt32), nil},
		{"i.i16", I16, []int64{2}, mustI(I16, -300, 300), nil},
		{"i.i8", I8, []int64{2}, mustI(I8, -128, 127), nil},
		{"u.u64", U64, []int64{1}, mustI(U64, math.MaxInt64), nil},
		{"u.u32", U32, []int64{1}, mustI(U32, math.MaxUint32), nil},
		{"u.u16", U16, []int64{1}, mustI(U16, 65535), nil},
		{"u.u8", U8, []int64{2}, mustI(U8, 0, 255), nil},
		{"b.bool", BOOL, []int64{3}, mustI(BOOL, 1, 0, 1), nil},
		{"f8.e4m3", F8E4M3, []int64{2}, []byte{0x38, 0xb8}, nil},
		{"f8.e5m2", F8E5M2, []int64{2}, []byte{0x3c, 0xbc}, nil},
		{"scalar", F32, []int64{}, mustF(F32, 7), nil},
		{"empty", F16, []int64{4, 0}, nil, nil},
	}
}

func TestWriteOpenRoundTripEveryDType(t *testing.T) {
	path := filepath.Join(t.TempDir(), "all.safetensors")
	in := sampleTensors(t)
	meta := map[string]string{"format": "pt", "note": `quotes " and <tags> & ünïcode`}
	if err := Write(path, in, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Len() != len(in) {
		t.Fatalf("Len() = %d, want %d", f.Len(), len(in))
	}
	for _, want := range in {
		ti, ok := f.Info(want.Name)
		if !ok || ti.DType != want.DType || !slices.Equal(ti.Shape, want.Shape) {
			t.Errorf("Info(%q) = %+v, %v; want %s %v", want.Name, ti, ok, want.DType, want.Shape)
		}
		got, err := f.Bytes(want.Name)
		if err != nil || !bytes.Equal(got, want.Data) {
			t.Errorf("Bytes(%q) = %x, %v; want %x", want.Name, got, err, want.Data)
		}
	}
	if got := f.Metadata(); !mapsEqual(got, meta) {
		t.Errorf("Metadata() = %v, want %v", got, meta)
	}
	checkF32 := func(name string, want ...float32) {
		t.Helper()
		if got, err := f.Float32s(name); err != nil || !sameBits32(got, want) {
			t.Errorf("Float32s(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	checkF32("w.f32", 1.5, -2, 0.1, float32(math.Inf(-1)))
	checkF32("w.f16", 1, -0.5, 0x1p-24)
	checkF32("w.bf16", 1, -3, BF16ToFloat32(Float32ToBF16(1e38)))
	checkF32("w.f64", float32(math.Pi), float32(math.Copysign(0, -1)), float32(math.Inf(1))) // -1e-310 underflows to -0, 1e300 overflows
	if got, _ := f.Float64s("w.f64"); !sameBits64(got, []float64{math.Pi, -1e-310, 1e300}) {
		t.Errorf("Float64s(w.f64) = %v", got)
	}
	for name, want := range map[string][]int64{
		"i.i64": {math.MinInt64, math.MaxInt64}, "i.i32": {-5, math.MaxInt32}, "i.i16": {-300, 300},
		"i.i8": {-128, 127}, "u.u64": {math.MaxInt64}, "u.u32": {math.MaxUint32}, "u.u16": {65535},
		"u.u8": {0, 255}, "b.bool": {1, 0, 1},
	} {
		if got, err := f.Int64s(name); err != nil || !slices.Equal(got, want) {
			t.Errorf("Int64s(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := f.Float32s("f8.e4m3"); !errors.Is(err, ErrUnsupportedDType) {
		t.Errorf("Float32s(F8_E4M3) error = %v, want ErrUnsupportedDType", err)
	}
	if _, err := f.Bytes("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), path) {
		t.Errorf("Bytes(missing) error = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bytes("scalar"); !errors.Is(err, ErrClosed) {
		t.Errorf("Bytes after Close: %v, want ErrClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWriteLayout(t *testing.T) {
	var buf bytes.Buffer
	err := Encode(&buf, []Tensor{
		{"b", U8, []int64{3}, []byte{1, 2, 3}, nil},
		{"a", I16, []int64{1}, []byte{9, 0}, nil},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	n := le.Uint64(b)
	hdr := string(b[8 : 8+n])
	wantJSON := `{"a":{"dtype":"I16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[3],"data_offsets":[2,5]}}`
	if n%8 != 0 || strings.TrimRight(hdr, " ") != wantJSON {
		t.Errorf("header (%d bytes) = %q, want %q padded to a multiple of 8", n, hdr, wantJSON)
	}
	if data := b[8+n:]; !bytes.Equal(data, []byte{9, 0, 1, 2, 3}) {
		t.Errorf("data = %v, want sorted-by-name tensors back to back", data)
	}
}

func TestWriteRejectsBadTensors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	cases := map[string][]Tensor{
		"duplicate":     {{"a", U8, []int64{1}, []byte{1}, nil}, {"a", U8, []int64{1}, []byte{2}, nil}},
		"size mismatch": {{"a", F32, []int64{2}, []byte{1, 2, 3}, nil}},
		"unknown dtype": {{"a", "F4", []int64{1}, []byte{1}, nil}},
		"negative dim":  {{"a", U8, []int64{-1}, nil, nil}},
		"reserved name": {{metadataKey, U8, []int64{1}, []byte{1}, nil}},
		"empty name":    {{"", U8, []int64{1}, []byte{1}, nil}},
	}
	for name, ts := range cases {
		if err := Write(path, ts, nil); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Write error = %v, want an error naming %s", name, err, path)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected Write left %s behind", path)
	}
}

// A failing disk leaves the old file as it was and no temporary file behind.
func TestWriteAtomicOnENOSPC(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	old := []Tensor{{"x", U8, []int64{1}, []byte{42}, nil}}
	if err := Write(path, old, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	err := writeAtomic(path, func(w io.Writer) error {
		w.Write(make([]byte, 100))
		return &os.PathError{Op: "write", Path: "disk", Err: syscall.ENOSPC}
	})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error = %v, want ENOSPC naming %s", err, path)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("failed write changed the existing file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want 1 (no temp file)", len(entries))
	}
	if err := Write(filepath.Join(dir, "no", "such", "dir.safetensors"), old, nil); err == nil || !strings.Contains(err.Error(), "dir.safetensors") {
		t.Errorf("Write into a missing directory: %v", err)
	}
}

func TestEncodeReportsWriterErrors(t *testing.T) {
	err := Encode(failingWriter{}, []Tensor{{"x", U8, []int64{1}, []byte{1}, nil}}, nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Encode error = %v, want ENOSPC", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

func TestEncodeIntRangeChecks(t *testing.T) {
	for dt, bad := range map[DType]int64{I8: 128, U8: -1, I16: -32769, U16: 65536, I32: math.MaxInt32 + 1, U32: -1, BOOL: 2, U64: -1} {
		if _, err := EncodeInt64s(dt, []int64{0, bad}); err == nil || !strings.Contains(err.Error(), "element 1") {
			t.Errorf("EncodeInt64s(%s, %d) error = %v", dt, bad, err)
		}
	}
	if _, err := EncodeFloat32s(I32, []float32{1}); !errors.Is(err, ErrUnsupportedDType) {
		t.Errorf("EncodeFloat32s(I32) error = %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
