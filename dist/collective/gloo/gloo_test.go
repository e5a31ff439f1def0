package gloo_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
	"github.com/lrtrain/lrtrain/internal/testkit"
)

// groups forms a group of size ranks inside this process (each rank a
// goroutine) through a TCP store, and closes them when the test ends. edit,
// if given, adjusts each rank's Config.
func groups(t testing.TB, size int, timeout time.Duration, edit ...func(r int, c *collective.Config)) []*gloo.Group {
	t.Helper()
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	gs := make([]*gloo.Group, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r := range size {
		wg.Go(func() {
			st, err := collective.DialStore(ctx, srv.Addr(), timeout)
			if err != nil {
				errs[r] = err
				return
			}
			cfg := collective.Config{Rank: r, Size: size, Store: st, Hostname: "127.0.0.1", Timeout: timeout}
			for _, e := range edit {
				e(r, &cfg)
			}
			gs[r], errs[r] = gloo.New(ctx, cfg)
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		t.Cleanup(func() { gs[r].Close() })
	}
	return gs
}

// blocked starts an all-reduce on g that no peer joins and returns a channel
// with its error once the call is waiting for its peer (see inGloo), or has
// already failed (a group whose peer is gone fails at once).
func blocked(t *testing.T, g *gloo.Group, ctx context.Context) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		done <- g.AllReduce(ctx, make([]float32, 1024), collective.Sum)
		close(ended)
	}()
	testkit.WaitFor(t, 10*time.Second, "the all-reduce to enter Gloo", func() bool {
		select {
		case <-ended:
			return true
		default:
			return inGloo()
		}
	})
	return done
}

// inGloo reports whether a goroutine of this process is inside the native call of
// an all-reduce: past the group's bookkeeping (the call is in flight, the context is
// watched), in the C++ shim, where only an abort or a peer ends it.
func inGloo() bool {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
		// A goroutine in a cgo call is in state syscall; the Go side of the shim's
		// all-reduce is (*native).allReduce.
		if bytes.Contains(g, []byte(" [syscall")) && bytes.Contains(g, []byte("gloo.(*native).allReduce(")) {
			return true
		}
		// On shared memory: waiting for a peer's counter.
		if bytes.Contains(g, []byte("gloo.awaitWord(")) && bytes.Contains(g, []byte("gloo.(*Group).AllReduceRaw(")) {
			return true
		}
	}
	return false
}

// eachTransport runs f as a subtest per transport a group on one host can
// use (the first two of proc_test's transports: Gloo's TCP and lrtrain's
// shared memory); tr, an edit for groups, sets it.
func eachTransport(t *testing.T, f func(t *testing.T, tr func(r int, c *collective.Config))) {
	for _, tp := range transports[:2] {
		t.Run(tp.name, func(t *testing.T) { f(t, func(_ int, c *collective.Config) { c.SharedMemory = tp.limit }) })
	}
}

// abortBound is how long a collective may take to end once aborted, cancelled, closed
// or past its context's deadline: far below the groups' 30 s timeout, so a call that
// only ended at the timeout still fails the test, and far above what a loaded 2-core
// machine needs (a failure bound, not a measurement: a passing test never waits it).
const abortBound = 10 * time.Second

// within returns the error from done, failing the test if none arrives in d.
func within(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("collective still blocked after %s", d)
		return nil
	}
}

