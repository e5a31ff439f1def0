package gloo_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
)

// The tests re-execute this test binary as the ranks of a group (package
// childproc): TestMain runs the child role (child_test.go) and exits instead of
// running the tests. A child builds its group from the LRT_COLL_* variables: rank,
// world size, store address, timeout.
const (
	envRank    = "LRT_COLL_RANK"
	envSize    = "LRT_COLL_SIZE"
	envStore   = "LRT_COLL_STORE"
	envTimeout = "LRT_COLL_TIMEOUT"
	envShm     = "LRT_COLL_SHM"     // Config.SharedMemory, bytes
	envShmDir  = "LRT_COLL_SHM_DIR" // where the child's shared-memory files go
	envHang    = "LRT_COLL_HANG"    // this rank stops in setup once its shared-memory file exists
)

func TestMain(m *testing.M) {
	childproc.Main(map[string]func() int{
		"suite": func() int { return runChild("suite") },
		"loop":  func() int { return runChild("loop") },
	})
	os.Exit(m.Run())
}

// child is one rank running as a separate process.
type child struct {
	rank int
	cmd  *exec.Cmd

	mu     sync.Mutex
	lines  []string // stdout, line by line
	stderr strings.Builder
	waited chan struct{} // closed when the process has exited
	err    error         // Wait's result
	exitAt time.Time
}

// spawn starts size children of role, all connecting through a store served
// by the test, and kills any still running when the test ends. deadline is
// the hard limit on their lifetime; env (KEY=value) is added to every child's
// environment, envOf(rank) to each one's.
func spawn(t *testing.T, role string, size int, timeout, deadline time.Duration, env []string, envOf ...func(r int) []string) []*child {
	t.Helper()
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	kids := make([]*child, size)
	for r := range size {
		c := &child{rank: r, waited: make(chan struct{})}
		vars := append([]string{envRank + "=" + strconv.Itoa(r), envSize + "=" + strconv.Itoa(size),
			envStore + "=" + srv.Addr(), envTimeout + "=" + timeout.String()}, env...)
		for _, f := range envOf {
			vars = append(vars, f(r)...)
		}
		c.cmd = childproc.Command(ctx, role, vars...)
		c.cmd.Stderr = &lockedWriter{mu: &c.mu, b: &c.stderr}
		out, err := c.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go c.collect(bufio.NewScanner(out))
		kids[r] = c
	}
	t.Cleanup(func() {
		for _, c := range kids {
			c.cmd.Process.Kill()
			<-c.waited
		}
	})
	return kids
}

func (c *child) collect(sc *bufio.Scanner) {
	for sc.Scan() {
		c.mu.Lock()
		c.lines = append(c.lines, sc.Text())
		c.mu.Unlock()
	}
	err := c.cmd.Wait()
	c.mu.Lock()
	c.err, c.exitAt = err, time.Now()
	c.mu.Unlock()
	close(c.waited)
}

// waitLine waits until the child has printed a line starting with prefix.
func (c *child) waitLine(t *testing.T, prefix string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, l := range c.lines {
			if strings.HasPrefix(l, prefix) {
				c.mu.Unlock()
				return l
			}
		}
		c.mu.Unlock()
		select {
		case <-c.waited:
			t.Fatalf("rank %d exited (%v) before printing %q; stderr:\n%s", c.rank, c.err, prefix, c.errText())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("rank %d printed no %q within %s; stderr:\n%s", c.rank, prefix, within, c.errText())
	return ""
}

// wait waits for the child to exit and returns its exit code.
func (c *child) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-c.waited:
	case <-time.After(within):
		t.Fatalf("rank %d still running after %s; stderr:\n%s", c.rank, within, c.errText())
	}
	return c.cmd.ProcessState.ExitCode()
}

func (c *child) errText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// value is rank r's input at index i: small integers, so float32 sums are
// exact and the references need no tolerance.
func value(r, i int) float64 { return float64((r + 1) * (i%13 + 1)) }

// signed varies in sign and in which rank holds the extreme, for max/min.
func signed(r, i int) float64 { return float64((i*7+r*5)%17 - 8) }

// input is what rank r contributes to a reduction with op.
func input(op collective.ReduceOp, r, i int) float64 {
	if op == collective.Max || op == collective.Min {
		return signed(r, i)
	}
	return value(r, i)
}

// reduced is the reference: op folded over the inputs of all size ranks.
func reduced(op collective.ReduceOp, size, i int) float64 {
	acc := input(op, 0, i)
	for r := 1; r < size; r++ {
		x := input(op, r, i)
		switch op {
		case collective.Max:
			acc = max(acc, x)
		case collective.Min:
			acc = min(acc, x)
		default:
			acc += x
		}
	}
	if op == collective.Avg {
		acc /= float64(size)
	}
	return acc
}

// firstMismatch returns "" when got[i] == want(i) for every i.
func firstMismatch[T float32 | float64](got []T, want func(i int) float64) string {
	for i, g := range got {
		if w := T(want(i)); g != w {
			return fmt.Sprintf("element %d of %d: got %v, want %v", i, len(got), g, w)
		}
	}
	return ""
}
