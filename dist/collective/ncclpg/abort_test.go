package ncclpg

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/nccl"
)

// abortBound is the stated bound past a call's timeout: the watchdog's poll
// interval (2 ms) plus the fake's return once aborted (a condition variable
// wake-up), with a wide margin for a loaded 2-core machine. Calls are waited
// for on a done channel for failAfter before the test fails.
const (
	abortBound = 2 * time.Second
	failAfter  = 30 * time.Second
)

// within runs f and returns its error and duration, failing the test when
// f is still running after failAfter.
func within(t *testing.T, what string, f func() error) (error, time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err, time.Since(start)
	case <-time.After(failAfter):
		t.Fatalf("%s still blocked after %v", what, failAfter)
		return nil, 0
	}
}

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
			err, took := within(t, "AllReduce", func() error {
				return g.AllReduce(context.Background(), []float32{1, 2}, collective.Sum)
			})
			if !errors.Is(err, collective.ErrTimeout) || !errors.Is(err, nccl.ErrAborted) {
				t.Fatalf("AllReduce = %v, want ErrTimeout and an abort", err)
			}
			if took < timeout || took > timeout+abortBound {
				t.Errorf("AllReduce ended after %v, want within [%v, %v]", took, timeout, timeout+abortBound)
			}
			if err, took := within(t, "Close", g.Close); err != nil || took > abortBound {
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
	time.Sleep(50 * time.Millisecond) // let the call enter the fake; the test holds either way
	if err, took := within(t, "Close", g.Close); err != nil || took > abortBound {
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
	err, took := within(t, "AllReduce", func() error {
		return g.AllReduce(context.Background(), []float32{1}, collective.Sum)
	})
	if !errors.Is(err, collective.ErrTimeout) || !errors.Is(err, errWedged) || took > timeout+grace+abortBound {
		t.Fatalf("AllReduce = %v after %v, want a wedged timeout within %v", err, took, timeout+grace+abortBound)
	}
	if err, took := within(t, "Close", g.Close); !errors.Is(err, errWedged) || took > abortBound {
		t.Errorf("Close = %v after %v, want errWedged at once", err, took)
	}
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
