package grad

import (
	"errors"
	"runtime"
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
