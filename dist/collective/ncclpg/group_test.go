package ncclpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

// slack bounds how late a failure may be reported on a busy 2-core machine.
const slack = 500 * time.Millisecond

// newSolo makes a one-rank group on the fakes; the fake logs its calls to
// the returned file.
func newSolo(t *testing.T, cfg Config) (*Group, string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "calls.log")
	t.Setenv("FAKE_NCCL_LOG", logPath)
	cfg.Size = 1
	g, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g, logPath
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func seq(n int, off float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = off + float32(i)*0.5 - 3
	}
	return v
}

// With one rank every reduction is the identity, so each collective must
// hand back exactly its input: this checks the staging copies both ways,
// the growth of the buffers and the element counts passed to NCCL.
func TestCollectivesRoundTripThroughStaging(t *testing.T) {
	g, logPath := newSolo(t, Config{Timeout: 5 * time.Second})
	ctx := context.Background()
	if g.Rank() != 0 || g.Size() != 1 || g.Device() != 0 {
		t.Fatalf("rank %d size %d device %d", g.Rank(), g.Size(), g.Device())
	}
	for _, n := range []int{3, 1000, 17} { // grow, then reuse a larger buffer
		for _, op := range []collective.ReduceOp{collective.Sum, collective.Avg, collective.Max, collective.Min} {
			want := seq(n, float32(op))
			buf := slices.Clone(want)
			if err := g.AllReduce(ctx, buf, op); err != nil || !slices.Equal(buf, want) {
				t.Fatalf("AllReduce n=%d %v: err %v, changed=%v", n, op, err, !slices.Equal(buf, want))
			}
		}
		want64 := make([]float64, n)
		for i := range want64 {
			want64[i] = 1.0/3 + float64(i) // not representable in float32
		}
		buf64 := slices.Clone(want64)
		if err := g.AllReduceFloat64(ctx, buf64, collective.Avg); err != nil || !slices.Equal(buf64, want64) {
			t.Fatalf("AllReduceFloat64 n=%d: err %v, got %v", n, err, buf64[:min(n, 4)])
		}
		send := seq(n, 7)
		recv := make([]float32, n)
		if err := g.AllGather(ctx, send, recv); err != nil || !slices.Equal(recv, send) {
			t.Fatalf("AllGather n=%d: err %v", n, err)
		}
		recv = make([]float32, n)
		if err := g.ReduceScatter(ctx, send, recv, collective.Sum); err != nil || !slices.Equal(recv, send) {
			t.Fatalf("ReduceScatter n=%d: err %v", n, err)
		}
		bc := seq(n, 11)
		if err := collective.BroadcastSlice(ctx, g, bc, 0); err != nil || !slices.Equal(bc, seq(n, 11)) {
			t.Fatalf("Broadcast n=%d: err %v", n, err)
		}
	}
	if err := g.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.AllReduce(ctx, nil, collective.Sum); err != nil {
		t.Fatalf("empty AllReduce: %v", err)
	}
	log := readLog(t, logPath)
	// The last allreduce (n=17) ran in place on the staging buffer, which
	// kept the 1000-element size it grew to.
	a := uintptr(g.stage[0].ptr)
	if s := fmt.Sprintf("ncclAllReduce send=%#x recv=%#x count=17 dt=8", a, a); !strings.Contains(log, s) || g.stage[0].cap != 8000 {
		t.Errorf("log lacks %q or staging cap %d != 8000", s, g.stage[0].cap)
	}
	for _, want := range []string{
		"ncclAllReduce", "count=1000 dt=7 op=4", "count=17 dt=8 op=4", // float32 and float64 avg
		"ncclAllGather", "ncclReduceScatter", "count=1 dt=7 op=0", // barrier
		"ncclBroadcast", "count=68 dt=1", // 17 float32s broadcast as bytes (uint8)
	} {
		if !strings.Contains(log, want) {
			t.Errorf("fake's log lacks %q", want)
		}
	}
}

