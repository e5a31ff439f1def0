package nccl

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrNotLoaded is returned by every call made before a successful Init
	// (or after Shutdown).
	ErrNotLoaded = errors.New("nccl: library not loaded (call nccl.Init first)")
	// ErrLibraryNotFound is wrapped by the *LoadError that Init returns when
	// no candidate path of libnccl or libcudart could be opened.
	ErrLibraryNotFound = errors.New("nccl: shared library not found")
	// ErrMissingSymbol is wrapped by the *LoadError that Init returns when a
	// library opened but lacks a function this package needs (too old).
	ErrMissingSymbol = errors.New("nccl: required symbol missing from library")
	// ErrClosed is returned by calls on a communicator that was destroyed
	// or aborted.
	ErrClosed = errors.New("nccl: communicator destroyed or aborted")
	// ErrAborted is wrapped by every *AbortError: the watchdog aborted the
	// communicator, which is unusable afterwards.
	ErrAborted = errors.New("nccl: communicator aborted by watchdog")
	// ErrBusy is returned by Shutdown while a call is still inside the
	// library.
	ErrBusy = errors.New("nccl: a call is still inside the library")
	// ErrTimeout is the reason of an *AbortError when a collective did not
	// finish within the watchdog's per-collective timeout.
	ErrTimeout = errors.New("nccl: collective timed out")
)

// Result is ncclResult_t. Every value except Success is an error; its text
// comes from ncclGetErrorString when the library is loaded.
type Result int32

// ncclResult_t values (stable across NCCL 2.x).
const (
	Success            Result = 0
	UnhandledCudaError Result = 1
	SystemError        Result = 2
	InternalError      Result = 3
	InvalidArgument    Result = 4
	InvalidUsage       Result = 5
	RemoteError        Result = 6
	InProgress         Result = 7
)

// resultNames are used when the library is not loaded (and for String).
var resultNames = map[Result]string{
	Success:            "success",
	UnhandledCudaError: "unhandled CUDA error",
	SystemError:        "system error",
	InternalError:      "internal error",
	InvalidArgument:    "invalid argument",
	InvalidUsage:       "invalid usage",
	RemoteError:        "remote error",
	InProgress:         "operation in progress",
}

// String returns the short name of the result code.
func (r Result) String() string {
	if s, ok := resultNames[r]; ok {
		return s
	}
	return fmt.Sprintf("ncclResult(%d)", int32(r))
}

// Error returns "nccl: <ncclGetErrorString text> (ncclResult N)", falling
// back to the short name when the library is not loaded.
func (r Result) Error() string {
	text := r.String()
	if s := errorString(r); s != "" {
		text = s
	}
	return fmt.Sprintf("nccl: %s (ncclResult %d)", text, int32(r))
}

// resultErr converts a raw ncclResult_t into nil or a Result error.
func resultErr(code int32) error {
	if Result(code) == Success {
		return nil
	}
	return Result(code)
}

// CudaError is cudaError_t from the CUDA runtime. Its text comes from
// cudaGetErrorString when libcudart is loaded.
type CudaError int32

// cudaError_t values this package interprets.
const (
	CudaSuccess       CudaError = 0
	CudaErrorNotReady CudaError = 600
)

// Error returns "cuda: <cudaGetErrorString text> (cudaError N)".
func (e CudaError) Error() string {
	text := cudaErrorString(e)
	if text == "" {
		text = "error"
	}
	return fmt.Sprintf("cuda: %s (cudaError %d)", text, int32(e))
}

func cudaErr(code int32) error {
	if CudaError(code) == CudaSuccess {
		return nil
	}
	return CudaError(code)
}

// Attempt is one path Init tried to open, with the dlerror text.
type Attempt struct {
	Path    string
	DLError string
}

// LoadError tells why Init could not load a library: every place it looked
// and what dlopen said, or the symbol that was missing.
type LoadError struct {
	Library    string    // "libnccl" or "libcudart"
	Env        string    // the variable that overrides the search
	Overridden bool      // Env was set, and its path was the only one tried
	Sonames    []string  // the names searched for, newest first
	Tried      []Attempt // every dlopen that failed, in order: sonames, then files
	Empty      []string  // directories searched that hold none of the sonames
	Unmatched  []string  // patterns of Python installs that matched no directory
	Path       string    // the path that opened, when Symbol is set
	Symbol     string    // the missing symbol, if the library opened
}

// Error names the library and every place that was searched.
func (e *LoadError) Error() string {
	if e.Symbol != "" {
		return fmt.Sprintf("nccl: %s at %s lacks symbol %s (library too old?)", e.Library, e.Path, e.Symbol)
	}
	var b strings.Builder
	if e.Overridden {
		fmt.Fprintf(&b, "nccl: cannot load %s from %s:", e.Library, e.Env)
		for _, a := range e.Tried {
			fmt.Fprintf(&b, " %s (%s)", a.Path, a.DLError)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "nccl: cannot load %s: none of %s is loaded or found by the dynamic loader "+
		"(LD_LIBRARY_PATH at start, RUNPATH, /etc/ld.so.cache, /lib, /usr/lib)",
		e.Library, strings.Join(e.Sonames, ", "))
	var failed []string
	for _, a := range e.Tried {
		if a.DLError != a.Path+": cannot open shared object file: No such file or directory" {
			failed = append(failed, fmt.Sprintf("%s (%s)", a.Path, a.DLError))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "; failed to open %s", strings.Join(failed, "; "))
	}
	if len(e.Empty) > 0 {
		fmt.Fprintf(&b, "; not in %s", strings.Join(e.Empty, ", "))
	}
	if len(e.Unmatched) > 0 {
		fmt.Fprintf(&b, "; no directory matches %s", strings.Join(e.Unmatched, ", "))
	}
	fmt.Fprintf(&b, "; set %s or LD_LIBRARY_PATH", e.Env)
	return b.String()
}

// Unwrap returns ErrMissingSymbol or ErrLibraryNotFound.
func (e *LoadError) Unwrap() error {
	if e.Symbol != "" {
		return ErrMissingSymbol
	}
	return ErrLibraryNotFound
}
