package phiop

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
)

// The basis f in φ(x) = Σ_k a_k · f(c · b_k · (x − g_k)) is the adapter spec's
// adapter.Basis: adapter.Sinc is f(t) = sin(πt)/(πt) with f(0) = 1 (the paper's),
// adapter.Gaussian is exp(−t²), adapter.BSpline is the cubic B-spline kernel with
// support [−2, 2] (pass scale = 1/h for a grid of spacing h).

// basisCodes number the bases as the C++ kernels do (phi_kernel.h: Sinc = 0,
// Gaussian = 1, BSpline = 2).
var basisCodes = map[adapter.Basis]int{adapter.Sinc: 0, adapter.Gaussian: 1, adapter.BSpline: 2}

// Errors returned by Apply and Naive; the details follow the sentinel's text.
var (
	ErrNilTensor = errors.New("phiop: nil tensor")
	ErrShape     = errors.New("phiop: bad shape")
	ErrDType     = errors.New("phiop: unsupported dtype")
	ErrDevice    = errors.New("phiop: device mismatch")
	ErrBasis     = errors.New("phiop: unknown basis")
	ErrScale     = errors.New("phiop: scale must be finite and positive")
	ErrNoCUDA    = errors.New("phiop: built without CUDA support")
	ErrThreads   = errors.New("phiop: thread count must be at least 1")
	// ErrTorch wraps an exception raised inside libtorch or the C++ shim.
	ErrTorch = errors.New("phiop: libtorch")
)

// Apply returns φ(m) computed by the fused op; when grad mode is on and an
// input requires grad, the result carries one autograd node whose backward
// sends gradients to m, amplitude and bandwidthRaw (not grid). amplitude,
// bandwidthRaw and grid are 1-D of length K ≥ 1 with m's dtype (float32 or
// float64) and device; m may have any shape. scale is the constant c (1 for
// sinc and gaussian, 1/h for bspline). The node keeps m and the K-vectors
// only: memory O(numel(m) + K), whatever K is. A non-contiguous m is copied;
// NaN in m gives NaN in φ. The caller drops the result.
//
// Grad mode is per OS thread in libtorch: callers that train should run on a
// goroutine locked with runtime.LockOSThread.
func Apply(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64) (*ts.Tensor, error) {
	if err := validate(m, amplitude, bandwidthRaw, grid, basis, scale); err != nil {
		return nil, err
	}
	return applyFused(m, amplitude, bandwidthRaw, grid, basis, scale)
}

// SetTabulated allows (the default) or forbids the tabulated path of float32
// sinc on the CPU and returns the previous setting. On a large M, Apply
// evaluates φ and φ′ by cubic interpolation in a table of φ over M's range and
// forms ∂a, ∂β from G spread onto the table's nodes, instead of summing K terms
// per element; the node spacing keeps every interpolation error below 2⁻²⁶ of
// its scale (docs/method.md §4.1), less than float32 rounding adds to the
// K-term sum. Small M, an M within one table interval (B ≈ 0, the first steps
// of a run), other bases, float64, CUDA and an M or G holding a NaN or infinity
// take the K-term kernels. Forbidding it is for
// comparisons; results agree within float32 rounding either way.
func SetTabulated(on bool) bool { return setTabulate(on) }

// TabulatedCalls counts the forward and backward passes that took the
// tabulated path since the process started.
func TabulatedCalls() int64 {
	_, t := passCounts()
	return t
}

// Passes counts the op's CPU forward and backward passes since the process
// started, tabulated or not.
func Passes() int64 {
	all, _ := passCounts()
	return all
}

// SetNumThreads sets libtorch's intra-op thread count (at::set_num_threads).
// The fused op re-applies it on whichever OS thread it runs, since OpenMP
// keeps the count per thread. Training should use all cores:
// SetNumThreads(runtime.NumCPU()).
func SetNumThreads(n int) {
	if n < 1 {
		n = 1
	}
	// n ≥ 1 cannot fail; an error here would be a broken libtorch.
	if err := setNumThreads(n); err != nil {
		panic(err)
	}
}

// NumThreads returns libtorch's intra-op thread count (at::get_num_threads)
// as seen from the calling OS thread.
func NumThreads() int { return numThreads() }

// InitThreads sets the intra-op thread count from OMP_NUM_THREADS when that
// holds a positive integer, otherwise to runtime.NumCPU(), and returns it.
func InitThreads() int {
	n := runtime.NumCPU()
	if v, err := strconv.Atoi(strings.TrimSpace(os.Getenv("OMP_NUM_THREADS"))); err == nil && v > 0 {
		n = v
	}
	SetNumThreads(n)
	return n
}

// BuiltWithCUDA reports whether the CUDA kernels were compiled in (build tag
// `cuda`); without them Apply rejects CUDA tensors with ErrNoCUDA.
func BuiltWithCUDA() bool { return builtWithCUDA() }

// CUDAAvailable reports whether the linked libtorch sees a CUDA device.
func CUDAAvailable() bool { return cudaAvailable() }

// TorchVersion is the libtorch version the package was compiled against.
func TorchVersion() string { return torchVersion() }

// checkScale rejects scales the kernels cannot use.
func checkScale(scale float64) error {
	if math.IsNaN(scale) || math.IsInf(scale, 0) || scale <= 0 {
		return fmt.Errorf("%w, got %v", ErrScale, scale)
	}
	return nil
}