// The raw path hands the caller's pointer to NCCL unchanged (the fake's
// device memory is host memory, so a Go slice stands for a tensor).
func TestAllReduceRawPassesThePointer(t *testing.T) {
	g, logPath := newSolo(t, Config{Timeout: 5 * time.Second})
	data := []float64{1.5, -2, 4}
	p := unsafe.Pointer(&data[0])
	if err := g.AllReduceRaw(context.Background(), p, len(data), collective.Float64, collective.Max); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("ncclAllReduce send=%#x recv=%#x count=3 dt=8 op=2", uintptr(p), uintptr(p))
	if log := readLog(t, logPath); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	if !slices.Equal(data, []float64{1.5, -2, 4}) {
		t.Errorf("data = %v", data)
	}
	for _, bad := range []error{
		g.AllReduceRaw(context.Background(), nil, 3, collective.Float32, collective.Sum),
		g.AllReduceRaw(context.Background(), p, 3, collective.DType(9), collective.Sum),
		g.AllReduceRaw(context.Background(), p, 3, collective.Float64, collective.ReduceOp(9)),
	} {
		if !errors.Is(bad, collective.ErrConfig) {
			t.Errorf("bad raw call: %v, want ErrConfig", bad)
		}
	}
}

// On NCCL < 2.10 Avg is Sum then a division by the group size.
func TestAvgFallback(t *testing.T) {
	g := &Group{cfg: Config{Size: 4}}
	red, scale, err := g.redOp("allreduce", collective.Avg)
	if err != nil || red != nccl.Sum || scale != 0.25 {
		t.Fatalf("redOp(avg) = %v, %v, %v; want sum, 0.25", red, scale, err)
	}
	v := []float32{4, -8, 2}
	scaleBy(v, scale)
	if !slices.Equal(v, []float32{1, -2, 0.5}) {
		t.Errorf("scaled = %v", v)
	}
	g.hasAvg = true
	if red, scale, _ := g.redOp("allreduce", collective.Avg); red != nccl.Avg || scale != 1 {
		t.Errorf("with ncclAvg: %v, %v", red, scale)
	}
}

