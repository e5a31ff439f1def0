package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/internal/fakenccl"
	"github.com/lrtrain/lrtrain/nccl"
)

// On the fake libraries (one rank, host memory) every check must pass:
// this runs the whole check program except the GPU itself.
func TestChecksPassOnFakeLibraries(t *testing.T) {
	libs, err := fakenccl.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(nccl.EnvNCCLLibrary, libs.NCCL)
	t.Setenv(nccl.EnvCudartLibrary, libs.Cudart)
	var out bytes.Buffer
	code := run(&out, config{device: 0, count: 6, timeout: 5 * time.Second})
	t.Log("\n" + out.String())
	if code != exitPass || strings.Contains(out.String(), "FAIL") {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"INFO nccl 2.21.5 from " + libs.NCCL,
		"PASS comm queries: count=1 device=0 rank=0",
		"PASS allreduce bfloat16/avg: n=6 got [-3 -1.5 0 1.5 3 -3 99 99]",
		"PASS allreduce float16/sum: n=6 got [-3 -1.5 0 1.5 3 -3 99 99]",
		"PASS allreduce int64/min: n=6 got [-6 -3 0 3 6 -6 99 99]",
		"PASS allgather float32", "PASS broadcast int64 root=0", "PASS reducescatter float32/sum",
		"PASS reduce float32/sum root=0", "PASS grouped allreduce float64/sum",
		"PASS allreduce float32/sum in place: n=6 got [-3 -1.5 0 1.5 3 -3]",
		"PASS allreduce float32/sum in place, ordered by events: n=6 got [-3 -1.5 0 1.5 3 -3]",
		"PASS allgather float32, ordered by events", "PASS reducescatter float32/sum, ordered by events",
		"PASS all checks",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestMissingLibraryIsASetupFailure(t *testing.T) {
	t.Setenv(nccl.EnvNCCLLibrary, filepath.Join(t.TempDir(), "libnccl.so.2"))
	var out bytes.Buffer
	if code := run(&out, config{count: 4, timeout: time.Second}); code != exitSetup {
		t.Fatalf("exit %d, want %d; output:\n%s", code, exitSetup, out.String())
	}
	if !strings.HasPrefix(out.String(), "FAIL init: nccl: cannot load libnccl") {
		t.Errorf("output %q", out.String())
	}
}

// A fake whose stream never finishes makes every wait time out: the check
// reports the watchdog's error instead of hanging.
func TestHungCollectivesFailWithTheWatchdogError(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, waits out a watchdog; runs without -short")
	}
	libs, err := fakenccl.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(nccl.EnvNCCLLibrary, libs.NCCL)
	t.Setenv(nccl.EnvCudartLibrary, libs.Cudart)
	t.Setenv("FAKE_CUDA_STREAM_HANG", "1")
	var out bytes.Buffer
	code := run(&out, config{count: 2, timeout: 20 * time.Millisecond})
	if code != exitFail {
		t.Fatalf("exit %d, want %d", code, exitFail)
	}
	// The first wait aborts the communicator; later checks report it closed.
	if !strings.Contains(out.String(), "FAIL allreduce float32/sum: nccl: allreduce float32/sum on rank 0 aborted after") ||
		!strings.Contains(out.String(), "communicator destroyed or aborted") {
		t.Errorf("output:\n%s", out.String())
	}
}

// The binary must run where Go and libtorch are absent and NCCL is found at
// run time: no dynamic dependency on libnccl, libcudart or libtorch.
func TestBinaryLinksNoGPUOrTorchLibrary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; runs without -short")
	}
	ldd, err := exec.LookPath("ldd")
	if err != nil {
		t.Skip("no ldd")
	}
	bin := filepath.Join(t.TempDir(), "nccl-check")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(ldd, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("ldd: %v\n%s", err, out)
	}
	for _, lib := range []string{"libnccl", "libcudart", "libcuda.", "libtorch", "libc10"} {
		if strings.Contains(string(out), lib) {
			t.Errorf("nccl-check depends on %s:\n%s", lib, out)
		}
	}
}

func TestWrongResultIsReportedWithValues(t *testing.T) {
	var out bytes.Buffer
	c := &checker{w: &out}
	want := encode(nccl.Float32, []float64{1, 2, 99})
	c.report("allreduce float32/sum", nccl.Float32, 2, encode(nccl.Float32, []float64{1, 2.5, 99}), want, 0)
	if c.failed != 1 || out.String() != "FAIL allreduce float32/sum: n=2 got [1 2.5 99] want [1 2 99]\n" {
		t.Errorf("failed=%d output %q", c.failed, out.String())
	}
}

// Half-precision encodings checked against IEEE 754 binary16/bfloat16 bit
// patterns worked out by hand.
func TestHalfEncodings(t *testing.T) {
	for x, bits := range map[float64]uint16{1.5: 0x3e00, -3: 0xc200, 99: 0x5630, 0: 0} {
		if got := le.Uint16(encode(nccl.Float16, []float64{x})); got != bits {
			t.Errorf("float16(%v) = %#04x, want %#04x", x, got, bits)
		}
		if back := decode(nccl.Float16, encode(nccl.Float16, []float64{x}))[0]; back != x {
			t.Errorf("float16 round trip of %v = %v", x, back)
		}
	}
	if got := le.Uint16(encode(nccl.BFloat16, []float64{1.5})); got != 0x3fc0 {
		t.Errorf("bfloat16(1.5) = %#04x, want 0x3fc0", got)
	}
}

