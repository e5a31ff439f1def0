package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"errors"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Bad inputs come back as errors wrapping a sentinel, from Apply and Naive alike.
func TestBadInputsAreErrors(t *testing.T) {
	lockThread(t)
	f64 := func(shape ...int64) *ts.Tensor {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		return newTensor(t, make([]float64, n), shape, gotch.Double, false)
	}
	m, k5, k4 := f64(3, 4), f64(5), f64(4)
	f32K := newTensor(t, make([]float64, 5), []int64{5}, gotch.Float, false)
	intM := ts.MustOnes([]int64{3, 4}, gotch.Int64, gotch.CPU)
	defer intM.MustDrop()
	intK := ts.MustOnes([]int64{5}, gotch.Int, gotch.CPU)
	defer intK.MustDrop()
	empty := f64(0)

	cases := []struct {
		name          string
		m, a, beta, g *ts.Tensor
		basis         adapter.Basis
		scale         float64
		want          error
	}{
		{"mismatched K", m, k5, k4, k5, adapter.Sinc, 1, ErrShape},
		{"3-D grid", m, k5, k5, f64(1, 1, 5), adapter.Sinc, 1, ErrShape},
		{"2-D amplitude", m, f64(5, 1), k5, k5, adapter.Sinc, 1, ErrShape},
		{"K = 0", m, empty, empty, empty, adapter.Sinc, 1, ErrShape},
		{"int M", intM, k5, k5, k5, adapter.Sinc, 1, ErrDType},
		{"int grid", m, k5, k5, intK, adapter.Sinc, 1, ErrDType},
		{"float32 K-vector with float64 M", m, f32K, k5, k5, adapter.Sinc, 1, ErrDType},
		{"nil amplitude", m, nil, k5, k5, adapter.Sinc, 1, ErrNilTensor},
		{"unknown basis", m, k5, k5, k5, adapter.Basis("fourier"), 1, ErrBasis},
		{"NaN scale", m, k5, k5, k5, adapter.Sinc, math.NaN(), ErrScale},
		{"infinite scale", m, k5, k5, k5, adapter.BSpline, math.Inf(1), ErrScale},
		{"zero scale", m, k5, k5, k5, adapter.Gaussian, 0, ErrScale},
	}
	for _, c := range cases {
		for name, fn := range map[string]phiFunc{"Apply": Apply, "Naive": Naive} {
			y, err := fn(c.m, c.a, c.beta, c.g, c.basis, c.scale)
			if y != nil {
				y.MustDrop()
			}
			if !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), "phiop:") {
				t.Errorf("%s, %s: error %v, want %v", c.name, name, err, c.want)
			}
		}
	}
}

// CUDA tensors cannot be made on this machine, so the device rules are
// checked on metadata.
func TestDeviceRules(t *testing.T) {
	cpu, cuda0, cuda1 := gotch.CPU, gotch.CudaBuilder(0), gotch.CudaBuilder(1)
	metas := func(mDev, kDev gotch.Device) [4]meta {
		return [4]meta{
			{name: "M", shape: []int64{4, 4}, dtype: gotch.Float, device: mDev},
			{name: "amplitude", shape: []int64{3}, dtype: gotch.Float, device: kDev},
			{name: "bandwidth_raw", shape: []int64{3}, dtype: gotch.Float, device: kDev},
			{name: "grid", shape: []int64{3}, dtype: gotch.Float, device: kDev},
		}
	}
	cases := []struct {
		name       string
		mDev, kDev gotch.Device
		haveCUDA   bool
		want       error
	}{
		{"cpu", cpu, cpu, false, nil},
		{"cuda without CUDA build", cuda0, cuda0, false, ErrNoCUDA},
		{"cuda with CUDA build", cuda0, cuda0, true, nil},
		{"K-vectors on cpu, M on cuda", cuda0, cpu, true, ErrDevice},
		{"different GPUs", cuda0, cuda1, true, ErrDevice},
		{"K-vectors on cuda, M on cpu", cpu, cuda0, true, ErrDevice},
	}
	for _, c := range cases {
		err := checkMeta(metas(c.mDev, c.kDev), adapter.Sinc, 1, c.haveCUDA)
		if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := checkMeta(metas(cuda0, cuda0), adapter.Sinc, 1, false); !strings.Contains(err.Error(), "phiop: built without CUDA support") {
		t.Errorf("error text %q", err)
	}
	if BuiltWithCUDA() {
		t.Log("built with CUDA kernels")
	}
}

// An exception inside the C++ shim becomes an ErrTorch error, not a crash:
// call the shim directly with inputs Apply would have rejected.
func TestShimReportsExceptions(t *testing.T) {
	lockThread(t)
	m := newTensor(t, make([]float64, 6), []int64{2, 3}, gotch.Double, false)
	k5 := newTensor(t, make([]float64, 5), []int64{5}, gotch.Double, false)
	k4 := newTensor(t, make([]float64, 4), []int64{4}, gotch.Double, false)
	y, err := applyFused(m, k5, k4, k5, adapter.Sinc, 1)
	if y != nil || !errors.Is(err, ErrTorch) || !strings.Contains(err.Error(), "phiop: amplitude, bandwidth_raw and grid must be 1-D of one length K") {
		t.Fatalf("applyFused with mismatched K: %v, %v", y, err)
	}
	if err := setNumThreads(0); !errors.Is(err, ErrTorch) {
		t.Errorf("setNumThreads(0): %v", err)
	}
}

func TestThreadsAndVersion(t *testing.T) {
	lockThread(t)
	prev := NumThreads()
	t.Cleanup(func() { SetNumThreads(prev) })
	SetNumThreads(1)
	if n := NumThreads(); n != 1 {
		t.Errorf("NumThreads() = %d after SetNumThreads(1)", n)
	}
	// OpenMP keeps the count per OS thread; phiop carries it to other threads.
	other := make(chan int)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		other <- NumThreads()
	}()
	if n := <-other; n != 1 {
		t.Errorf("NumThreads() on another OS thread = %d, want 1", n)
	}
	t.Setenv("OMP_NUM_THREADS", "2")
	if n := InitThreads(); n != 2 || NumThreads() != 2 {
		t.Errorf("InitThreads() = %d, NumThreads() = %d, want 2", n, NumThreads())
	}
	if v := TorchVersion(); !strings.Contains(v, ".") {
		t.Errorf("TorchVersion() = %q", v)
	}
}
