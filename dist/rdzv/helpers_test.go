package rdzv

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/internal/testkit/etcdtest"
	"go.uber.org/zap"
)

// Short timeouts keep the suite fast; etcd's minimum lease TTL is about 2 s.
const (
	testTTL      = 2 * time.Second
	testLastCall = 300 * time.Millisecond
)

// startEtcd starts the embedded etcd of the test kit; under -short the test is skipped.
func startEtcd(t *testing.T) *etcdembed.Server {
	t.Helper()
	if testing.Short() {
		t.Skip(testkit.ShortReason("starts an etcd server"))
	}
	return etcdtest.Start(t)
}

// waitInside waits until n goroutines are inside function fn (a substring of their
// stacks, e.g. "rdzv.(*conn).watchOnce"): a call has reached the point a test wants it
// at, with no guess of how long that takes.
func waitInside(t *testing.T, fn string, n int) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%d goroutine(s) in %s", n, fn), func() bool {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), fn+"(") >= n
	})
}

// testOptions are the options every test agent and worker uses; later
// options override them.
func testOptions(srv *etcdembed.Server, more ...Option) []Option {
	return append([]Option{
		WithEndpoints(srv.Endpoint()),
		WithTTL(testTTL),
		WithLastCall(testLastCall),
		WithDialTimeout(2 * time.Second),
		WithRequestTimeout(3 * time.Second),
		WithJoinTimeout(15 * time.Second),
		WithWaitTimeout(10 * time.Second),
		WithLogger(zap.NewNop()),
	}, more...)
}

func newAgent(t *testing.T, srv *etcdembed.Server, job, id string, more ...Option) *Agent {
	t.Helper()
	opts := testOptions(srv, append([]Option{WithAgentID(id), WithHostname("host-" + id)}, more...)...)
	a, err := NewAgent(context.Background(), job, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// joinAll calls Join on every agent concurrently, failing the test on an error.
func joinAll(t *testing.T, agents ...*Agent) []*Round {
	t.Helper()
	rounds, errs := joinEach(agents...)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("agent %s: %v", agents[i].ID(), err)
		}
	}
	return rounds
}

// joinEach calls Join on every agent concurrently and returns each one's round and error.
func joinEach(agents ...*Agent) ([]*Round, []error) {
	rounds := make([]*Round, len(agents))
	errs := make([]error, len(agents))
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Go(func() { rounds[i], errs[i] = a.Join(context.Background()) })
	}
	wg.Wait()
	return rounds, errs
}

// firstEvent waits for the event of a Watch channel, failing after limit.
func firstEvent(t *testing.T, ch <-chan Event, limit time.Duration) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(limit):
		t.Fatalf("no watch event within %v", limit)
	}
	return Event{}
}
