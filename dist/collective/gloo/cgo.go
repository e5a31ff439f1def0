package gloo

// This is the only file of the package that imports "C". It wraps the
// extern "C" functions of gloo_shim.cc and exports the two callbacks through
// which the shim reaches the Go Store while Gloo connects.
//
// Buffers cross as pointers to Go or C memory that the shim uses only for
// the duration of the call: every collective blocks in C until it is done,
// failed or aborted, so no pointer outlives the call that passed it.

/*
#cgo CXXFLAGS: -std=c++17 -O2
#cgo LDFLAGS: -lgloo -lstdc++
#include <stdlib.h>
#include "gloo_shim.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// Status codes of the shim (see gloo_shim.h).
const (
	codeOK      = int(C.LRT_OK)
	codeTimeout = int(C.LRT_ERR_TIMEOUT)
	codeIO      = int(C.LRT_ERR_IO)
	codeInvalid = int(C.LRT_ERR_INVALID)
)

// native is a connected Gloo context.
type native struct{ p *C.lrt_gloo }

// nativeStatus is the outcome of one shim call.
type nativeStatus struct {
	code int
	msg  string
}

func toStatus(st *C.lrt_status) nativeStatus {
	return nativeStatus{code: int(st.code), msg: C.GoString(&st.msg[0])}
}

func nativeNew(rank, size int, hostname, iface string, timeoutMs int64, store cgo.Handle) (*native, nativeStatus) {
	ch, ci := C.CString(hostname), C.CString(iface)
	defer C.free(unsafe.Pointer(ch))
	defer C.free(unsafe.Pointer(ci))
	var st C.lrt_status
	var p *C.lrt_gloo
	C.lrt_gloo_new(C.int(rank), C.int(size), ch, ci, C.int64_t(timeoutMs), C.uintptr_t(store), &p, &st)
	if p == nil {
		return nil, toStatus(&st)
	}
	return &native{p: p}, toStatus(&st)
}

func (n *native) allReduce(buf unsafe.Pointer, count int, dt collective.DType, op collective.ReduceOp, timeoutMs int64) nativeStatus {
	var st C.lrt_status
	C.lrt_gloo_allreduce(n.p, buf, C.size_t(count), cDType(dt), cOp(op), C.int64_t(timeoutMs), &st)
	return toStatus(&st)
}

func (n *native) allGather(send, recv unsafe.Pointer, count int, dt collective.DType, timeoutMs int64) nativeStatus {
	var st C.lrt_status
	C.lrt_gloo_allgather(n.p, send, recv, C.size_t(count), cDType(dt), C.int64_t(timeoutMs), &st)
	return toStatus(&st)
}

func (n *native) broadcast(buf unsafe.Pointer, count int, dt collective.DType, root int, timeoutMs int64) nativeStatus {
	var st C.lrt_status
	C.lrt_gloo_broadcast(n.p, buf, C.size_t(count), cDType(dt), C.int(root), C.int64_t(timeoutMs), &st)
	return toStatus(&st)
}

func (n *native) reduceScatter(send, recv unsafe.Pointer, count int, dt collective.DType, op collective.ReduceOp, timeoutMs int64) nativeStatus {
	var st C.lrt_status
	C.lrt_gloo_reduce_scatter(n.p, send, recv, C.size_t(count), cDType(dt), cOp(op), C.int64_t(timeoutMs), &st)
	return toStatus(&st)
}

func (n *native) barrier(timeoutMs int64) nativeStatus {
	var st C.lrt_status
	C.lrt_gloo_barrier(n.p, C.int64_t(timeoutMs), &st)
	return toStatus(&st)
}

func (n *native) abort() { C.lrt_gloo_abort(n.p) }

func (n *native) free() { C.lrt_gloo_free(n.p) }

// cDType and cOp map the Go enums onto gloo_shim.h's.
func cDType(dt collective.DType) C.int {
	switch dt {
	case collective.Float64:
		return C.LRT_F64
	case collective.Uint8:
		return C.LRT_U8
	}
	return C.LRT_F32
}

func cOp(op collective.ReduceOp) C.int {
	switch op {
	case collective.Avg:
		return C.LRT_AVG
	case collective.Max:
		return C.LRT_MAX
	case collective.Min:
		return C.LRT_MIN
	}
	return C.LRT_SUM
}

//export lrtStoreSet
func lrtStoreSet(h C.uintptr_t, key *C.char, keyLen C.size_t, val *C.char, valLen C.size_t) C.int {
	b := cgo.Handle(h).Value().(*storeBridge)
	k := C.GoStringN(key, C.int(keyLen))
	v := C.GoBytes(unsafe.Pointer(val), C.int(valLen))
	if err := b.set(k, v); err != nil {
		return 1
	}
	return 0
}

//export lrtStoreGet
func lrtStoreGet(h C.uintptr_t, key *C.char, keyLen C.size_t, val **C.char, valLen *C.size_t) C.int {
	b := cgo.Handle(h).Value().(*storeBridge)
	v, err := b.get(C.GoStringN(key, C.int(keyLen)))
	if err != nil {
		return 1
	}
	*val = (*C.char)(C.CBytes(v))
	*valLen = C.size_t(len(v))
	return 0
}
