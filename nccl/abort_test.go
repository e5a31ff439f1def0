package nccl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/internal/testkit"
)

// These tests prove that every init, enqueue and wait on the fake libnccl
// ends within its timeout plus abortBound, in each failure the fake can
// stage: an enqueue that blocks until ncclCommAbort, an init or collective
// stuck in ncclInProgress, an asynchronous error.

// abortBound is the stated bound past the timeout: one poll interval
// (2 ms) plus the time the fake takes to return once aborted (a condition
// variable wake-up), with a wide margin for a loaded 2-core machine. The
// tests wait for the call (testkit.Within) for failAfter, then fail.
const (
	abortBound = 2 * time.Second
	failAfter  = 30 * time.Second
)

func TestConfigLayoutMatchesNCCLHeader(t *testing.T) {
	// nccl.h (2.14 onwards): size_t size; unsigned int magic; unsigned int
	// version; int blocking; ... on LP64.
	size, magic, version, blocking := configLayout()
	if size != 24 || magic != 8 || version != 12 || blocking != 16 {
		t.Fatalf("layout size %d, offsets magic %d version %d blocking %d; want 24, 8, 12, 16", size, magic, version, blocking)
	}
}

func TestCommInitIsNonBlockingWhereSupported(t *testing.T) {
	logPath := loadFakes(t)
	t.Setenv("FAKE_NCCL_INIT_PROGRESS", "3") // three polls answer ncclInProgress
	id, _ := GetUniqueID()
	c, err := CommInit(context.Background(), 1, id, 0, 5*time.Second)
	if err != nil {
		t.Fatalf("CommInit: %v", err)
	}
	defer c.Destroy()
	if !NonBlocking() || !c.NonBlocking() {
		t.Error("NCCL 2.21 fake: want a non-blocking communicator")
	}
	want := fmt.Sprintf("ncclCommInitRankConfig nranks=1 rank=0 id0=%d size=24 magic=0xcafebeef version=22105 blocking=0", id[0])
	if !strings.Contains(readLog(t, logPath), want) {
		t.Errorf("log lacks %q:\n%s", want, readLog(t, logPath))
	}
}

func TestCommInitFallsBackToBlocking(t *testing.T) {
	for _, env := range [][2]string{{"FAKE_NCCL_VERSION", "21300"}, {EnvBlocking, "1"}} {
		logPath := loadFakes(t)
		t.Setenv(env[0], env[1])
		id, _ := GetUniqueID()
		c, err := CommInit(context.Background(), 1, id, 0, time.Second)
		if err != nil {
			t.Fatalf("%s=%s: %v", env[0], env[1], err)
		}
		log := readLog(t, logPath)
		if c.NonBlocking() || strings.Contains(log, "InitRankConfig") || !strings.Contains(log, "ncclCommInitRank ") {
			t.Errorf("%s=%s: want plain ncclCommInitRank:\n%s", env[0], env[1], log)
		}
		_ = c.Destroy()
		_ = Shutdown()
	}
}

func TestCommInitInProgressForeverIsAborted(t *testing.T) {
	logPath := loadFakes(t)
	t.Setenv("FAKE_NCCL_INIT_PROGRESS", "-1")
	id, _ := GetUniqueID()
	const timeout = 100 * time.Millisecond
	took, err := testkit.Within(t, failAfter, "CommInit", func() error {
		_, err := CommInit(context.Background(), 1, id, 0, timeout)
		return err
	})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrAborted) || took > timeout+abortBound {
		t.Fatalf("CommInit = %v after %v; want a timeout abort within %v", err, took, timeout+abortBound)
	}
	if !strings.Contains(readLog(t, logPath), "ncclCommAbort") {
		t.Errorf("the half-made communicator was not aborted:\n%s", readLog(t, logPath))
	}
}

// runAllReduce enqueues a one-element all-reduce through Watchdog.Run.
func runAllReduce(ctx context.Context, c *Comm, s Stream, timeout time.Duration) error {
	buf, err := Malloc(4)
	if err != nil {
		return err
	}
	defer Free(buf)
	w := Watchdog{Rank: c.Rank(), Timeout: timeout}
	return w.Run(ctx, "allreduce", c.Pending(s), func() error { return c.AllReduce(buf, buf, 1, Float32, Sum, s) })
}

