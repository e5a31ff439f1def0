package nccl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// These tests load the fake libnccl/libcudart (internal/fakenccl) through
// the real Init: dlopen, dlsym and the cgo trampolines, including the
// by-value unique id. The fake logs the arguments it receives.

// loadFakes initialises the package on the fakes and returns the path of
// the fake's call log.
func loadFakes(t *testing.T) string {
	t.Helper()
	requireUnloaded(t)
	logPath := filepath.Join(t.TempDir(), "calls.log")
	t.Setenv(EnvNCCLLibrary, fakes.NCCL)
	t.Setenv(EnvCudartLibrary, fakes.Cudart)
	t.Setenv("FAKE_NCCL_LOG", logPath)
	if err := Init(); err != nil {
		t.Fatalf("Init on the fakes: %v", err)
	}
	t.Cleanup(func() { _ = Shutdown() })
	return logPath
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func newFakeComm(t *testing.T) *Comm {
	t.Helper()
	id, err := GetUniqueID()
	if err != nil {
		t.Fatal(err)
	}
	c, err := CommInitRank(1, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Destroy() })
	return c
}

func TestFakeLibraryLoadsAndReportsVersion(t *testing.T) {
	loadFakes(t)
	if err := Init(); err != nil {
		t.Fatalf("a second Init must be a no-op: %v", err)
	}
	v, err := GetVersion()
	if err != nil || v != 22105 || VersionString(v) != "2.21.5" {
		t.Fatalf("GetVersion = %d, %v", v, err)
	}
	n, c := LibraryPaths()
	if n != fakes.NCCL || c != fakes.Cudart {
		t.Errorf("LibraryPaths = %s, %s", n, c)
	}
	// Loaded, Result texts come from ncclGetErrorString.
	if got := InvalidArgument.Error(); got != "nccl: fake: bad argument (ncclResult 4)" {
		t.Errorf("Result text = %q", got)
	}
	if got := CudaError(101).Error(); got != "cuda: fake cuda: no such device (cudaError 101)" {
		t.Errorf("CudaError text = %q", got)
	}
}

