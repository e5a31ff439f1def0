// Package childproc re-executes a test binary as a child process that runs one
// named function instead of the tests: a training process, a rank of a shard group,
// a rank of a collective group. TestMain hands Main the functions a binary's children
// may run; a test starts one with Command (and Start), naming it.
//
//	func TestMain(m *testing.M) {
//		childproc.Main(map[string]func() int{"rank": rankChild})
//		os.Exit(m.Run())
//	}
//
//	cmd := childproc.Command(ctx, "rank", "MY_RANK=1", "OMP_NUM_THREADS=1")
//
// The child's environment is the test process's own followed by the given entries
// (a later entry wins, as in os/exec) and the marker. Passing the whole environment
// through is deliberate: the child then runs the same OpenBLAS kernel (OPENBLAS_*)
// as the test and as its sibling children, which is what lets tests compare results
// of different processes bit for bit on any machine; a test that needs one intra-op
// thread per child says OMP_NUM_THREADS=1 among the entries.
package childproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"sync"
	"testing"
)

// Marker is the environment variable that makes a test binary a child: its value
// names the function to run.
const Marker = "LRTRAIN_TEST_CHILD"

// exitUnknown is a child's exit code when the binary has no function of that name.
const exitUnknown = 2

// Main returns at once in the test process. In a child it runs the function that
// the marker names and exits with its result; it is called first in TestMain,
// before m.Run, so no test runs in a child.
func Main(children map[string]func() int) {
	name, ok := os.LookupEnv(Marker)
	if !ok || name == "" {
		return
	}
	f, ok := children[name]
	if !ok {
		names := make([]string, 0, len(children))
		for n := range children {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "childproc: this test binary has no child %q (it has %v)\n", name, names)
		os.Exit(exitUnknown)
	}
	os.Exit(f())
}

// Name is the child this process runs, or "" in the test process.
func Name() string { return os.Getenv(Marker) }

// Command returns a command that runs the test binary as child name, with this
// process's environment followed by env and the marker. The binary is asked to run
// no test (-test.run=^$) should its TestMain not call Main. ctx kills the child when
// done, as exec.CommandContext does.
func Command(ctx context.Context, name string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), Marker+"="+name)
	return cmd
}

// Start starts cmd and fails the test if it cannot. When the test ends, a child
// that the test has not waited for is killed and waited for, so none outlives it.
func Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("childproc: start %v: %v", cmd.Args, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
}

// LogWriter is an io.Writer that hands what a child writes to t.Logf, each write
// prefixed (shown when the test fails, or with -v). The test must wait for the
// child before it ends (Start's cleanup does).
func LogWriter(t testing.TB, prefix string) *Log {
	return &Log{t: t, prefix: prefix}
}

// Log is the writer LogWriter returns.
type Log struct {
	mu     sync.Mutex
	t      testing.TB
	prefix string
}

func (l *Log) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s%s", l.prefix, b)
	return len(b), nil
}
