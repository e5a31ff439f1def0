package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// stubbedCalls invokes stubbed wrappers by name: scaled_dot_product_attention
// (absent from 1.13) through gotch's API, _cslt_sparse_mm (absent from Debian's
// 2.6, built without cuSPARSELt) through libtch, as gotch's unexported method
// would. A stubbed wrapper throws before it reads its arguments.
var stubbedCalls = map[string]func(q *ts.Tensor) error{
	"atg_scaled_dot_product_attention": func(q *ts.Tensor) error {
		out, err := ts.ScaledDotProductAttention(q, q, q, ts.None, 0, false, nil)
		if err == nil {
			out.Drop()
		}
		return err
	},
	"atg__cslt_sparse_mm": func(q *ts.Tensor) error {
		runtime.LockOSThread() // the error is thread-local
		defer runtime.UnlockOSThread()
		out := new(lib.Ctensor) // receives a C pointer: allowed in Go memory
		c := lib.Ctensor(q.Ctensor())
		lib.Atg_CsltSparseMm(out, c, c, c, 0)
		err := ts.TorchErr()
		if err == nil {
			ts.FromCtensor(unsafe.Pointer(*out)).Drop()
		}
		runtime.KeepAlive(q)
		return err
	},
}

// TestStubbedOpReturnsClearError calls an op the installed libtorch lacks through
// the adapted gotch build: it must come back as a Go error naming the op and the
// libtorch version, not crash the process.
func TestStubbedOpReturnsClearError(t *testing.T) {
	b, err := os.ReadFile("../../.build/gotch/.lrtrain-adapt.json")
	if err != nil {
		t.Fatalf("the adapted gotch is missing (run make setup): %v", err)
	}
	var s stamp
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Stubbed) == 0 {
		t.Skipf("libtorch %s has every op gotch wraps: nothing is stubbed", s.Torch)
	}
	var name string
	for _, n := range s.Stubbed {
		if stubbedCalls[n] != nil {
			name = n
			break
		}
	}
	if name == "" {
		t.Fatalf("none of libtorch %s's stubbed ops %v has a call in stubbedCalls: add one", s.Torch, s.Stubbed)
	}
	q, err := ts.Ones([]int64{1, 2, 4}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Drop()
	err = stubbedCalls[name](q)
	if err == nil {
		t.Fatalf("the stubbed op %s returned no error", name)
	}
	msg := err.Error()
	op := strings.TrimPrefix(name, "atg_")
	for _, want := range []string{"gotch op " + op + " (" + name + ")", "not available in the installed libtorch " + s.Torch} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	// The library is still usable after the error.
	sum, err := q.Sum(gotch.Float, false)
	if err != nil {
		t.Fatal(err)
	}
	defer sum.Drop()
	if v := sum.Float64Values()[0]; v != 8 {
		t.Fatalf("sum after a stubbed call = %v, want 8", v)
	}
}

// TestGradSetEnabledReportsPreviousMode checks the adapted gotch's fix: the
// previous grad mode it returns is the real one, so no-grad guards restore it.
func TestGradSetEnabledReportsPreviousMode(t *testing.T) {
	runtime.LockOSThread() // grad mode is per OS thread
	defer runtime.UnlockOSThread()
	var got []bool
	for _, set := range []bool{true, false, false, true} {
		prev, err := ts.GradSetEnabled(set)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, prev)
	}
	// Grad mode starts on; the calls set on, off, off, on.
	want := []bool{true, true, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("previous modes %v, want %v", got, want)
		}
	}
}

// rssBytes reads the resident set size of this process.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm on this system")
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		t.Fatal(err)
	}
	return resident * int64(os.Getpagesize())
}

// TestGeneratedOpsDoNotLeak calls a generated op 100,000 times. Upstream gotch
// leaked the C buffer that receives each op's output handle (~80 bytes a call,
// ~8 MB here); the adapted build frees it.
func TestGeneratedOpsDoNotLeak(t *testing.T) {
	x, err := ts.Ones([]int64{4}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Drop()
	run := func(n int) {
		for i := 0; i < n; i++ {
			y, err := x.Abs(false)
			if err != nil {
				t.Fatal(err)
			}
			if err := y.Drop(); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		debug.FreeOSMemory()
	}
	run(20000) // warm up allocator arenas and the Go heap
	before := rssBytes(t)
	run(100000)
	growth := rssBytes(t) - before
	t.Logf("RSS growth over 100k ops: %d KiB", growth>>10)
	if growth > 3<<20 {
		t.Fatalf("RSS grew %d KiB over 100k generated-op calls: the output buffers leak", growth>>10)
	}
}