func TestSingleRankGroupNeedsNoPeers(t *testing.T) {
	ctx := context.Background()
	g, err := gloo.New(ctx, collective.Config{Size: 1, Hostname: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	buf := []float32{1, -2, 3}
	for _, op := range allOps {
		if err := g.AllReduce(ctx, buf, op); err != nil {
			t.Fatal(err)
		}
	}
	recv := make([]float32, 3)
	if err := g.AllGather(ctx, buf, recv); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 3)
	if err := g.ReduceScatter(ctx, buf, out, collective.Avg); err != nil {
		t.Fatal(err)
	}
	if err := collective.BroadcastSlice(ctx, g, buf, 0); err != nil {
		t.Fatal(err)
	}
	if err := g.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	for _, got := range [][]float32{buf, recv, out} {
		if got[0] != 1 || got[1] != -2 || got[2] != 3 {
			t.Fatalf("got %v, want [1 -2 3]", got)
		}
	}
}

func TestBadConfigIsRejected(t *testing.T) {
	store := &collective.TCPStore{}
	for _, tc := range []struct {
		name string
		cfg  collective.Config
		want string
	}{
		{"world size 0", collective.Config{Size: 0}, "world size 0"},
		{"rank = size", collective.Config{Rank: 2, Size: 2, Store: store}, "rank 2 out of range for world size 2"},
		{"negative rank", collective.Config{Rank: -1, Size: 2, Store: store}, "rank -1 out of range"},
		{"no store", collective.Config{Rank: 0, Size: 2}, "no store"},
		{"hostname and interface", collective.Config{Size: 1, Hostname: "127.0.0.1", Interface: "lo"}, "both"},
		{"slash in name", collective.Config{Size: 1, Name: "a/b"}, "'/'"},
		{"negative timeout", collective.Config{Size: 1, Timeout: -time.Second}, "negative timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gloo.New(context.Background(), tc.cfg)
			if !errors.Is(err, collective.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestUnknownHostnameFailsQuickly(t *testing.T) {
	start := time.Now()
	_, err := gloo.New(context.Background(), collective.Config{Size: 1, Hostname: "no-such-host.invalid", Timeout: 5 * time.Second})
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "no-such-host.invalid") {
		t.Fatalf("got %v, want an error naming the hostname", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

func TestGroupOnLoopbackInterface(t *testing.T) {
	gs := groups(t, 2, 10*time.Second, func(_ int, c *collective.Config) {
		c.Hostname, c.Interface = "", "lo"
	})
	bufs := [][]float32{{1}, {2}}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r, g := range gs {
		wg.Go(func() { errs[r] = g.AllReduce(context.Background(), bufs[r], collective.Max) })
	}
	wg.Wait()
	for r := range gs {
		if errs[r] != nil || bufs[r][0] != 2 {
			t.Fatalf("rank %d: %v, %v; want [2]", r, bufs[r], errs[r])
		}
	}
}

func TestBadArgumentsLeaveGroupUsable(t *testing.T) {
	ctx := context.Background()
	g, err := gloo.New(ctx, collective.Config{Size: 1, Hostname: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for name, err := range map[string]error{
		"allgather recv length":     g.AllGather(ctx, make([]float32, 2), make([]float32, 3)),
		"reducescatter send length": g.ReduceScatter(ctx, make([]float32, 3), make([]float32, 2), collective.Sum),
		"broadcast root":            g.Broadcast(ctx, make([]byte, 2), 1),
		"unknown op":                g.AllReduce(ctx, make([]float32, 2), collective.ReduceOp(9)),
		"raw nil pointer":           g.AllReduceRaw(ctx, nil, 4, collective.Float32, collective.Sum),
	} {
		if !errors.Is(err, collective.ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
	if err := g.AllReduce(ctx, []float32{1}, collective.Sum); err != nil {
		t.Fatalf("group unusable after rejected arguments: %v", err)
	}
}

func TestUnreachableStore(t *testing.T) {
	addr := testkit.RefusingAddr(t) // refused, and no other process can take it meanwhile
	start := time.Now()
	_, err := collective.DialStore(context.Background(), addr, 300*time.Millisecond)
	if !errors.Is(err, collective.ErrStore) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("got %v, want ErrStore naming %s", err, addr)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s for a 300ms timeout", d)
	}
}

func TestMissingPeerTimesOutNamingIt(t *testing.T) {
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st, err := collective.DialStore(context.Background(), srv.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = gloo.New(context.Background(), collective.Config{
		Rank: 0, Size: 2, Store: st, Hostname: "127.0.0.1", Timeout: 500 * time.Millisecond})
	t.Log(err)
	if !errors.Is(err, collective.ErrTimeout) || !strings.Contains(err.Error(), "rank 1's") {
		t.Fatalf("got %v, want ErrTimeout naming rank 1", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s for a 500ms timeout", d)
	}
}

func TestAbortUnblocksCollectiveAndResetsPeers(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr func(int, *collective.Config)) {
		gs := groups(t, 2, 30*time.Second, tr)
		ctx := context.Background()
		done := blocked(t, gs[0], ctx)
		start := time.Now()
		gs[0].Abort()
		err := within(t, done, abortBound)
		if !errors.Is(err, collective.ErrAborted) || !strings.Contains(err.Error(), "Abort called") {
			t.Fatalf("got %v, want ErrAborted saying Abort was called", err)
		}
		t.Logf("aborted after %s: %v", time.Since(start), err)
		// The peer's connections were reset: its next collective fails at once.
		err = within(t, blocked(t, gs[1], ctx), abortBound)
		if !errors.Is(err, collective.ErrPeerLost) {
			t.Fatalf("peer: got %v, want ErrPeerLost", err)
		}
		// Both groups are broken for good.
		for r, g := range gs {
			if err := g.Barrier(ctx); !errors.Is(err, collective.ErrBroken) {
				t.Fatalf("rank %d after failure: got %v, want ErrBroken", r, err)
			}
		}
	})
}

func TestCancelledContextAbortsCollective(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr func(int, *collective.Config)) {
		gs := groups(t, 2, 30*time.Second, tr)
		ctx, cancel := context.WithCancel(context.Background())
		done := blocked(t, gs[0], ctx)
		cancel()
		err := within(t, done, abortBound)
		if !errors.Is(err, collective.ErrAborted) || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want ErrAborted and context.Canceled", err)
		}
	})
}

func TestContextDeadlineShortensTimeout(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr func(int, *collective.Config)) {
		gs := groups(t, 2, 30*time.Second, tr)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := within(t, blocked(t, gs[0], ctx), abortBound)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestAbortOnChannelAbortsCollective(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr func(int, *collective.Config)) {
		lost := make(chan struct{})
		gs := groups(t, 2, 30*time.Second, func(r int, c *collective.Config) {
			if r == 0 {
				c.AbortOn = lost
			}
		}, tr)
		done := blocked(t, gs[0], context.Background())
		close(lost)
		err := within(t, done, abortBound)
		if !errors.Is(err, collective.ErrAborted) || !strings.Contains(err.Error(), "AbortOn") {
			t.Fatalf("got %v, want ErrAborted naming AbortOn", err)
		}
	})
}

func TestCloseDuringCollective(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr func(int, *collective.Config)) {
		gs := groups(t, 2, 30*time.Second, tr)
		done := blocked(t, gs[0], context.Background())
		closed := make(chan error, 1)
		go func() { closed <- gs[0].Close() }()
		if err := within(t, closed, abortBound); err != nil {
			t.Fatal(err)
		}
		if err := within(t, done, abortBound); !errors.Is(err, collective.ErrAborted) {
			t.Fatalf("got %v, want ErrAborted", err)
		}
		if err := gs[0].Barrier(context.Background()); !errors.Is(err, collective.ErrClosed) {
			t.Fatalf("after Close: got %v, want ErrClosed", err)
		}
		if err := gs[0].Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}
