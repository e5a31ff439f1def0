package phiop

// The cgo build flags of the package and the φ op's calls into C. Six other
// hand-written files speak C for their own parts: adamw.go (the multi-tensor
// AdamW step, adamw_shim.cpp), alloc.go (the caching CPU allocator,
// cpu_alloc.cpp), lean.go (the recomputing LR-LoRA layer and merged weight, lean_shim.cpp),
// fused.go (RMSNorm and SwiGLU as single nodes, fused_shim.cpp) and
// backward.go (backward with given gradients, backward_shim.cpp) call their
// entry points of phiop.h; cgo_libtorch.go is generated. The C++ side
// (phi_shim.cpp, lean_shim.cpp, fused_shim.cpp, backward_shim.cpp, phi_shim_cuda.cpp,
// phi_kernel_cpu.cpp, phi_kernel_f64.cpp, adamw_shim.cpp, adamw_shim_cuda.cpp,
// cpu_alloc.cpp) is
// compiled by cgo with the flags below plus libtorch's: include dirs, C++ standard
// and ABI, libraries (and, with the `cuda` tag, the CUDA runtime) live in
// cgo_libtorch.go, which `make setup` generates (tools/gotchadapt) from the same
// detection that adapts gotch, so phiop and gotch always compile against one
// libtorch. -fopenmp makes at::parallel_for parallel (libtorch uses the OpenMP
// backend) and lets GCC vectorise the branch-free selects of the kernels.
//
// With the `cuda` build tag the CUDA kernels (cuda/libphiop_cuda.a, built by
// `make -C phiop cuda`) are linked in; `make build-cuda` does both.

/*
#cgo CXXFLAGS: -O3 -fopenmp
#cgo LDFLAGS: -lstdc++ -fopenmp
#cgo cuda CXXFLAGS: -DPHIOP_WITH_CUDA
#cgo cuda LDFLAGS: -L${SRCDIR}/cuda -lphiop_cuda
#include <stdlib.h>
#include "phiop.h"
*/
import "C"

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// takeError turns a message returned by the shim into a Go error and frees it.
func takeError(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return fmt.Errorf("%w: %s", ErrTorch, C.GoString(msg))
}

func applyFused(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64) (*ts.Tensor, error) {
	return applyFusedVariant(m, amplitude, bandwidthRaw, grid, basis, scale, Variant{})
}

// applyFusedVariant runs the fused op with v's flags (centred, residual).
func applyFusedVariant(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64, v Variant) (*ts.Tensor, error) {
	var out unsafe.Pointer
	msg := C.phiop_apply(m.Ctensor(), amplitude.Ctensor(), bandwidthRaw.Ctensor(), grid.Ctensor(),
		C.int(basisCodes[basis]), C.double(scale), cFlag(v.Centred()), cFlag(v.Residual), &out)
	// gotch frees a tensor's C object in a finalizer: keep the Go handles reachable
	// until the op has returned.
	runtime.KeepAlive(m)
	runtime.KeepAlive(amplitude)
	runtime.KeepAlive(bandwidthRaw)
	runtime.KeepAlive(grid)
	if err := takeError(msg); err != nil {
		return nil, err
	}
	return ts.FromCtensor(out), nil
}

func cFlag(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func setNumThreads(n int) error {
	return takeError(C.phiop_set_num_threads(C.int(n)))
}

func numThreads() int { return int(C.phiop_num_threads()) }

func builtWithCUDA() bool { return C.phiop_has_cuda() != 0 }

func cudaAvailable() bool { return C.phiop_cuda_available() != 0 }

func torchVersion() string { return C.GoString(C.phiop_torch_version()) }

func setTabulate(on bool) bool { return C.phiop_set_tabulate(cFlag(on)) != 0 }

func passCounts() (all, tabulated int64) {
	var a, t C.int64_t
	C.phiop_pass_counts(&a, &t)
	return int64(a), int64(t)
}