func TestFakeUniqueIDCrossesByValue(t *testing.T) {
	logPath := loadFakes(t)
	id, err := GetUniqueID()
	if err != nil {
		t.Fatal(err)
	}
	c, err := CommInitRank(1, id, 0)
	if err != nil {
		t.Fatalf("CommInitRank with an intact id: %v", err)
	}
	if !strings.Contains(readLog(t, logPath), fmt.Sprintf("ncclCommInitRank nranks=1 rank=0 id0=%d", id[0])) {
		t.Errorf("log lacks the init call:\n%s", readLog(t, logPath))
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	// The fake checks all 128 bytes: the last one is seen too.
	id[127]++
	_, err = CommInitRank(1, id, 0)
	if !errors.Is(err, InvalidArgument) {
		t.Fatalf("corrupted id: err = %v, want InvalidArgument", err)
	}
	// Round trip through the hex form used in etcd.
	id[127]--
	back, _ := ParseUniqueID(id.String())
	c2, err := CommInitRank(1, back, 0)
	if err != nil {
		t.Fatalf("id after hex round trip: %v", err)
	}
	_ = c2.Destroy()
}

func TestFakeCommQueriesAndRelease(t *testing.T) {
	logPath := loadFakes(t)
	c := newFakeComm(t)
	for name, q := range map[string]func() (int, error){"Count": c.Count, "CuDevice": c.CuDevice, "UserRank": c.UserRank} {
		want := map[string]int{"Count": 1, "CuDevice": 0, "UserRank": 0}[name]
		if v, err := q(); err != nil || v != want {
			t.Errorf("%s = %d, %v; want %d", name, v, err, want)
		}
	}
	if err := c.AsyncError(); err != nil {
		t.Errorf("healthy AsyncError = %v", err)
	}
	t.Setenv("FAKE_NCCL_ASYNC_ERROR", "6")
	if err := c.AsyncError(); !errors.Is(err, RemoteError) {
		t.Errorf("AsyncError = %v, want RemoteError", err)
	}
	if err := c.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(); !errors.Is(err, ErrClosed) {
		t.Errorf("Destroy after Abort = %v, want ErrClosed", err)
	}
	if err := c.AllReduce(1, 1, 1, Float32, Sum, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("AllReduce after Abort = %v, want ErrClosed", err)
	}
	if log := readLog(t, logPath); strings.Count(log, "ncclCommAbort") != 1 || strings.Contains(log, "ncclCommDestroy") {
		t.Errorf("want exactly one abort reaching the library and no destroy:\n%s", log)
	}
}

func TestFakeCollectivesPassArgumentsThrough(t *testing.T) {
	logPath := loadFakes(t)
	c := newFakeComm(t)
	s, err := StreamCreate()
	if err != nil {
		t.Fatal(err)
	}
	defer StreamDestroy(s)
	src := []float64{1.5, -2, 3.25, 4}
	send := onDevice(t, src)
	type call struct {
		name string
		run  func(recv DevicePtr) error
		n    int
		log  string
	}
	calls := []call{
		{"allreduce", func(r DevicePtr) error { return c.AllReduce(send, r, 4, Float64, Avg, s) }, 4,
			"ncclAllReduce send=%#x recv=%#x count=4 dt=8 op=4 root=0 comm=%#x stream=%#x"},
		{"reduce", func(r DevicePtr) error { return c.Reduce(send, r, 3, Float64, Max, 0, s) }, 3,
			"ncclReduce send=%#x recv=%#x count=3 dt=8 op=2 root=0 comm=%#x stream=%#x"},
		{"broadcast", func(r DevicePtr) error { return c.Broadcast(send, r, 2, Float64, 0, s) }, 2,
			"ncclBroadcast send=%#x recv=%#x count=2 dt=8 op=0 root=0 comm=%#x stream=%#x"},
		{"allgather", func(r DevicePtr) error { return c.AllGather(send, r, 4, Float64, s) }, 4,
			"ncclAllGather send=%#x recv=%#x count=4 dt=8 op=0 root=0 comm=%#x stream=%#x"},
		{"reducescatter", func(r DevicePtr) error { return c.ReduceScatter(send, r, 1, Float64, Min, s) }, 1,
			"ncclReduceScatter send=%#x recv=%#x count=1 dt=8 op=3 root=0 comm=%#x stream=%#x"},
	}
	for _, cl := range calls {
		recv := onDevice(t, []float64{9, 9, 9, 9})
		if err := cl.run(recv); err != nil {
			t.Fatalf("%s: %v", cl.name, err)
		}
		if err := WaitStream(context.Background(), c, s, time.Second); err != nil {
			t.Fatalf("%s: wait: %v", cl.name, err)
		}
		got := make([]float64, 4)
		if err := CopyFromDevice(got, recv); err != nil {
			t.Fatal(err)
		}
		// One rank: the first n elements are the input, the rest untouched.
		for i := range got {
			want := 9.0
			if i < cl.n {
				want = src[i]
			}
			if got[i] != want {
				t.Errorf("%s: recv = %v, want first %d of %v then 9s", cl.name, got, cl.n, src)
				break
			}
		}
		line := fmt.Sprintf(cl.log, uintptr(send), uintptr(recv), c.h, uintptr(s))
		if !strings.Contains(readLog(t, logPath), line) {
			t.Errorf("%s: log lacks %q:\n%s", cl.name, line, readLog(t, logPath))
		}
	}
}

func TestFakeCollectiveErrorsNameTheCall(t *testing.T) {
	loadFakes(t)
	c := newFakeComm(t)
	err := c.Broadcast(1, 1, 1, Float32, 1, 0)
	if !errors.Is(err, InvalidArgument) || !strings.Contains(err.Error(), "broadcast") {
		t.Errorf("root 1 of 1: %v", err)
	}
	if err := c.AllReduce(1, 1, 1, DataType(12), Sum, 0); !errors.Is(err, InvalidArgument) {
		t.Errorf("bad dtype: %v", err)
	}
	// A null buffer passes Go's checks and is refused by the library, whose
	// own text is in the message.
	err = c.AllGather(0, 0, 4, Int32, 0)
	if !errors.Is(err, InvalidArgument) || !strings.Contains(err.Error(), "allgather 4×int32 (rank 0): nccl: fake: bad argument") {
		t.Errorf("null buffers: %v", err)
	}
	if !strings.Contains(c.LastError(), "null buffer") {
		t.Errorf("LastError = %q", c.LastError())
	}
}

func TestFakeGroupCalls(t *testing.T) {
	loadFakes(t)
	if err := GroupEnd(); !errors.Is(err, InvalidUsage) {
		t.Errorf("GroupEnd without GroupStart = %v, want InvalidUsage", err)
	}
	if err := GroupStart(); err != nil {
		t.Fatal(err)
	}
	if err := GroupEnd(); err != nil {
		t.Fatal(err)
	}
}

func TestFakeCudaRuntime(t *testing.T) {
	loadFakes(t)
	t.Setenv("FAKE_CUDA_DEVICES", "2")
	if n, err := DeviceCount(); err != nil || n != 2 {
		t.Fatalf("DeviceCount = %d, %v", n, err)
	}
	if err := SetDevice(2); !errors.Is(err, CudaError(101)) {
		t.Errorf("SetDevice(2) of 2 = %v, want cudaError 101", err)
	}
	ints := []int32{7, -1, 1 << 30}
	a := onDevice(t, ints)
	b, err := Malloc(12)
	if err != nil {
		t.Fatal(err)
	}
	defer Free(b)
	if err := CopyDeviceToDevice(b, a, 12); err != nil {
		t.Fatal(err)
	}
	got := make([]int32, 3)
	if err := CopyFromDevice(got, b); err != nil || got[0] != 7 || got[1] != -1 || got[2] != 1<<30 {
		t.Errorf("round trip = %v, %v", got, err)
	}
	s, _ := StreamCreate()
	defer StreamDestroy(s)
	if done, err := StreamQuery(s); done || err != nil {
		t.Errorf("fresh fake stream: done %v err %v; want not ready", done, err)
	}
	if err := StreamSynchronize(s); err != nil {
		t.Error(err)
	}
}

func TestFakeWaitStreamAbortsHungCollective(t *testing.T) {
	logPath := loadFakes(t)
	c := newFakeComm(t)
	s, _ := StreamCreate()
	defer StreamDestroy(s)
	handle := c.h
	t.Setenv("FAKE_CUDA_STREAM_HANG", "1")
	start := time.Now()
	err := WaitStream(context.Background(), c, s, 40*time.Millisecond)
	if !errors.Is(err, ErrTimeout) || time.Since(start) > 40*time.Millisecond+slack {
		t.Fatalf("WaitStream = %v after %v", err, time.Since(start))
	}
	if !strings.Contains(readLog(t, logPath), fmt.Sprintf("ncclCommAbort comm=%#x", handle)) {
		t.Errorf("abort did not reach the library:\n%s", readLog(t, logPath))
	}
	if err := c.AsyncError(); !errors.Is(err, ErrClosed) {
		t.Errorf("after the watchdog's abort: %v, want ErrClosed", err)
	}
}

func TestFakeWaitStreamAbortsOnAsyncError(t *testing.T) {
	loadFakes(t)
	c := newFakeComm(t)
	s, _ := StreamCreate()
	defer StreamDestroy(s)
	t.Setenv("FAKE_CUDA_STREAM_HANG", "1")
	t.Setenv("FAKE_NCCL_ASYNC_ERROR", "2")
	err := WaitStream(context.Background(), c, s, time.Minute)
	if !errors.Is(err, SystemError) || !errors.Is(err, ErrAborted) {
		t.Fatalf("WaitStream = %v, want SystemError, aborted", err)
	}
}

// onDevice copies v into new device memory, freed when the test ends.
func onDevice[T Scalar](t *testing.T, v []T) DevicePtr {
	t.Helper()
	var zero T
	p, err := Malloc(int(unsafe.Sizeof(zero)) * len(v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Free(p) })
	if err := CopyToDevice(p, v); err != nil {
		t.Fatal(err)
	}
	return p
}

// commInit makes a one-rank communicator through CommInit (the caller destroys it).
func commInit(t *testing.T) *Comm {
	t.Helper()
	id, err := GetUniqueID()
	if err != nil {
		t.Fatal(err)
	}
	c, err := CommInit(context.Background(), 1, id, 0, time.Second)
	if err != nil {
		t.Fatalf("CommInit: %v", err)
	}
	return c
}