func TestBadConfigAndArguments(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{Size: 0},
		{Rank: 1, Size: 1},
		{Rank: -1, Size: 2},
		{Size: 2}, // no store
		{Size: 1, Device: -1},
		{Size: 1, Timeout: -time.Second},
		{Size: 1, Name: "a/b"},
	} {
		if _, err := New(ctx, cfg); !errors.Is(err, collective.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	t.Setenv("FAKE_CUDA_DEVICES", "1")
	if _, err := New(ctx, Config{Size: 1, Device: 3}); !errors.Is(err, ErrDevice) || !strings.Contains(err.Error(), "no such device") {
		t.Errorf("absent device: %v", err)
	}
	g, _ := newSolo(t, Config{Timeout: 5 * time.Second})
	for name, err := range map[string]error{
		"allgather":     g.AllGather(ctx, make([]float32, 2), make([]float32, 3)),
		"reducescatter": g.ReduceScatter(ctx, make([]float32, 3), make([]float32, 2), collective.Sum),
		"broadcast":     g.Broadcast(ctx, make([]byte, 2), 1),
		"op":            g.AllReduce(ctx, make([]float32, 2), collective.ReduceOp(7)),
	} {
		if !errors.Is(err, collective.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	// Argument errors do not break the group.
	if err := g.Barrier(ctx); err != nil {
		t.Errorf("Barrier after argument errors: %v", err)
	}
}

// hangingGroup makes a group whose streams never finish.
func hangingGroup(t *testing.T, cfg Config) *Group {
	t.Helper()
	g, _ := newSolo(t, cfg)
	t.Setenv("FAKE_CUDA_STREAM_HANG", "1")
	return g
}

func TestHungCollectiveTimesOut(t *testing.T) {
	const timeout = 100 * time.Millisecond
	g := hangingGroup(t, Config{Timeout: timeout})
	start := time.Now()
	err := g.AllReduce(context.Background(), []float32{1, 2}, collective.Sum)
	took := time.Since(start)
	var ae *nccl.AbortError
	if !errors.Is(err, collective.ErrTimeout) || !errors.As(err, &ae) || !errors.Is(err, nccl.ErrTimeout) {
		t.Fatalf("AllReduce on a hung stream = %v, want ErrTimeout and an *nccl.AbortError", err)
	}
	if took < timeout || took > timeout+slack {
		t.Errorf("returned after %v, want within [%v, %v]", took, timeout, timeout+slack)
	}
	for _, want := range []string{"allreduce on rank 0 of 1", "allreduce on rank 0 aborted after"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if err := g.Barrier(context.Background()); !errors.Is(err, collective.ErrBroken) || !errors.Is(err, collective.ErrTimeout) {
		t.Errorf("after the timeout: %v, want ErrBroken wrapping ErrTimeout", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("Close of a group whose communicator was aborted: %v", err)
	}
}

func TestHungCollectiveAborts(t *testing.T) {
	const after = 50 * time.Millisecond
	errGone := errors.New("etcd session lost")
	cases := map[string]func(g *Group, abortOn chan struct{}) context.Context{
		"Abort": func(g *Group, _ chan struct{}) context.Context {
			time.AfterFunc(after, g.Abort)
			return context.Background()
		},
		"AbortOn": func(_ *Group, abortOn chan struct{}) context.Context {
			time.AfterFunc(after, func() { close(abortOn) })
			return context.Background()
		},
		"context": func(*Group, chan struct{}) context.Context {
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(after, func() { cancel(errGone) })
			return ctx
		},
	}
	for name, arm := range cases {
		t.Run(name, func(t *testing.T) {
			abortOn := make(chan struct{})
			g := hangingGroup(t, Config{Timeout: time.Minute, AbortOn: abortOn})
			ctx := arm(g, abortOn)
			start := time.Now()
			err := g.Broadcast(ctx, []byte{1}, 0)
			took := time.Since(start)
			if !errors.Is(err, collective.ErrAborted) || !errors.Is(err, nccl.ErrAborted) || errors.Is(err, collective.ErrTimeout) {
				t.Fatalf("Broadcast = %v, want aborted, not a timeout", err)
			}
			if name == "context" && !errors.Is(err, errGone) {
				t.Errorf("error %v lacks the context's cause", err)
			}
			if took > after+slack {
				t.Errorf("returned after %v, want soon after %v", took, after)
			}
			if !strings.Contains(err.Error(), "broadcast on rank 0") {
				t.Errorf("message %q does not name the op and rank", err)
			}
		})
	}
}

// inExec returns a condition: a goroutine is in g's exec, so its call is in flight
// (past the lifecycle's Begin) and handed to the worker. The traceback names g by the
// receiver's address.
func inExec(g *Group) func() bool {
	frame := []byte(fmt.Sprintf("ncclpg.(*Group).exec(%p,", g))
	return func() bool {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		return bytes.Contains(buf[:n], frame)
	}
}

func TestCloseDuringCollective(t *testing.T) {
	g := hangingGroup(t, Config{Timeout: time.Minute})
	var wg sync.WaitGroup
	var err error
	wg.Add(1)
	go func() { defer wg.Done(); err = g.AllReduce(context.Background(), []float32{1}, collective.Sum) }()
	testkit.WaitFor(t, 10*time.Second, "the all-reduce to be in flight", inExec(g))
	start := time.Now()
	if cerr := g.Close(); cerr != nil {
		t.Errorf("Close: %v", cerr)
	}
	wg.Wait()
	if time.Since(start) > slack {
		t.Errorf("Close took %v", time.Since(start))
	}
	if !errors.Is(err, collective.ErrAborted) || !strings.Contains(err.Error(), "closed during allreduce") {
		t.Errorf("collective cut by Close: %v", err)
	}
}

func TestCloseAndAbortAreIdempotent(t *testing.T) {
	g, logPath := newSolo(t, Config{Timeout: 5 * time.Second})
	if err := g.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.Abort()
	g.Abort()
	if err := g.Barrier(context.Background()); !errors.Is(err, collective.ErrBroken) || !errors.Is(err, collective.ErrAborted) {
		t.Errorf("after Abort: %v", err)
	}
	for i := range 2 {
		if err := g.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	g.Abort() // after Close: a no-op
	if err := g.AllReduce(context.Background(), []float32{1}, collective.Sum); !errors.Is(err, collective.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	// An aborted group's communicator is aborted once, never destroyed.
	log := readLog(t, logPath)
	if strings.Count(log, "ncclCommAbort") != 1 || strings.Contains(log, "ncclCommDestroy") {
		t.Errorf("want one abort and no destroy:\n%s", log)
	}

	h, logPath := newSolo(t, Config{Timeout: 5 * time.Second})
	_ = h.Close()
	_ = h.Close()
	if log := readLog(t, logPath); strings.Count(log, "ncclCommDestroy") != 1 {
		t.Errorf("a healthy group is destroyed once:\n%s", log)
	}
}

// fixedStore answers every Lookup with value, or blocks until ctx ends
// when value is nil.
type fixedStore struct{ value []byte }

func (s fixedStore) Publish(context.Context, string, []byte) error { return nil }

func (s fixedStore) Lookup(ctx context.Context, key string) ([]byte, error) {
	if s.value == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.value, nil
}

// recordStore keeps what rank 0 publishes.
type recordStore struct {
	fixedStore
	mu  sync.Mutex
	got map[string]string
}

func (s *recordStore) Publish(_ context.Context, key string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got[key] = string(v)
	return nil
}

func TestUniqueIDTravelsThroughTheStore(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "calls.log")
	t.Setenv("FAKE_NCCL_LOG", logPath)
	ctx := context.Background()
	// Rank 0 publishes the id in hex; without FAKE_NCCL_SHARED_DIR the fake
	// refuses a second rank.
	rs := &recordStore{got: map[string]string{}}
	_, err := New(ctx, Config{Rank: 0, Size: 2, Store: rs, Name: "g1", Timeout: 5 * time.Second})
	if !errors.Is(err, ErrDevice) || !errors.Is(err, nccl.InvalidUsage) {
		t.Fatalf("rank 0 of 2 on the one-rank fake: %v", err)
	}
	hexID := rs.got["nccl.g1.unique_id"]
	id, perr := nccl.ParseUniqueID(hexID)
	if perr != nil {
		t.Fatalf("published %v: %v", rs.got, perr)
	}
	// Rank 1 reads it; the fake checks all 128 bytes before refusing rank 1
	// (with ncclCommInitRankConfig: the fake is NCCL 2.21).
	_, err = New(ctx, Config{Rank: 1, Size: 2, Store: fixedStore{[]byte(hexID)}, Timeout: 5 * time.Second})
	if !errors.Is(err, nccl.InvalidUsage) {
		t.Fatalf("rank 1 with a good id: %v, want the fake's one-rank refusal", err)
	}
	if want := fmt.Sprintf("ncclCommInitRankConfig nranks=2 rank=1 id0=%d", id[0]); !strings.Contains(readLog(t, logPath), want) {
		t.Errorf("log lacks %q", want)
	}
	_, err = New(ctx, Config{Rank: 1, Size: 2, Store: fixedStore{[]byte("zz")}, Timeout: 5 * time.Second})
	if !errors.Is(err, collective.ErrStore) {
		t.Errorf("garbage id: %v, want ErrStore", err)
	}
	const timeout = 80 * time.Millisecond
	start := time.Now()
	_, err = New(ctx, Config{Rank: 1, Size: 2, Store: fixedStore{}, Timeout: timeout})
	if !errors.Is(err, collective.ErrTimeout) || !strings.Contains(err.Error(), "unique id") {
		t.Errorf("rank 0 never publishes: %v, want ErrTimeout naming the id", err)
	}
	if took := time.Since(start); took < timeout || took > timeout+slack {
		t.Errorf("setup gave up after %v, want about %v", took, timeout)
	}
}

func TestMissingLibrary(t *testing.T) {
	if err := nccl.Shutdown(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nccl.Shutdown() }) // the next New loads the fakes again
	missing := filepath.Join(t.TempDir(), "libnccl.so.2")
	t.Setenv(nccl.EnvNCCLLibrary, missing)
	_, err := New(context.Background(), Config{Size: 1})
	var le *nccl.LoadError
	if !errors.Is(err, nccl.ErrLibraryNotFound) || !errors.As(err, &le) {
		t.Fatalf("New without libnccl = %v, want an *nccl.LoadError", err)
	}
	if !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), nccl.EnvNCCLLibrary) {
		t.Errorf("message %q does not say what was tried and how to fix it", err)
	}
}
