package phiop

// The multi-tensor AdamW step (adamw_shim.cpp, cuda/adamw_kernel.cu) as seen
// from Go.

/*
#include <stdlib.h>
#include "phiop.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// Errors of AdamW and AdamWCheck beside ErrNilTensor, ErrShape, ErrDType,
// ErrDevice and ErrTorch.
var (
	// ErrUnsupported: a tensor the native op does not take (a dtype other than
	// float32 and float64, a device other than cpu and cuda, a non-contiguous or
	// non-strided layout). Callers may update such a parameter another way.
	ErrUnsupported = errors.New("phiop: adamw does not take this tensor")
	// ErrHyper: a β outside [0, 1), ε not finite and > 0, a weight decay, learning
	// rate or step count out of range.
	ErrHyper = errors.New("phiop: invalid adamw hyper-parameter")
)

// AdamWHyper holds the hyper-parameters shared by every entry of a call.
type AdamWHyper struct {
	Beta1, Beta2 float64 // in [0, 1)
	Eps          float64 // > 0
	WeightDecay  float64 // decoupled λ: p ← p·(1 − lr·λ), ≥ 0
}

// AdamWEntry is one parameter of a multi-tensor AdamW step: the parameter, its
// gradient and its two moments (one shape, dtype and device, contiguous), the
// step count after this step (1 at a parameter's first update) and its own
// learning rate.
type AdamWEntry struct {
	Param, Grad, ExpAvg, ExpAvgSq *ts.Tensor
	Step                          int64
	LR                            float64
}

// EntryError is AdamW's or AdamWCheck's refusal of one entry; Index is the
// entry's position in the list. errors.Is sees the sentinel in Err.
type EntryError struct {
	Index int
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("entry %d: %v", e.Index, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// AdamW takes one AdamW step for every entry, in place, in one native call: with
// t = Step, bc1 = 1 − β1ᵗ, bc2 = 1 − β2ᵗ and each entry's lr,
//
//	p ← p·(1 − lr·λ)
//	m ← β1·m + (1 − β1)·g            (as libtorch's lerp)
//	v ← β2·v + (1 − β2)·g²           (as libtorch's lerp)
//	p ← p − (lr/bc1)·m/(√v/√bc2 + ε)
//
// computed in the tensors' dtype with per-entry coefficients rounded once from
// float64, exactly the operations of optim.AdamW's libtorch path. On the CPU it
// is one parallel loop over all elements of all entries; on a CUDA device (build
// tag `cuda`) one host-to-device copy of the list and one kernel launch. All
// entries share one dtype (float32 or float64) and one device. A refused list
// (an *EntryError for an entry, otherwise an error wrapping ErrHyper or
// ErrTorch) leaves every tensor unchanged. No autograd graph is recorded; the
// tensors' version counters move as an in-place op's would.
func AdamW(list []AdamWEntry, h AdamWHyper) error {
	return adamw(list, h, false)
}

// AdamWCheck reports whether AdamW takes the entry (p, g, m, v). On success group
// identifies its dtype and device: entries with equal groups can share a call. A
// refusal is an error wrapping ErrUnsupported (take another path) or a mismatch
// (ErrNilTensor, ErrShape, ErrDType, ErrDevice) that no path can step.
func AdamWCheck(p, g, m, v *ts.Tensor) (group int64, err error) {
	if p == nil || g == nil || m == nil || v == nil {
		return 0, fmt.Errorf("%w: adamw entry has a nil tensor", ErrNilTensor)
	}
	var key C.int64_t
	var code C.int
	msg := C.phiop_adamw_check(p.Ctensor(), g.Ctensor(), m.Ctensor(), v.Ctensor(), &key, &code)
	runtime.KeepAlive(p)
	runtime.KeepAlive(g)
	runtime.KeepAlive(m)
	runtime.KeepAlive(v)
	if msg != nil {
		defer C.free(unsafe.Pointer(msg))
		return 0, fmt.Errorf("%w: %s", adamwSentinel(int(code)), C.GoString(msg))
	}
	return int64(key), nil
}

// adamw runs the list natively, or (emulate) through the host emulation of the
// CUDA kernel: CPU tensors walked block by block and lane by lane as the device
// would, for the tests.
func adamw(list []AdamWEntry, h AdamWHyper, emulate bool) error {
	n := len(list)
	if n == 0 {
		return nil
	}
	// The arrays hold C pointers only (torch::Tensor*), so cgo may pass them.
	handles := make([]unsafe.Pointer, 4*n)
	steps := make([]C.int64_t, n)
	lrs := make([]C.double, n)
	for i, e := range list {
		for k, t := range []*ts.Tensor{e.Param, e.Grad, e.ExpAvg, e.ExpAvgSq} {
			if t == nil {
				return &EntryError{i, fmt.Errorf("%w: %s is nil", ErrNilTensor, adamwRoles[k])}
			}
			handles[k*n+i] = t.Ctensor()
		}
		steps[i], lrs[i] = C.int64_t(e.Step), C.double(e.LR)
	}
	var bad C.int64_t
	var code C.int
	msg := C.phiop_adamw(&handles[0], &handles[n], &handles[2*n], &handles[3*n], &steps[0], &lrs[0],
		C.int64_t(n), C.double(h.Beta1), C.double(h.Beta2), C.double(h.Eps), C.double(h.WeightDecay),
		cFlag(emulate), &bad, &code)
	// gotch frees a tensor's C object in a finalizer: keep the Go handles
	// reachable until the op has returned.
	runtime.KeepAlive(list)
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	err := fmt.Errorf("%w: adamw: %s", adamwSentinel(int(code)), C.GoString(msg))
	if bad >= 0 {
		return &EntryError{int(bad), err}
	}
	return err
}

var adamwRoles = [4]string{"param", "grad", "exp_avg", "exp_avg_sq"}

// adamwSentinel maps phiop.h's PHIOP_ADAMW_* codes to the package's errors.
func adamwSentinel(code int) error {
	switch code {
	case C.PHIOP_ADAMW_NIL:
		return ErrNilTensor
	case C.PHIOP_ADAMW_SHAPE:
		return ErrShape
	case C.PHIOP_ADAMW_DTYPE:
		return ErrDType
	case C.PHIOP_ADAMW_DEVICE:
		return ErrDevice
	case C.PHIOP_ADAMW_UNSUPPORTED:
		return ErrUnsupported
	case C.PHIOP_ADAMW_HYPER:
		return ErrHyper
	default:
		return ErrTorch
	}
}
