package nccl

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

// Environment variables that override the library search. When one is set,
// only that path is tried.
const (
	EnvNCCLLibrary   = "LRTRAIN_NCCL_LIBRARY"
	EnvCudartLibrary = "LRTRAIN_CUDART_LIBRARY"
)

// libSpec says how to find one library.
type libSpec struct {
	name     string   // "libnccl" or "libcudart", for messages
	env      string   // override variable
	sonames  []string // tried by bare name first (ld.so cache, RUNPATH)
	pipDir   string   // under site-packages, e.g. nvidia/nccl/lib
	cudaHome bool     // also try $CUDA_HOME/lib64 and $CUDA_PATH/lib64
}

var (
	ncclSpec = libSpec{
		name: "libnccl", env: EnvNCCLLibrary,
		sonames: []string{"libnccl.so.2", "libnccl.so"},
		pipDir:  "nvidia/nccl/lib",
	}
	cudartSpec = libSpec{
		name: "libcudart", env: EnvCudartLibrary,
		sonames:  []string{"libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0", "libcudart.so"},
		pipDir:   "nvidia/cuda_runtime/lib",
		cudaHome: true,
	}
)

func overrideEnv(library string) string {
	if library == cudartSpec.name {
		return cudartSpec.env
	}
	return ncclSpec.env
}

// searchPaths lists the candidates for spec in the order Init tries them:
// the override alone if set; otherwise each soname bare (the dynamic
// loader's own search), then in every LD_LIBRARY_PATH directory, then in
// pip's layout under every site-packages directory that the environment
// names (VIRTUAL_ENV, CONDA_PREFIX, PYTHONPATH, PYTHONHOME), then CUDA_HOME.
// getenv and glob are parameters so that tests can pin the environment.
func searchPaths(spec libSpec, getenv func(string) string, glob func(string) ([]string, error)) []string {
	if p := getenv(spec.env); p != "" {
		return []string{p}
	}
	var dirs []string
	dirs = append(dirs, filepath.SplitList(getenv("LD_LIBRARY_PATH"))...)
	for _, sp := range sitePackages(getenv, glob) {
		dirs = append(dirs, filepath.Join(sp, filepath.FromSlash(spec.pipDir)))
	}
	if spec.cudaHome {
		for _, v := range []string{"CUDA_HOME", "CUDA_PATH"} {
			if h := getenv(v); h != "" {
				dirs = append(dirs, filepath.Join(h, "lib64"))
			}
		}
	}
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, so := range spec.sonames {
		add(so)
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		for _, so := range spec.sonames {
			add(filepath.Join(d, so))
		}
	}
	return out
}

// sitePackages returns the Python site-packages directories named by the
// environment, in a stable order.
func sitePackages(getenv func(string) string, glob func(string) ([]string, error)) []string {
	var out []string
	for _, v := range []string{"VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME"} {
		root := getenv(v)
		if root == "" {
			continue
		}
		for _, sub := range []string{"site-packages", "dist-packages"} {
			m, _ := glob(filepath.Join(root, "lib", "python3*", sub))
			out = append(out, m...)
		}
	}
	for _, p := range filepath.SplitList(getenv("PYTHONPATH")) {
		if strings.HasSuffix(p, "site-packages") || strings.HasSuffix(p, "dist-packages") {
			out = append(out, p)
		}
	}
	return out
}

// openFirst dlopens the first candidate that opens.
func openFirst(spec libSpec, paths []string) (unsafe.Pointer, string, error) {
	var tried []Attempt
	for _, p := range paths {
		h, msg := dlOpen(p)
		if h != nil {
			return h, p, nil
		}
		tried = append(tried, Attempt{Path: p, DLError: msg})
	}
	return nil, "", &LoadError{Library: spec.name, Tried: tried}
}

// symbols holds the function pointers resolved by Init.
type symbols struct {
	getVersion, getUniqueID, commInitRank, commDestroy, commAbort               unsafe.Pointer
	commGetAsyncError, getErrorString, getLastError                             unsafe.Pointer
	commCount, commCuDevice, commUserRank                                       unsafe.Pointer
	allReduce, reduce, broadcast, allGather, reduceScatter                      unsafe.Pointer
	groupStart, groupEnd                                                        unsafe.Pointer
	cudaGetDeviceCount, cudaSetDevice, cudaGetDevice                            unsafe.Pointer
	cudaMalloc, cudaFree, cudaMemcpy, cudaGetErrorString                        unsafe.Pointer
	cudaStreamCreate, cudaStreamDestroy, cudaStreamSynchronize, cudaStreamQuery unsafe.Pointer
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
	ncclH, ncclPath, err := openFirst(ncclSpec, searchPaths(ncclSpec, os.Getenv, filepath.Glob))
	if err != nil {
		return err
	}
	cudartH, cudartPath, err := openFirst(cudartSpec, searchPaths(cudartSpec, os.Getenv, filepath.Glob))
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
	}
	for _, r := range required {
		if *r.dst = dlSym(r.h, r.name); *r.dst == nil {
			dlClose(cudartH)
			dlClose(ncclH)
			return &LoadError{Library: r.spec.name, Path: r.path, Symbol: r.name}
		}
	}
	s.getLastError = dlSym(ncclH, "ncclGetLastError") // optional: NCCL >= 2.13
	library.sym, library.ncclH, library.cudartH = s, ncclH, cudartH
	library.ncclPath, library.cudartPath = ncclPath, cudartPath
	return nil
}

// Shutdown unloads the libraries. Communicators and device memory must have
// been released first; afterwards every call returns ErrNotLoaded until the
// next Init.
func Shutdown() error {
	library.mu.Lock()
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
