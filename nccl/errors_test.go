package nccl

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestResultErrorTextWithoutLibrary(t *testing.T) {
	requireUnloaded(t)
	cases := map[Result]string{
		InvalidArgument:    "nccl: invalid argument (ncclResult 4)",
		UnhandledCudaError: "nccl: unhandled CUDA error (ncclResult 1)",
		RemoteError:        "nccl: remote error (ncclResult 6)",
		Result(42):         "nccl: ncclResult(42) (ncclResult 42)",
	}
	for r, want := range cases {
		if got := r.Error(); got != want {
			t.Errorf("%d.Error() = %q, want %q", int32(r), got, want)
		}
	}
	if resultErr(0) != nil {
		t.Error("ncclSuccess must map to a nil error")
	}
	err := fmt.Errorf("nccl: allreduce: %w", resultErr(5))
	var r Result
	if !errors.As(err, &r) || r != InvalidUsage || !errors.Is(err, InvalidUsage) {
		t.Errorf("a wrapped Result must be recoverable with errors.As/Is, got %v", err)
	}
}

func TestCudaErrorTextWithoutLibrary(t *testing.T) {
	requireUnloaded(t)
	if got, want := CudaError(2).Error(), "cuda: error (cudaError 2)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if cudaErr(0) != nil {
		t.Error("cudaSuccess must map to a nil error")
	}
}

func TestLoadErrorNamesEveryAttempt(t *testing.T) {
	e := &LoadError{Library: "libnccl", Env: EnvNCCLLibrary, Sonames: ncclSpec.sonames, Tried: []Attempt{
		{"libnccl.so.2", "libnccl.so.2: cannot open shared object file"},
		{"/opt/x/libnccl.so.2", "/opt/x/libnccl.so.2: no such file"},
	}}
	msg := e.Error()
	for _, want := range []string{"libnccl.so.2: cannot open", "/opt/x/libnccl.so.2 (", EnvNCCLLibrary, "libnccl.so.2, libnccl.so"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if !errors.Is(e, ErrLibraryNotFound) || errors.Is(e, ErrMissingSymbol) {
		t.Error("a LoadError without a symbol must be ErrLibraryNotFound only")
	}
	m := &LoadError{Library: "libcudart", Path: "/x/libcudart.so", Symbol: "cudaStreamQuery"}
	if !errors.Is(m, ErrMissingSymbol) || !strings.Contains(m.Error(), "cudaStreamQuery") {
		t.Errorf("missing symbol error: %v", m)
	}
}

func TestVersionString(t *testing.T) {
	for code, want := range map[int]string{22105: "2.21.5", 21003: "2.10.3", 2804: "2.8.4", 20903: "2.9.3"} {
		if got := VersionString(code); got != want {
			t.Errorf("VersionString(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestUniqueIDHexRoundTrip(t *testing.T) {
	var id UniqueID
	for i := range id {
		id[i] = byte(i * 3)
	}
	back, err := ParseUniqueID(id.String())
	if err != nil || back != id {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := ParseUniqueID("abcd"); !errors.Is(err, InvalidArgument) {
		t.Errorf("short id: err = %v", err)
	}
	if _, err := ParseUniqueID(strings.Repeat("zz", 128)); !errors.Is(err, InvalidArgument) {
		t.Errorf("non-hex id: err = %v", err)
	}
}