func TestRunAbortsEnqueueBlockedUntilAbort(t *testing.T) {
	for _, blocking := range []string{"1", "0"} {
		logPath := loadFakes(t)
		t.Setenv(EnvBlocking, blocking)
		c := commInit(t)
		s, _ := StreamCreate()
		t.Setenv("FAKE_NCCL_ENQUEUE_BLOCK", "1")
		const timeout = 100 * time.Millisecond
		took, err := testkit.Within(t, failAfter, "Run", func() error { return runAllReduce(context.Background(), c, s, timeout) })
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrAborted) || took < timeout || took > timeout+abortBound {
			t.Fatalf("blocking=%s: Run = %v after %v; want a timeout abort in [%v, %v]", blocking, err, took, timeout, timeout+abortBound)
		}
		if !strings.Contains(err.Error(), "while enqueueing") || strings.Count(readLog(t, logPath), "ncclCommAbort") != 1 {
			t.Errorf("blocking=%s: %v\n%s", blocking, err, readLog(t, logPath))
		}
		_ = StreamDestroy(s)
		_ = Shutdown()
	}
}

func TestRunAbortsBlockedEnqueueOnCancel(t *testing.T) {
	logPath := loadFakes(t)
	t.Setenv(EnvBlocking, "1")
	c := newFakeComm(t)
	t.Setenv("FAKE_NCCL_ENQUEUE_BLOCK", "1")
	lost := errors.New("etcd session lost")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		// Cancel once the call is inside the fake (its log line is written
		// on entry).
		_ = testkit.Poll(failAfter, func() bool {
			b, _ := os.ReadFile(logPath)
			return strings.Contains(string(b), "ncclAllReduce")
		})
		cancel(lost)
	}()
	_, err := testkit.Within(t, failAfter, "Run", func() error { return runAllReduce(ctx, c, 0, 0) }) // no timeout: only ctx
	if !errors.Is(err, lost) || !errors.Is(err, ErrAborted) {
		t.Fatalf("Run = %v, want the cancel cause and an abort", err)
	}
}

func TestRunSettlesInProgressCollective(t *testing.T) {
	loadFakes(t)
	c := commInit(t)
	defer c.Destroy()
	s, _ := StreamCreate()
	defer StreamDestroy(s)
	t.Setenv("FAKE_NCCL_ENQUEUE_PROGRESS", "4")
	src := onDevice(t, []float64{2.5, -1})
	dst := onDevice(t, []float64{9, 9})
	w := Watchdog{Timeout: 5 * time.Second}
	if err := w.Run(context.Background(), "allreduce", c.Pending(s), func() error {
		return c.AllReduce(src, dst, 2, Float64, Sum, s)
	}); err != nil {
		t.Fatalf("Run = %v", err)
	}
	got := make([]float64, 2)
	if err := CopyFromDevice(got, dst); err != nil || got[0] != 2.5 || got[1] != -1 {
		t.Fatalf("result %v, %v", got, err)
	}
}

func TestRunAbortsCollectiveInProgressForever(t *testing.T) {
	loadFakes(t)
	c := commInit(t)
	t.Setenv("FAKE_NCCL_ENQUEUE_PROGRESS", "-1")
	const timeout = 100 * time.Millisecond
	took, err := testkit.Within(t, failAfter, "Run", func() error { return runAllReduce(context.Background(), c, 0, timeout) })
	var ae *AbortError
	if !errors.As(err, &ae) || !errors.Is(err, ErrTimeout) || took > timeout+abortBound {
		t.Fatalf("Run = %v after %v; want a timeout abort within %v", err, took, timeout+abortBound)
	}
	if ae.AbortErr != nil {
		t.Errorf("abort of a non-blocking communicator (ncclInProgress: released in the background) reported %v", ae.AbortErr)
	}
	if err := c.AsyncError(); !errors.Is(err, ErrClosed) {
		t.Errorf("after the abort: %v, want ErrClosed", err)
	}
}

func TestRunAbortsOnAsyncErrorWhileInProgress(t *testing.T) {
	loadFakes(t)
	c := commInit(t)
	t.Setenv("FAKE_NCCL_ENQUEUE_PROGRESS", "-1")
	t.Setenv("FAKE_NCCL_ASYNC_ERROR", "6")
	_, err := testkit.Within(t, failAfter, "Run", func() error { return runAllReduce(context.Background(), c, 0, time.Minute) })
	if !errors.Is(err, RemoteError) || !errors.Is(err, ErrAborted) {
		t.Fatalf("Run = %v, want RemoteError and an abort", err)
	}
}