// TestMain lets the test binary stand in for nccl-check when the launcher
// starts it as a rank.
func TestMain(m *testing.M) {
	if os.Getenv("NCCL_CHECK_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// Three ranks in three processes on the fake libraries, which meet through
// their shared directory and compute real three-rank results: the launch,
// the id exchange through the exchange directory, every value check, the
// bandwidth lines and the abort check run as on GPUs. NCCL's transports and
// the bandwidth of real links are not exercised.
func TestThreeProcessesOnFakeLibraries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes twice; runs without -short")
	}
	libs, err := fakenccl.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Non-blocking communicators (the fake is NCCL 2.21), then blocking ones
	// as on NCCL < 2.14, where the watchdog goroutine does the abort.
	for _, blocking := range []string{"0", "1"} {
		t.Run("blocking="+blocking, func(t *testing.T) {
			t.Setenv(nccl.EnvBlocking, blocking)
			threeProcesses(t, libs, blocking == "0")
		})
	}
}

func threeProcesses(t *testing.T, libs fakenccl.Libs, nonBlocking bool) {
	t.Setenv(nccl.EnvNCCLLibrary, libs.NCCL)
	t.Setenv(nccl.EnvCudartLibrary, libs.Cudart)
	t.Setenv("FAKE_NCCL_SHARED_DIR", t.TempDir())
	t.Setenv("FAKE_CUDA_DEVICES", "3")
	t.Setenv("NCCL_CHECK_AS_MAIN", "1")
	var out bytes.Buffer
	code := launch(&out, config{nprocs: 3, count: 6, timeout: 20 * time.Second,
		abortTimeout: 300 * time.Millisecond, sizes: []int{4096}, iters: 2, exe: os.Args[0]})
	t.Log("\n" + out.String())
	if code != exitPass {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"[rank 2] PASS comm queries: count=3 device=2 rank=2",
		fmt.Sprintf("[rank 1] INFO communicator non-blocking: %v", nonBlocking),
		// Rank r sends i%5*1.5-3+r: the sum over ranks 0-2 is 3*(i%5*1.5-3)+3.
		"[rank 1] PASS allreduce float32/sum: n=6 got [-6 -1.5 3 7.5 12 -6 99 99]",
		"[rank 0] PASS allreduce bfloat16/avg: n=6 got [-2 -0.5 1 2.5 4 -2 99 99]",
		// Prod inputs are 1+(i+r)%2.
		"[rank 2] PASS allreduce int32/prod: n=6 got [2 4 2 4 2 4 99 99]",
		"[rank 1] PASS reduce float32/sum root=0: n=6 got [99 99 99 99 99 99 99 99]",
		"[rank 0] PASS reduce float32/sum root=0: n=6 got [-6 -1.5 3 7.5 12 -6 99 99]",
		"[rank 2] PASS allgather float32: n=6 got [-3 -1.5 0 1.5 3 -3 -2 -0.5 1 2.5]",
		"[rank 2] PASS broadcast int64 root=0: n=6 got [-6 -3 0 3 6 -6 99 99]",
		// Block 1 (elements 6-11) of the sum.
		"[rank 1] PASS reducescatter float32/sum: n=6 got [-1.5 3 7.5 12 -6 -1.5 99 99]",
		"[rank 0] BW allreduce     size=4096 count=1024",
		"[rank 1] BW allgather     size=4092 count=341",
		"[rank 1] PASS abort of a collective a peer never joins: aborted after",
		"[rank 0] PASS abort of a collective a peer never joins: rank 0 stays out",
		"SUMMARY PASS nccl-check: 3 rank(s), every check passed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Count(out.String(), "PASS all checks") != 3 || strings.Contains(out.String(), "FAIL") {
		t.Errorf("want three clean ranks")
	}
}

// A rank that fails makes the summary fail and names it.
func TestSummaryNamesFailedRanks(t *testing.T) {
	var out bytes.Buffer
	if code := summarise(&out, 3, []int{0, 1, 2}); code != exitSetup ||
		out.String() != "SUMMARY FAIL nccl-check: 3 rank(s); rank 1 exit 1, rank 2 exit 2\n" {
		t.Errorf("exit %d, %q", code, out.String())
	}
}

// Bus bandwidth factors and message layouts as nccl-tests defines them.
func TestBusBandwidthAsNCCLTests(t *testing.T) {
	for _, c := range []struct {
		op     string
		n      int
		factor float64
	}{
		{"allreduce", 8, 1.75}, {"allreduce", 2, 1}, {"allgather", 4, 0.75},
		{"reducescatter", 2, 0.5}, {"broadcast", 8, 1}, {"allreduce", 1, 0},
	} {
		if got := busFactor(c.op, c.n); math.Abs(got-c.factor) > 1e-15 {
			t.Errorf("busFactor(%s, %d) = %v, want %v", c.op, c.n, got, c.factor)
		}
	}
	for _, c := range []struct {
		op                  string
		size, n             int
		count, sendB, recvB int
	}{
		{"allreduce", 1 << 20, 4, 1 << 18, 1 << 20, 1 << 20},
		{"allgather", 1 << 20, 4, 1 << 16, 1 << 18, 1 << 20},
		{"reducescatter", 1 << 20, 4, 1 << 16, 1 << 20, 1 << 18},
		{"broadcast", 1 << 20, 4, 1 << 18, 1 << 20, 1 << 20},
	} {
		count, s, r := layout(c.op, c.size, c.n)
		if count != c.count || s != c.sendB || r != c.recvB {
			t.Errorf("layout(%s, %d, %d) = %d, %d, %d", c.op, c.size, c.n, count, s, r)
		}
	}
	if got := fmt.Sprint(parseSizes("1K, 2M,3G")); got != "[1024 2097152 3221225472] <nil>" {
		t.Errorf("parseSizes = %s", got)
	}
}
