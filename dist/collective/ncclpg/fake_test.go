package ncclpg

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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

// abortBound is the stated bound past a call's timeout: the watchdog's poll
// interval (2 ms) plus the fake's return once aborted (a condition variable
// wake-up), with a wide margin for a loaded 2-core machine. Calls are waited
// for (testkit.Within) for failAfter before the test fails.
const (
	abortBound = 2 * time.Second
	failAfter  = 30 * time.Second
)

// An NCCL call that blocks inside the library until ncclCommAbort (a peer
// died before the collective could launch) ends at the timeout, on a
// blocking communicator (the watchdog goroutine aborts it) and on a
// non-blocking one, and Close does not block afterwards.
func TestBlockedEnqueueEndsAtTheTimeout(t *testing.T) {
	for _, blocking := range []string{"1", "0"} {
		t.Run("blocking="+blocking, func(t *testing.T) {
			t.Setenv(nccl.EnvBlocking, blocking)
			const timeout = 100 * time.Millisecond
			g, logPath := newSolo(t, Config{Timeout: timeout})
			t.Setenv("FAKE_NCCL_ENQUEUE_BLOCK", "1")
			took, err := testkit.Within(t, failAfter, "AllReduce", func() error {
				return g.AllReduce(context.Background(), []float32{1, 2}, collective.Sum)
			})
			if !errors.Is(err, collective.ErrTimeout) || !errors.Is(err, nccl.ErrAborted) {
				t.Fatalf("AllReduce = %v, want ErrTimeout and an abort", err)
			}
			if took < timeout || took > timeout+abortBound {
				t.Errorf("AllReduce ended after %v, want within [%v, %v]", took, timeout, timeout+abortBound)
			}
			if took, err := testkit.Within(t, failAfter, "Close", g.Close); err != nil || took > abortBound {
				t.Errorf("Close = %v after %v", err, took)
			}
			log := readLog(t, logPath)
			if strings.Count(log, "ncclCommAbort") != 1 || strings.Contains(log, "ncclCommDestroy") {
				t.Errorf("want one abort and no destroy of the broken communicator:\n%s", log)
			}
		})
	}
}

func TestCloseDuringBlockedEnqueue(t *testing.T) {
	g, _ := newSolo(t, Config{Timeout: time.Minute})
	t.Setenv("FAKE_NCCL_ENQUEUE_BLOCK", "1")
	errc := make(chan error, 1)
	go func() { errc <- g.AllReduce(context.Background(), []float32{1}, collective.Sum) }()
	testkit.WaitFor(t, failAfter, "the all-reduce to be in flight", inExec(g))
	if took, err := testkit.Within(t, failAfter, "Close", g.Close); err != nil || took > abortBound {
		t.Errorf("Close = %v after %v, want nil within %v", err, took, abortBound)
	}
	if err := <-errc; !errors.Is(err, collective.ErrAborted) {
		t.Errorf("the call Close cut: %v, want ErrAborted", err)
	}
}

// A library that never returns, even once aborted, wedges the device
// thread: the call still ends at timeout + grace, and Close abandons the
// thread instead of waiting for it. It runs in a child process, since the
// wedged thread keeps the library loaded until the process exits.
func TestWedgedLibraryDoesNotBlockCallerOrClose(t *testing.T) {
	if os.Getenv("NCCLPG_WEDGED_CHILD") != "1" {
		if testing.Short() {
			t.Skip("starts a child process; runs without -short")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestWedgedLibraryDoesNotBlockCallerOrClose$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "NCCLPG_WEDGED_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestWedgedLibraryDoesNotBlockCallerOrClose") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	t.Setenv(nccl.EnvBlocking, "1")
	const timeout, grace = 100 * time.Millisecond, 200 * time.Millisecond
	g, _ := newSolo(t, Config{Timeout: timeout})
	g.grace = grace
	t.Setenv("FAKE_NCCL_ENQUEUE_BLOCK", "2")
	took, err := testkit.Within(t, failAfter, "AllReduce", func() error {
		return g.AllReduce(context.Background(), []float32{1}, collective.Sum)
	})
	if !errors.Is(err, collective.ErrTimeout) || !errors.Is(err, errWedged) || took > timeout+grace+abortBound {
		t.Fatalf("AllReduce = %v after %v, want a wedged timeout within %v", err, took, timeout+grace+abortBound)
	}
	if took, err := testkit.Within(t, failAfter, "Close", g.Close); !errors.Is(err, errWedged) || took > abortBound {
		t.Errorf("Close = %v after %v, want errWedged at once", err, took)
	}
}

// A non-blocking init that never completes (a rank that never arrives) is
// aborted at the timeout: New fails with ErrTimeout within the timeout plus
// abortBound, and the half-made communicator is aborted.
func TestInitInProgressForeverEndsAtTheTimeout(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "calls.log")
	t.Setenv("FAKE_NCCL_LOG", logPath)
	t.Setenv("FAKE_NCCL_INIT_PROGRESS", "-1")
	const timeout = 100 * time.Millisecond
	took, err := testkit.Within(t, failAfter, "New", func() error {
		g, err := New(context.Background(), Config{Size: 1, Timeout: timeout})
		if err == nil {
			_ = g.Close()
		}
		return err
	})
	if !errors.Is(err, collective.ErrTimeout) || took > timeout+abortBound {
		t.Fatalf("New = %v after %v, want ErrTimeout within %v", err, took, timeout+abortBound)
	}
	aborted := func() bool { b, _ := os.ReadFile(logPath); return strings.Contains(string(b), "ncclCommAbort") }
	testkit.WaitFor(t, failAfter, "the half-made communicator to be aborted", aborted)
}

