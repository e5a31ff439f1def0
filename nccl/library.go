package nccl

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"
)

// symbols holds the function pointers resolved by Init.
type symbols struct {
	getVersion, getUniqueID, commInitRank, commInitRankConfig, commDestroy, commAbort unsafe.Pointer
	commGetAsyncError, getErrorString, getLastError                                   unsafe.Pointer
	commCount, commCuDevice, commUserRank                                             unsafe.Pointer
	allReduce, reduce, broadcast, allGather, reduceScatter                            unsafe.Pointer
	groupStart, groupEnd                                                              unsafe.Pointer
	cudaGetDeviceCount, cudaSetDevice, cudaGetDevice                                  unsafe.Pointer
	cudaMalloc, cudaFree, cudaMemcpy, cudaGetErrorString                              unsafe.Pointer
	cudaStreamCreate, cudaStreamDestroy, cudaStreamSynchronize, cudaStreamQuery       unsafe.Pointer
	cudaEventCreateWithFlags, cudaEventDestroy, cudaEventRecord, cudaEventQuery       unsafe.Pointer
	cudaStreamWaitEvent                                                               unsafe.Pointer
}

// library is the process-wide loaded state. Calls hold mu for reading while
// they run, so Shutdown cannot unmap the code under a running call.
var library struct {
	mu                   sync.RWMutex
	sym                  *symbols
	ncclH, cudartH       unsafe.Pointer
	ncclPath, cudartPath string
}

// Init loads libnccl and libcudart and resolves every function this
// package wraps. It is safe to call more than once: once loaded it returns
// nil. On failure it returns a *LoadError wrapping ErrLibraryNotFound or
// ErrMissingSymbol, and the package stays unloaded.
func Init() error {
	if Loaded() {
		// Without taking the write lock, which would stall every call behind
		// one blocked in ncclCommInitRank.
		return nil
	}
	library.mu.Lock()
	defer library.mu.Unlock()
	if library.sym != nil {
		return nil
	}
	ncclH, ncclPath, err := planSearch(ncclSpec, os.Getenv, filepath.Glob, "/").open(ncclSpec)
	if err != nil {
		return err
	}
	cudartH, cudartPath, err := planSearch(cudartSpec, os.Getenv, filepath.Glob, "/").open(cudartSpec)
	if err != nil {
		dlClose(ncclH)
		return err
	}
	s := &symbols{}
	required := []struct {
		h    unsafe.Pointer
		spec libSpec
		path string
		name string
		dst  *unsafe.Pointer
	}{
		{ncclH, ncclSpec, ncclPath, "ncclGetVersion", &s.getVersion},
		{ncclH, ncclSpec, ncclPath, "ncclGetUniqueId", &s.getUniqueID},
		{ncclH, ncclSpec, ncclPath, "ncclCommInitRank", &s.commInitRank},
		{ncclH, ncclSpec, ncclPath, "ncclCommDestroy", &s.commDestroy},
		{ncclH, ncclSpec, ncclPath, "ncclCommAbort", &s.commAbort},
		{ncclH, ncclSpec, ncclPath, "ncclCommGetAsyncError", &s.commGetAsyncError},
		{ncclH, ncclSpec, ncclPath, "ncclGetErrorString", &s.getErrorString},
		{ncclH, ncclSpec, ncclPath, "ncclCommCount", &s.commCount},
		{ncclH, ncclSpec, ncclPath, "ncclCommCuDevice", &s.commCuDevice},
		{ncclH, ncclSpec, ncclPath, "ncclCommUserRank", &s.commUserRank},
		{ncclH, ncclSpec, ncclPath, "ncclAllReduce", &s.allReduce},
		{ncclH, ncclSpec, ncclPath, "ncclReduce", &s.reduce},
		{ncclH, ncclSpec, ncclPath, "ncclBroadcast", &s.broadcast},
		{ncclH, ncclSpec, ncclPath, "ncclAllGather", &s.allGather},
		{ncclH, ncclSpec, ncclPath, "ncclReduceScatter", &s.reduceScatter},
		{ncclH, ncclSpec, ncclPath, "ncclGroupStart", &s.groupStart},
		{ncclH, ncclSpec, ncclPath, "ncclGroupEnd", &s.groupEnd},
		{cudartH, cudartSpec, cudartPath, "cudaGetDeviceCount", &s.cudaGetDeviceCount},
		{cudartH, cudartSpec, cudartPath, "cudaSetDevice", &s.cudaSetDevice},
		{cudartH, cudartSpec, cudartPath, "cudaGetDevice", &s.cudaGetDevice},
		{cudartH, cudartSpec, cudartPath, "cudaMalloc", &s.cudaMalloc},
		{cudartH, cudartSpec, cudartPath, "cudaFree", &s.cudaFree},
		{cudartH, cudartSpec, cudartPath, "cudaMemcpy", &s.cudaMemcpy},
		{cudartH, cudartSpec, cudartPath, "cudaGetErrorString", &s.cudaGetErrorString},
		{cudartH, cudartSpec, cudartPath, "cudaStreamCreate", &s.cudaStreamCreate},
		{cudartH, cudartSpec, cudartPath, "cudaStreamDestroy", &s.cudaStreamDestroy},
		{cudartH, cudartSpec, cudartPath, "cudaStreamSynchronize", &s.cudaStreamSynchronize},
		{cudartH, cudartSpec, cudartPath, "cudaStreamQuery", &s.cudaStreamQuery},
		{cudartH, cudartSpec, cudartPath, "cudaEventCreateWithFlags", &s.cudaEventCreateWithFlags},
		{cudartH, cudartSpec, cudartPath, "cudaEventDestroy", &s.cudaEventDestroy},
		{cudartH, cudartSpec, cudartPath, "cudaEventRecord", &s.cudaEventRecord},
		{cudartH, cudartSpec, cudartPath, "cudaEventQuery", &s.cudaEventQuery},
		{cudartH, cudartSpec, cudartPath, "cudaStreamWaitEvent", &s.cudaStreamWaitEvent},
	}
	for _, r := range required {
		if *r.dst = dlSym(r.h, r.name); *r.dst == nil {
			dlClose(cudartH)
			dlClose(ncclH)
			return &LoadError{Library: r.spec.name, Path: r.path, Symbol: r.name}
		}
	}
	s.getLastError = dlSym(ncclH, "ncclGetLastError")             // optional: NCCL >= 2.13
	s.commInitRankConfig = dlSym(ncclH, "ncclCommInitRankConfig") // optional: NCCL >= 2.14
	library.sym, library.ncclH, library.cudartH = s, ncclH, cudartH
	library.ncclPath, library.cudartPath = ncclPath, cudartPath
	return nil
}

