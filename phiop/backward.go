package phiop

/*
#include "phiop.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// Backward back-propagates from outputs[i] with the gradient grads[i] for every i
// at once (libtorch's torch::autograd::backward with grad_tensors): the gradients
// reach the leaves' .grad, where they add to what is there, and the graphs behind
// the outputs are freed. Each output must record a graph; each gradient must match
// its output's shape, dtype and device. gotch's Tensor.Backward only starts from a
// scalar with gradient 1; lrlora uses this to run a merged ΔW's backward once per
// optimizer step with the gradient its micro-batches accumulated.
func Backward(outputs, grads []*ts.Tensor) error {
	if len(outputs) != len(grads) {
		return fmt.Errorf("phiop: backward: %d outputs but %d gradients", len(outputs), len(grads))
	}
	n := len(outputs)
	if n == 0 {
		return nil
	}
	// The array holds C pointers only (torch::Tensor*), so cgo may pass it.
	handles := make([]unsafe.Pointer, 2*n)
	for i := range outputs {
		if outputs[i] == nil || grads[i] == nil {
			return fmt.Errorf("%w: backward entry %d", ErrNilTensor, i)
		}
		handles[i], handles[n+i] = outputs[i].Ctensor(), grads[i].Ctensor()
	}
	msg := C.phiop_backward(&handles[0], &handles[n], C.int64_t(n))
	runtime.KeepAlive(outputs) // gotch frees C objects in finalizers
	runtime.KeepAlive(grads)
	if err := takeError(msg); err != nil {
		return fmt.Errorf("phiop: backward: %w", err)
	}
	return nil
}

// SetGrad makes grad the .grad of leaf (a tensor that requires grad and records no
// graph), so that later backward passes add into grad's storage in place (libtorch's
// gradient accumulation adds in place into a .grad that exists when, as here, no
// graph of the gradient is recorded). grad must match leaf's shape, dtype and device
// and record no graph; it may be a view of a larger buffer. lrlora uses it to gather
// a held weight's gradient straight into a buffer that a collective then reduces.
func SetGrad(leaf, grad *ts.Tensor) error {
	if leaf == nil || grad == nil {
		return fmt.Errorf("%w: set grad", ErrNilTensor)
	}
	msg := C.phiop_set_grad(leaf.Ctensor(), grad.Ctensor())
	runtime.KeepAlive(leaf)
	runtime.KeepAlive(grad)
	if err := takeError(msg); err != nil {
		return fmt.Errorf("phiop: set grad: %w", err)
	}
	return nil
}
