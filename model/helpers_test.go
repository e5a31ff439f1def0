package model_test

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/safetensors"
)

const regenerate = "regenerate the golden files with: go run ./model/testdata/gen && /usr/bin/python3 model/testdata/golden.py"

// int64Input reads an I64 tensor of a safetensors file into a tensor.
func int64Input(t *testing.T, f *safetensors.File, name string) *ts.Tensor {
	t.Helper()
	vals, err := f.Int64s(name)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := f.Info(name)
	x, err := model.Int64Tensor(vals, info.Shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// tensorOf reads a float tensor of a safetensors file, with dtype dt.
func tensorOf(t *testing.T, f *safetensors.File, name string, dt gotch.DType) *ts.Tensor {
	t.Helper()
	vals, err := f.Float64s(name)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := f.Info(name)
	x := ts.MustOfSlice(vals).MustReshape(info.Shape, true)
	if dt != gotch.Double {
		x = x.MustTotype(dt, true)
	}
	return x
}

// maxRelErr is max |got − want| / (1 + |want|) (an absolute error for small values, a
// relative one for large).
func maxRelErr(got, want []float64) (float64, int) {
	worst, at := 0.0, -1
	if len(got) != len(want) {
		return math.Inf(1), -1
	}
	for i := range got {
		e := math.Abs(got[i]-want[i]) / (1 + math.Abs(want[i]))
		if math.IsNaN(e) {
			return math.NaN(), i
		}
		if e > worst {
			worst, at = e, i
		}
	}
	return worst, at
}

func checkClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	e, at := maxRelErr(got, want)
	t.Logf("%s: max error %.3g (tolerance %.3g)", what, e, tol)
	if !(e <= tol) {
		if at >= 0 && at < len(got) && at < len(want) {
			t.Errorf("%s: max error %.3g > %.3g at %d (got %v, want %v); %s", what, e, tol, at, got[at], want[at], regenerate)
		} else {
			t.Errorf("%s: %d values, want %d; %s", what, len(got), len(want), regenerate)
		}
	}
}

// lockThread pins the test goroutine: libtorch's grad mode is per OS thread.
func lockThread(t *testing.T) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// writeTiny writes a tiny init-model checkpoint of arch (seed 3, then opts) into a
// temp dir.
func writeTiny(t *testing.T, arch string, opts ...func(*hfinit.Options)) string {
	t.Helper()
	o := hfinit.Options{Arch: arch, Preset: "tiny", Seed: 3}
	for _, f := range opts {
		f(&o)
	}
	return tinymodel.Write(t, o)
}

func mustLoad(t *testing.T, dir string, opts ...model.Option) *model.Model {
	t.Helper()
	m, err := model.Load(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func shapeOf(t *testing.T, x *ts.Tensor) string {
	t.Helper()
	s, err := x.Size()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(s)
}

// specOf is the paper's adapter (adapter.Default) on targets with rank r, then changed
// by each edit.
func specOf(targets adapter.Targets, r int, edits ...func(*adapter.Spec)) adapter.Spec {
	s := adapter.Default()
	s.TargetModules, s.R = targets, r
	for _, e := range edits {
		e(&s)
	}
	return s
}