// memStore is a Store in memory shared by ranks in one process.
type memStore struct {
	mu   sync.Mutex
	vals map[string][]byte
	set  chan struct{} // closed and replaced on every Publish
}

func newMemStore() *memStore { return &memStore{vals: map[string][]byte{}, set: make(chan struct{})} }

func (s *memStore) Publish(_ context.Context, key string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[key] = slices.Clone(v)
	close(s.set)
	s.set = make(chan struct{})
	return nil
}

func (s *memStore) Lookup(ctx context.Context, key string) ([]byte, error) {
	for {
		s.mu.Lock()
		v, ok := s.vals[key]
		set := s.set
		s.mu.Unlock()
		if ok {
			return v, nil
		}
		select {
		case <-set:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// An asynchronous error while no collective runs (a peer failing between
// steps) breaks the group within one poll interval, and the communicator
// is aborted, not destroyed.
func TestAsyncErrorBetweenCollectivesBreaksTheGroup(t *testing.T) {
	g, logPath := newSolo(t, Config{Timeout: time.Minute})
	if err := g.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_NCCL_ASYNC_ERROR", "6")
	start := time.Now()
	select {
	case <-g.life.Aborted().Done():
	case <-time.After(failAfter):
		t.Fatalf("no abort %v after the async error", failAfter)
	}
	if took := time.Since(start); took > asyncPoll+abortBound {
		t.Errorf("broke after %v, want within %v", took, asyncPoll+abortBound)
	}
	err := g.AllReduce(context.Background(), []float32{1}, collective.Sum)
	if !errors.Is(err, collective.ErrBroken) || !strings.Contains(err.Error(), "between collectives") {
		t.Errorf("AllReduce after the async error: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if log := readLog(t, logPath); strings.Count(log, "ncclCommAbort") != 1 || strings.Contains(log, "ncclCommDestroy") {
		t.Errorf("want one abort, no destroy:\n%s", log)
	}
}

// Two ranks in one process, each group on its own device thread, meet
// through the fake's shared directory: the unique id crosses the store and
// every collective computes the real two-rank result.
func TestTwoRanksComputeRealResults(t *testing.T) {
	groups := twoRanks(t)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	// Every rank runs the same sequence; results are exact in float32
	// (small integers and halves).
	type result struct {
		sum, avg, max, gathered, scattered []float32
		bcast                              []byte
	}
	results := make([]result, 2)
	ctx := context.Background()
	for r, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[r]
			mine := []float32{float32(r + 1), -0.5 * float32(r), 10}
			res.sum = slices.Clone(mine)
			errs[r] = g.AllReduce(ctx, res.sum, collective.Sum)
			res.avg = slices.Clone(mine)
			if errs[r] == nil {
				errs[r] = g.AllReduce(ctx, res.avg, collective.Avg)
			}
			res.max = slices.Clone(mine)
			if errs[r] == nil {
				errs[r] = g.AllReduce(ctx, res.max, collective.Max)
			}
			res.gathered = make([]float32, 6)
			if errs[r] == nil {
				errs[r] = g.AllGather(ctx, mine, res.gathered)
			}
			res.scattered = make([]float32, 2)
			if errs[r] == nil {
				errs[r] = g.ReduceScatter(ctx, []float32{1, 2, float32(3 * r), 4}, res.scattered, collective.Sum)
			}
			res.bcast = []byte{byte(r), byte(r), 7}
			if errs[r] == nil {
				errs[r] = g.Broadcast(ctx, res.bcast, 1)
			}
			if errs[r] == nil {
				errs[r] = g.Barrier(ctx)
			}
		}()
	}
	wg.Wait()
	for r, res := range results {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		checks := []struct {
			name      string
			got, want []float32
		}{
			{"sum", res.sum, []float32{3, -0.5, 20}},
			{"avg", res.avg, []float32{1.5, -0.25, 10}},
			{"max", res.max, []float32{2, 0, 10}},
			{"allgather", res.gathered, []float32{1, 0, 10, 2, -0.5, 10}},
			{"reducescatter", res.scattered, [][]float32{{2, 4}, {3, 8}}[r]},
		}
		for _, c := range checks {
			if !slices.Equal(c.got, c.want) {
				t.Errorf("rank %d %s = %v, want %v", r, c.name, c.got, c.want)
			}
		}
		if !slices.Equal(res.bcast, []byte{1, 1, 7}) {
			t.Errorf("rank %d broadcast from 1 = %v", r, res.bcast)
		}
	}
}

// twoRanks forms two ranks in this process, meeting through the fake's directory.
func twoRanks(t *testing.T) []*Group {
	t.Helper()
	t.Setenv("FAKE_NCCL_SHARED_DIR", t.TempDir())
	t.Setenv("FAKE_NCCL_LOG", filepath.Join(t.TempDir(), "calls.log"))
	store := newMemStore()
	groups := make([]*Group, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range groups {
		wg.Go(func() {
			groups[r], errs[r] = New(context.Background(), Config{Rank: r, Size: 2, Store: store, Name: "two", Timeout: 10 * time.Second})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: New: %v", r, err)
		}
		t.Cleanup(func() { _ = groups[r].Close() })
	}
	return groups
}

// AllGatherRaw gathers device memory in place (no staging), in rank order. The
// fake's "device" memory is host memory: this proves the calls and the layout,
// not the CUDA side.
func TestTwoRanksAllGatherRawOnDeviceMemory(t *testing.T) {
	const n = 1001
	groups := twoRanks(t)
	sends, recvs := make([]nccl.DevicePtr, 2), make([]nccl.DevicePtr, 2)
	want := make([][]byte, 2)
	for r := range groups {
		s, err := nccl.Malloc(n)
		rv, err2 := nccl.Malloc(2 * n)
		if err = errors.Join(err, err2); err != nil {
			t.Fatal(err)
		}
		sends[r], recvs[r] = s, rv
		t.Cleanup(func() { _ = nccl.Free(sends[r]); _ = nccl.Free(recvs[r]) })
		want[r] = make([]byte, n)
		for i := range want[r] {
			want[r][i] = byte(i*3 + r*101)
		}
		if err := nccl.CopyToDevice(sends[r], want[r]); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r, g := range groups {
		var raw collective.RawAllGatherer = g
		send, recv := *(*unsafe.Pointer)(unsafe.Pointer(&sends[r])), *(*unsafe.Pointer)(unsafe.Pointer(&recvs[r]))
		wg.Go(func() { errs[r] = raw.AllGatherRaw(context.Background(), send, recv, n, collective.Uint8) })
	}
	wg.Wait()
	for r := range groups {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		got := make([]byte, 2*n)
		if err := nccl.CopyFromDevice(got, recvs[r]); err != nil || !slices.Equal(got, slices.Concat(want...)) {
			t.Errorf("rank %d: gathered bytes are not rank 0's then rank 1's (%v)", r, err)
		}
	}
}

// ReduceScatterRaw reduces device memory in place (no staging): rank r gets
// block r of the elementwise sum. As above, the fake's "device" memory is host
// memory: this proves the calls and the layout, not the CUDA side.
func TestTwoRanksReduceScatterRawOnDeviceMemory(t *testing.T) {
	const n = 1001
	groups := twoRanks(t)
	sends, recvs := make([]nccl.DevicePtr, 2), make([]nccl.DevicePtr, 2)
	inputs := make([][]float32, 2)
	for r := range groups {
		s, err := nccl.Malloc(2 * n * 4)
		rv, err2 := nccl.Malloc(n * 4)
		if err = errors.Join(err, err2); err != nil {
			t.Fatal(err)
		}
		sends[r], recvs[r] = s, rv
		t.Cleanup(func() { _ = nccl.Free(sends[r]); _ = nccl.Free(recvs[r]) })
		inputs[r] = make([]float32, 2*n)
		for i := range inputs[r] {
			inputs[r][i] = float32(i%17 + 100*r)
		}
		if err := nccl.CopyToDevice(sends[r], inputs[r]); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r, g := range groups {
		var raw collective.RawReduceScatterer = g
		send, recv := *(*unsafe.Pointer)(unsafe.Pointer(&sends[r])), *(*unsafe.Pointer)(unsafe.Pointer(&recvs[r]))
		wg.Go(func() {
			errs[r] = raw.ReduceScatterRaw(context.Background(), send, recv, n, collective.Float32, collective.Sum)
		})
	}
	wg.Wait()
	for r := range groups {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		got := make([]float32, n)
		if err := nccl.CopyFromDevice(got, recvs[r]); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if want := inputs[0][r*n+i] + inputs[1][r*n+i]; got[i] != want {
				t.Fatalf("rank %d: element %d of its block is %v, want %v", r, i, got[i], want)
			}
		}
	}
}
