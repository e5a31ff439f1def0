package tensorkit

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// recordsGraph reports, independently of GradSetEnabled, whether an op on a
// tensor that requires grad is recorded by autograd on this thread.
func recordsGraph(t *testing.T) bool {
	t.Helper()
	x, err := ts.Zeros([]int64{1}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if x, err = x.SetRequiresGrad(true, true); err != nil {
		t.Fatal(err)
	}
	defer x.Drop()
	y, err := x.MulScalar(ts.FloatScalar(2), false)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Drop()
	r, err := y.RequiresGrad()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNoGradTurnsGradOffAndRestoresIt(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, start := range []bool{true, false} {
		if _, err := ts.GradSetEnabled(start); err != nil {
			t.Fatal(err)
		}
		var inside bool
		sentinel := errors.New("from fn")
		err := NoGrad(func() error {
			inside = recordsGraph(t)
			return sentinel
		})
		if !errors.Is(err, sentinel) {
			t.Fatalf("NoGrad returned %v, want fn's error", err)
		}
		if inside {
			t.Errorf("start %v: autograd recorded inside NoGrad", start)
		}
		if got := recordsGraph(t); got != start {
			t.Errorf("start %v: after NoGrad autograd records = %v", start, got)
		}
		if on, err := Enabled(); err != nil || on != start {
			t.Errorf("start %v: Enabled() = %v, %v", start, on, err)
		}
	}
	if _, err := ts.GradSetEnabled(true); err != nil {
		t.Fatal(err)
	}
}

func TestWithGradTurnsGradOnAndRestoresIt(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := ts.GradSetEnabled(false); err != nil {
		t.Fatal(err)
	}
	defer ts.GradSetEnabled(true)
	var inside bool
	if err := WithGrad(true, func() error { inside = recordsGraph(t); return nil }); err != nil {
		t.Fatal(err)
	}
	if !inside {
		t.Error("autograd did not record inside WithGrad(true)")
	}
	if recordsGraph(t) {
		t.Error("grad mode not restored to off after WithGrad(true)")
	}
}

func TestHostCopies(t *testing.T) {
	// 0.1 is not a float32: the float64 tensor keeps it exactly, the float32
	// copy rounds it as Go's float32 conversion does (round to nearest even).
	vals := []float64{0.1, -2.5, 3, 1e-3, 7, -0}
	x, err := ts.OfSlice(vals)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Drop()
	m, err := x.Reshape([]int64{2, 3}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Drop()
	// A transposed view is not contiguous: the copy must come out in its own
	// row-major order, not in storage order.
	mt, err := m.T(false)
	if err != nil {
		t.Fatal(err)
	}
	defer mt.Drop()
	want := []float64{0.1, 1e-3, -2.5, 7, 3, -0}
	got, err := Float64s(mt)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Float64s: %d values, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Float64s[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	got32, err := Float32s(mt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got32[i] != float32(want[i]) {
			t.Errorf("Float32s[%d] = %v, want %v", i, got32[i], float32(want[i]))
		}
	}
	if n := NumElements([]int64{2, 3, 4}); n != 24 {
		t.Errorf("NumElements = %d, want 24", n)
	}
	if n := NumElements(nil); n != 1 {
		t.Errorf("NumElements(scalar) = %d, want 1", n)
	}
}

func TestScalar(t *testing.T) {
	// A float32 value read through float64 is exact: compare bit for bit.
	v := float32(math.Pi)
	x, err := ts.OfSlice([]float32{v})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Drop()
	s, err := x.Sum(gotch.Float, false) // 0-dim
	if err != nil {
		t.Fatal(err)
	}
	defer s.Drop()
	for _, tt := range []*ts.Tensor{x, s} {
		got, err := Scalar(tt)
		if err != nil {
			t.Fatal(err)
		}
		if got != float64(v) {
			t.Errorf("Scalar = %v, want %v", got, float64(v))
		}
	}
	two, err := ts.OfSlice([]float64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	defer two.Drop()
	if _, err := Scalar(two); err == nil || !strings.Contains(err.Error(), "have 2") {
		t.Errorf("Scalar of two elements: err = %v, want one naming 2 elements", err)
	}
}

func TestHostReadsCountsEveryRead(t *testing.T) {
	x, err := ts.OfSlice([]int64{3, -1, 4})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Drop()
	one, err := ts.OfSlice([]int64{42})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Drop()
	ResetHostReads()
	got, err := Int64s(x)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != 3 || got[1] != -1 || got[2] != 4 {
		t.Errorf("Int64s = %v, want [3 -1 4]", got)
	}
	if v, err := Int64Scalar(one); err != nil || v != 42 {
		t.Errorf("Int64Scalar = %v, %v, want 42", v, err)
	}
	if _, err := Int64Scalar(x); err == nil || !strings.Contains(err.Error(), "have 3") {
		t.Errorf("Int64Scalar of three elements: err = %v, want one naming 3 elements", err)
	}
	for _, read := range []func(*ts.Tensor) error{
		func(t *ts.Tensor) error { _, err := Float64s(t); return err },
		func(t *ts.Tensor) error { _, err := Float32s(t); return err },
		func(t *ts.Tensor) error { _, err := Scalar(t); return err },
	} {
		if err := read(one); err != nil {
			t.Fatal(err)
		}
	}
	// Int64s, Int64Scalar twice (the failing one read too), Float64s, Float32s, Scalar.
	if n := HostReads(); n != 6 {
		t.Errorf("HostReads = %d, want 6", n)
	}
	if n := ResetHostReads(); n != 6 {
		t.Errorf("ResetHostReads returned %d, want 6", n)
	}
	if n := HostReads(); n != 0 {
		t.Errorf("HostReads after reset = %d, want 0", n)
	}
}

// gotchReads are gotch's methods that copy tensor data to the host.
var gotchReads = regexp.MustCompile(`\.(Must)?(Float64Value|Int64Value|Float64Values|Int64Values|Vals|CopyData|CopyDataUint8)\(`)

// No non-test Go file of the repository outside this package reads tensor data with
// gotch directly, so HostReads sees every read. (DataPtr is not a read: its callers
// pass host memory of CPU tensors, or device memory to NCCL, without a copy.)
func TestEveryHostReadGoesThroughTensorkit(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	var files int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || path == self) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for i, line := range strings.Split(string(src), "\n") {
			if gotchReads.MatchString(line) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d reads tensor data past tensorkit's count: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("walked %d Go files under %s: not the repository", files, root)
	}
}

// SetFloat32s writes row-major values into a leaf that requires grad (no autograd
// error), converting to its dtype; a count that does not match the shape is an error
// and leaves the tensor as it was.
func TestSetFloat32s(t *testing.T) {
	x, err := ts.Zeros([]int64{2, 3}, gotch.Double, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Drop()
	leaf, err := x.SetRequiresGrad(true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Drop()
	vals := []float32{0.1, -2.5, 3, 1e-3, 7, -4}
	if err := SetFloat32s(leaf, vals); err != nil {
		t.Fatal(err)
	}
	got, err := Float64s(leaf)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if got[i] != float64(v) { // float32 → float64 is exact
			t.Errorf("[%d] = %v, want %v", i, got[i], float64(v))
		}
	}
	if !leaf.MustRequiresGrad() {
		t.Error("the leaf no longer requires grad")
	}
	if err := SetFloat32s(leaf, vals[:5]); err == nil || !strings.Contains(err.Error(), "5 values for shape [2 3]") {
		t.Fatalf("5 values into 2×3: got %v, want the count error", err)
	}
	again, err := Float64s(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again, got) {
		t.Errorf("after the refused write: %v, want %v unchanged", again, got)
	}
}

// CopyValues writes a 2×3 source into a 6-element slot of a larger buffer, reshaping
// it, and leaves the rest of the buffer alone; a source of another element count is
// refused.
func TestCopyValuesIntoASlot(t *testing.T) {
	buf := ts.MustZeros([]int64{8}, gotch.Double, gotch.CPU)
	defer buf.MustDrop()
	slot := buf.MustNarrow(0, 1, 6, false)
	defer slot.MustDrop()
	src := ts.MustOfSlice([]float64{1, 2, 3, 4, 5, 6}).MustReshape([]int64{2, 3}, true)
	defer src.MustDrop()
	if err := CopyValues(slot, src); err != nil {
		t.Fatal(err)
	}
	got, err := Float64s(buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0, 1, 2, 3, 4, 5, 6, 0}; !slices.Equal(got, want) {
		t.Errorf("buffer %v, want %v", got, want)
	}
	five := ts.MustZeros([]int64{5}, gotch.Double, gotch.CPU)
	defer five.MustDrop()
	if err := CopyValues(slot, five); err == nil {
		t.Error("5 values into a 6-element slot were accepted")
	}
}
