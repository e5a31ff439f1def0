package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lrtrain/lrtrain/internal/testkit"
)

// Every launcher a test starts must be done within this time.
const testDeadline = 40 * time.Second

// workerOut makes the directory test workers report into, and registers the
// check that every process they report (workers and their children) is
// gone when the test ends; survivors are killed and fail the test.
func workerOut(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	t.Cleanup(func() { checkNoLeaks(t, out) })
	return out
}

// testConfig is a node configuration with short timeouts that runs nproc
// test workers of the given role. endpoint "" means standalone.
// nodeConfig is testConfig for node rank of a job of minNodes to maxNodes nodes.
func nodeConfig(t *testing.T, endpoint, job string, minNodes, maxNodes, rank, nproc int, workerArgs ...string) Config {
	t.Helper()
	cfg := testConfig(t, endpoint, job, nproc, workerArgs...)
	cfg.MinNodes, cfg.MaxNodes, cfg.NodeRank = minNodes, maxNodes, rank
	return cfg
}

// waitNodes waits for each launcher to end, failing the test on the first error.
func waitNodes(t *testing.T, nodes ...*launched) {
	t.Helper()
	for i, n := range nodes {
		if err := n.wait(t, testDeadline); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

func testConfig(t *testing.T, endpoint, job string, nproc int, workerArgs ...string) Config {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := Config{
		MinNodes: 1, MaxNodes: 1, Nproc: nproc, Device: DeviceCPU, OMPThreads: 1, NodeRank: -1,
		Role: "default", Standalone: endpoint == "", Job: job,
		LastCall: 300 * time.Millisecond, JoinTimeout: 20 * time.Second, DialTimeout: 2 * time.Second,
		TTL: 2 * time.Second, MonitorInterval: 500 * time.Millisecond, GracePeriod: 2 * time.Second,
		ExitBarrierTimeout: 10 * time.Second, RunDir: t.TempDir(), Program: self,
		Args: append([]string{roleWorker}, workerArgs...),
	}
	if endpoint != "" {
		c.Endpoints = []string{endpoint}
	}
	return c
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// launched is a launcher running in this process.
type launched struct {
	done    chan struct{}
	err     error
	console *syncBuffer
}

// launch runs Run in a goroutine; the test's cleanup cancels it and waits
// for it to return, so no worker outlives the test.
func launch(t *testing.T, cfg Config) *launched {
	t.Helper()
	return launchContext(t, context.Background(), cfg)
}

// launchContext is launch with a context that the test may cancel.
func launchContext(t *testing.T, ctx context.Context, cfg Config) *launched {
	t.Helper()
	l := &launched{done: make(chan struct{}), console: &syncBuffer{}}
	cfg.Console = l.console
	ctx, cancel := context.WithCancel(ctx)
	log := zerolog.New(zerolog.ConsoleWriter{Out: t.Output(), NoColor: true, TimeFormat: "15:04:05.000"}).
		With().Timestamp().Str("job", cfg.Job).Logger()
	go func() {
		defer close(l.done)
		l.err = Run(ctx, cfg, log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-l.done:
		case <-time.After(testDeadline):
			t.Errorf("launcher of job %s did not stop", cfg.Job)
		}
	})
	return l
}

// wait returns Run's error, failing the test if Run takes longer than limit.
func (l *launched) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-l.done:
		return l.err
	case <-time.After(limit):
		t.Fatalf("launcher still running after %v", limit)
	}
	return nil
}

// records reads the worker records in out, by file name.
func records(t *testing.T, out string) map[string]record {
	t.Helper()
	recs := map[string]record{}
	names, _ := filepath.Glob(filepath.Join(out, "r*-rank*.json"))
	for _, name := range names {
		var r record
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		recs[filepath.Base(name)] = r
	}
	return recs
}

func checkNoLeaks(t *testing.T, out string) {
	var pids []int
	names, _ := filepath.Glob(filepath.Join(out, "r*-rank*.json"))
	for _, name := range names {
		var r record
		if b, err := os.ReadFile(name); err == nil && json.Unmarshal(b, &r) == nil {
			pids = append(pids, r.PID)
			if r.Child != 0 {
				pids = append(pids, r.Child)
			}
		}
	}
	// Processes being stopped get a moment to go; the limit only bounds the wait.
	_ = testkit.Poll(3*time.Second, func() bool {
		for _, pid := range pids {
			if procAlive(pid) {
				return false
			}
		}
		return true
	})
	for _, pid := range pids {
		if procAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("process %d outlived the test (killed now)", pid)
		}
	}
}

// procAlive reports whether pid runs (a zombie counts as gone).
func procAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
