package safetensors

import (
	"bytes"
	"math"
	"os"
	"slices"
	"testing"
)

const goldenPath = "testdata/golden.safetensors"

// regen is printed when a golden comparison fails.
const regen = "golden file from testdata/make_golden.py; regenerate with: /usr/bin/python3 safetensors/testdata/make_golden.py"

func openGolden(t *testing.T) *File {
	t.Helper()
	f, err := Open(goldenPath)
	if err != nil {
		t.Fatalf("%v (%s)", err, regen)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestGoldenNamesShapesMetadata(t *testing.T) {
	f := openGolden(t)
	wantNames := []string{"bf16", "bf16_as_f32", "bool", "empty", "f16", "f16_as_f32", "f32", "f64",
		"i16", "i32", "i64", "i8", "round_bf16", "round_f16", "round_src", "scalar", "u8"}
	if got := f.Names(); !slices.Equal(got, wantNames) {
		t.Fatalf("Names() = %v, want %v (%s)", got, wantNames, regen)
	}
	shapes := map[string][]int64{"f64": {2, 3}, "f32": {2, 3}, "i32": {2, 2}, "scalar": {}, "empty": {0, 3}, "f16": {12}, "round_src": {48}}
	dtypes := map[string]DType{"f64": F64, "f32": F32, "f16": F16, "bf16": BF16, "i64": I64, "i32": I32,
		"i16": I16, "i8": I8, "u8": U8, "bool": BOOL, "scalar": F32, "empty": F32}
	for name, want := range shapes {
		ti, ok := f.Info(name)
		if !ok || !slices.Equal(ti.Shape, want) || ti.Shape == nil {
			t.Errorf("Info(%q).Shape = %v (ok=%v), want %v", name, ti.Shape, ok, want)
		}
	}
	for name, want := range dtypes {
		if ti, _ := f.Info(name); ti.DType != want {
			t.Errorf("Info(%q).DType = %s, want %s", name, ti.DType, want)
		}
	}
	if md := f.Metadata(); md["format"] != "pt" || md["source"] != "make_golden.py" || len(md) != 2 {
		t.Errorf("Metadata() = %v", md)
	}
}

func TestGoldenValues(t *testing.T) {
	f := openGolden(t)
	f64, err := f.Float64s("f64")
	want64 := []float64{1, -2.5, 3.141592653589793, 1e-300, math.Copysign(0, -1), 1e300}
	if err != nil || !sameBits64(f64, want64) {
		t.Errorf("Float64s(f64) = %v, %v; want %v", f64, err, want64)
	}
	f32, err := f.Float32s("f32")
	want32 := []float32{0.1, -1.5, 3.4e38, math.Float32frombits(1), float32(math.Inf(1)), float32(math.Inf(-1))}
	if err != nil || !sameBits32(f32, want32) {
		t.Errorf("Float32s(f32) = %v, %v; want %v", f32, err, want32)
	}
	ints := map[string][]int64{
		"i64":  {math.MinInt64, math.MaxInt64, 0, -1},
		"i32":  {math.MinInt32, math.MaxInt32, 7, -7},
		"i16":  {math.MinInt16, math.MaxInt16, 3},
		"i8":   {-128, 127, 0},
		"u8":   {0, 255, 128},
		"bool": {1, 0, 1},
	}
	for name, want := range ints {
		if got, err := f.Int64s(name); err != nil || !slices.Equal(got, want) {
			t.Errorf("Int64s(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if got, err := f.Float32s("scalar"); err != nil || !slices.Equal(got, []float32{2.5}) {
		t.Errorf("Float32s(scalar) = %v, %v", got, err)
	}
	if got, err := f.Float32s("empty"); err != nil || len(got) != 0 {
		t.Errorf("Float32s(empty) = %v, %v", got, err)
	}
	// Integers do not silently become floats, nor floats integers.
	if _, err := f.Float32s("i32"); err == nil {
		t.Error("Float32s(i32) succeeded")
	}
	if _, err := f.Int64s("f32"); err == nil {
		t.Error("Int64s(f32) succeeded")
	}
}

// The half-precision tensors must widen exactly as torch widened them.
func TestGoldenHalfWideningMatchesTorch(t *testing.T) {
	f := openGolden(t)
	for _, pair := range [][2]string{{"f16", "f16_as_f32"}, {"bf16", "bf16_as_f32"}} {
		got, err := f.Float32s(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		want, _ := f.Float32s(pair[1])
		if !sameBits32(got, want) {
			t.Errorf("Float32s(%s) = %v, torch says %v (%s)", pair[0], got, want, regen)
		}
		got64, _ := f.Float64s(pair[0])
		for i := range got64 {
			if !sameFloat(got64[i], float64(want[i])) {
				t.Errorf("Float64s(%s)[%d] = %v, want %v", pair[0], i, got64[i], want[i])
			}
		}
	}
	if v, _ := f.Float32s("f16"); v[3] != 0x1p-24 || v[6] != 65504 {
		t.Errorf("f16 smallest subnormal / max = %v / %v", v[3], v[6])
	}
}

// Rounding float32 to F16 and BF16 must give torch's bits (NaN payloads aside).
func TestGoldenHalfRoundingMatchesTorch(t *testing.T) {
	f := openGolden(t)
	src, _ := f.Float32s("round_src")
	for _, c := range []struct {
		name string
		dt   DType
		conv func(float32) uint16
	}{{"round_f16", F16, Float32ToF16}, {"round_bf16", BF16, Float32ToBF16}} {
		raw, _ := f.Bytes(c.name)
		enc, err := EncodeFloat32s(c.dt, src)
		if err != nil {
			t.Fatal(err)
		}
		widen := F16ToFloat32
		if c.dt == BF16 {
			widen = BF16ToFloat32
		}
		for i, x := range src {
			want := le.Uint16(raw[2*i:])
			got := c.conv(x)
			if isNaN32(x) {
				if !isNaN32(widen(got)) {
					t.Errorf("%s(NaN) = %#04x, not a NaN", c.name, got)
				}
				continue
			}
			if got != want || le.Uint16(enc[2*i:]) != want {
				t.Errorf("%s(%g) = %#04x (encoded %#04x), torch %#04x (%s)", c.name, x, got, le.Uint16(enc[2*i:]), want, regen)
			}
		}
	}
}

// Encoding the golden tensors again must reproduce the Python-written file byte for byte.
func TestGoldenReencodesByteForByte(t *testing.T) {
	f := openGolden(t)
	var ts []Tensor
	for _, name := range f.Names() {
		ti, _ := f.Info(name)
		b, _ := f.Bytes(name)
		ts = append(ts, Tensor{Name: name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	slices.Reverse(ts) // the writer sorts
	var buf bytes.Buffer
	if err := Encode(&buf, ts, f.Metadata()); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		n := min(len(want), buf.Len(), 200)
		t.Errorf("re-encoded file differs from golden (%d vs %d bytes); first bytes:\n got %q\nwant %q", buf.Len(), len(want), buf.Bytes()[:n], want[:n])
	}
}

func isNaN32(x float32) bool { return x != x }

func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

func sameBits32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameFloat(float64(a[i]), float64(b[i])) || math.Signbit(float64(a[i])) != math.Signbit(float64(b[i])) {
			return false
		}
	}
	return true
}

func sameBits64(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameFloat(a[i], b[i]) {
			return false
		}
	}
	return true
}