// Shutdown unloads the libraries. Communicators and device memory must have
// been released first; afterwards every call returns ErrNotLoaded until the
// next Init. A call still inside the library (a thread wedged in NCCL) keeps
// it loaded: Shutdown then gives up after shutdownWait and returns ErrBusy
// rather than block, and never stalls other calls while it waits.
func Shutdown() error {
	deadline := time.Now().Add(shutdownWait)
	for !library.mu.TryLock() {
		if time.Now().After(deadline) {
			return fmt.Errorf("nccl: shutdown after %v: %w", shutdownWait, ErrBusy)
		}
		time.Sleep(time.Millisecond)
	}
	defer library.mu.Unlock()
	if library.sym == nil {
		return nil
	}
	dlClose(library.cudartH)
	dlClose(library.ncclH)
	library.sym, library.ncclH, library.cudartH = nil, nil, nil
	library.ncclPath, library.cudartPath = "", ""
	return nil
}

// shutdownWait bounds how long Shutdown waits for calls inside the library.
const shutdownWait = time.Second

// Loaded reports whether Init has succeeded (and Shutdown not been called).
func Loaded() bool {
	library.mu.RLock()
	defer library.mu.RUnlock()
	return library.sym != nil
}

// LibraryPaths returns the paths Init opened (empty when not loaded).
func LibraryPaths() (ncclPath, cudartPath string) {
	library.mu.RLock()
	defer library.mu.RUnlock()
	return library.ncclPath, library.cudartPath
}

// with runs f with the loaded symbols, holding the read lock, or returns
// ErrNotLoaded.
func with(f func(s *symbols) error) error {
	library.mu.RLock()
	defer library.mu.RUnlock()
	if library.sym == nil {
		return ErrNotLoaded
	}
	return f(library.sym)
}

// errorString asks ncclGetErrorString; "" when not loaded.
func errorString(r Result) string {
	var text string
	_ = with(func(s *symbols) error { text = cErrString(s.getErrorString, int32(r)); return nil })
	return text
}

// cudaErrorString asks cudaGetErrorString; "" when not loaded.
func cudaErrorString(e CudaError) string {
	var text string
	_ = with(func(s *symbols) error { text = cErrString(s.cudaGetErrorString, int32(e)); return nil })
	return text
}
