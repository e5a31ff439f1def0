package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/internal/fakenccl"
	"github.com/lrtrain/lrtrain/nccl"
)

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
	libs, err := fakenccl.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
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
