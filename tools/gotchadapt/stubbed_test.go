package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TestStubbedOpReturnsClearError calls an op that libtorch 1.13 lacks through
// the adapted gotch build: it must come back as a Go error naming the op and
// the libtorch version, not crash the process.
func TestStubbedOpReturnsClearError(t *testing.T) {
	b, err := os.ReadFile("../../.build/gotch/.lrtrain-adapt.json")
	if err != nil {
		t.Fatalf("the adapted gotch is missing (run make setup): %v", err)
	}
	var s stamp
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	stubbed := strings.Join(s.Stubbed, ",")
	if !strings.Contains(stubbed, "atg_scaled_dot_product_attention,") {
		if len(s.Stubbed) == 0 {
			t.Skipf("libtorch %s has every op gotch wraps: nothing is stubbed", s.Torch)
		}
		t.Fatalf("expected scaled_dot_product_attention among the stubbed ops of libtorch %s", s.Torch)
	}
	q, err := ts.Ones([]int64{1, 2, 4}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Drop()
	out, err := ts.ScaledDotProductAttention(q, q, q, ts.None, 0, false, nil)
	if err == nil {
		out.Drop()
		t.Fatal("a stubbed op returned no error")
	}
	msg := err.Error()
	for _, want := range []string{"scaled_dot_product_attention", "not available in the installed libtorch " + s.Torch} {
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
