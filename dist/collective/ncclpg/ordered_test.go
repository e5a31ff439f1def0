package ncclpg

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/nccl"
)

// The fake libraries log every event call, stream synchronise and
// collective with the handles they received, in call order, so these tests
// read the order of the device work off the log.

// orderLine matches the log lines that order streams or run a collective.
var orderLine = regexp.MustCompile(`^(cudaEventRecord|cudaStreamWaitEvent|cudaStreamSynchronize|ncclAllReduce|ncclAllGather|ncclReduceScatter) `)

// commArg is the communicator handle in a collective's log line.
var commArg = regexp.MustCompile(` comm=0x[0-9a-f]+`)

// orderCalls returns the ordering and collective lines of the log, without
// the communicator handle.
func orderCalls(log string) []string {
	var out []string
	for line := range strings.Lines(log) {
		line = strings.TrimSpace(line)
		if orderLine.MatchString(line) {
			out = append(out, commArg.ReplaceAllString(line, ""))
		}
	}
	return out
}

// The caller's stream is recorded on and waited for by the group's stream
// before the all-reduce is enqueued there; after it, the group's stream is
// recorded on and the caller's stream waits. Nothing synchronises a stream
// or the device, the two events are made once, reused, and freed by Close.
func TestAllReduceRawOrderedEventsAroundTheCollective(t *testing.T) {
	g, logPath := newSolo(t, Config{Timeout: failAfter})
	data := []float64{1.5, -2, 4}
	p := unsafe.Pointer(&data[0])
	const caller = 0x5eed // a stream handle the fake passes through untouched
	for range 2 {
		if err := g.AllReduceRawOrdered(context.Background(), p, len(data), collective.Float64, collective.Sum, caller); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(data, []float64{1.5, -2, 4}) {
		t.Errorf("one rank's sum is the input, got %v", data)
	}
	ready, done, s := uintptr(g.events[0]), uintptr(g.events[1]), uintptr(g.stream)
	if ready == 0 || done == 0 || ready == done {
		t.Fatalf("events ready %#x, done %#x: want two distinct events", ready, done)
	}
	var want []string
	for i := 1; i <= 2; i++ {
		want = append(want,
			fmt.Sprintf("cudaEventRecord event=%#x stream=%#x", ready, caller),
			fmt.Sprintf("cudaStreamWaitEvent stream=%#x event=%#x recorded=%d", s, ready, i),
			fmt.Sprintf("ncclAllReduce send=%#x recv=%#x count=3 dt=8 op=0 root=0 stream=%#x", uintptr(p), uintptr(p), s),
			fmt.Sprintf("cudaEventRecord event=%#x stream=%#x", done, s),
			fmt.Sprintf("cudaStreamWaitEvent stream=%#x event=%#x recorded=%d", caller, done, i),
		)
	}
	if got := orderCalls(readLog(t, logPath)); !slices.Equal(got, want) {
		t.Errorf("device calls =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	log := readLog(t, logPath)
	if n := strings.Count(log, "cudaEventCreateWithFlags"); n != 2 || !strings.Contains(log, "flags=2") {
		t.Errorf("%d events made, want 2 with timing disabled (flags=2):\n%s", n, log)
	}
	for _, e := range []uintptr{ready, done} {
		if !strings.Contains(log, fmt.Sprintf("cudaEventDestroy event=%#x", e)) {
			t.Errorf("Close did not destroy event %#x:\n%s", e, log)
		}
	}
}

// A collective that never finishes still ends at the timeout with an
// abort, as every collective of the group does; the caller's stream is
// then not ordered after it (the group is broken), and Close does not block.
func TestAllReduceRawOrderedHungStreamTimesOut(t *testing.T) {
	g, logPath := newSolo(t, Config{Timeout: 100 * time.Millisecond})
	t.Setenv("FAKE_CUDA_STREAM_HANG", "1")
	data := []float32{1, 2}
	_, err := testkit.Within(t, failAfter, "AllReduceRawOrdered", func() error {
		return g.AllReduceRawOrdered(context.Background(), unsafe.Pointer(&data[0]), 2, collective.Float32, collective.Sum, 0)
	})
	if !errors.Is(err, collective.ErrTimeout) || !errors.Is(err, nccl.ErrAborted) {
		t.Fatalf("AllReduceRawOrdered on a hung stream = %v, want ErrTimeout and an abort", err)
	}
	if _, err := testkit.Within(t, failAfter, "Close", g.Close); err != nil {
		t.Errorf("Close after the abort: %v", err)
	}
	log := readLog(t, logPath)
	if strings.Count(log, "ncclCommAbort") != 1 || strings.Contains(log, "cudaStreamWaitEvent stream=0x0") {
		t.Errorf("want one abort and no wait of the caller's stream:\n%s", log)
	}
}

func TestAllReduceRawOrderedBadArguments(t *testing.T) {
	g, _ := newSolo(t, Config{Timeout: failAfter})
	v := []float32{1}
	p := unsafe.Pointer(&v[0])
	for _, bad := range []error{
		g.AllReduceRawOrdered(context.Background(), nil, 3, collective.Float32, collective.Sum, 0),
		g.AllReduceRawOrdered(context.Background(), p, 1, collective.Uint8, collective.Sum, 0),
		g.AllReduceRawOrdered(context.Background(), p, 1, collective.Float32, collective.ReduceOp(9), 0),
	} {
		if !errors.Is(bad, collective.ErrConfig) || !strings.Contains(bad.Error(), "stream-ordered") {
			t.Errorf("bad ordered call: %v, want ErrConfig naming the call", bad)
		}
	}
}

// Two ranks compute the real sum through the ordered path (exact in
// float32: small integers and halves).
func TestTwoRanksAllReduceRawOrdered(t *testing.T) {
	groups := twoRanks(t)
	bufs := [][]float32{{1, -0.5, 10}, {2, 0.5, -3}}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r, g := range groups {
		var red collective.StreamOrderedAllReducer = g
		wg.Go(func() {
			errs[r] = red.AllReduceRawOrdered(context.Background(), unsafe.Pointer(&bufs[r][0]), 3, collective.Float32, collective.Sum, 0)
		})
	}
	wg.Wait()
	for r := range groups {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if !slices.Equal(bufs[r], []float32{3, 0, 7}) {
			t.Errorf("rank %d: sum = %v, want [3 0 7]", r, bufs[r])
		}
	}
}
