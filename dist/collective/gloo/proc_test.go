package gloo_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
)

// transport is one way a group of processes on this host moves its data: its
// Config.SharedMemory and what Transport() then starts with.
type transport struct {
	name  string
	limit int64
	want  string
}

// transports: Gloo's TCP alone; shared memory with lrtrain's windows; and
// shared memory with windows of 4 KiB, so that the suite's buffers (up to 4 MiB)
// cross many windows, at sizes that are not multiples of one.
var transports = []transport{
	{"tcp", 0, "tcp"},
	{"shm", gloo.DefaultSharedMemory, fmt.Sprintf("shared memory (windows of %d bytes)", gloo.DefaultSharedMemory)},
	{"shm-window-4KiB", 4096, "shared memory (windows of 4096 bytes)"},
}

// env gives the children tr's limit and a directory of the test's own for
// their shared-memory files, which the test checks with noFilesLeft.
func (tr transport) env(t *testing.T) ([]string, string) {
	dir := t.TempDir()
	return []string{fmt.Sprintf("%s=%d", envShm, tr.limit), envShmDir + "=" + dir}, dir
}

// noFilesLeft fails the test when dir holds anything: every shared-memory file
// is unlinked once every rank has mapped it.
func noFilesLeft(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("%s left in %s", e.Name(), dir)
	}
}

// TestCollectivesAcrossProcesses runs every collective between real
// processes on loopback, on each transport, and checks the results against
// references computed independently by each rank (see runSuite).
func TestCollectivesAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	for _, tr := range transports {
		for _, size := range []int{2, 3, 4} {
			t.Run(fmt.Sprintf("%s/ranks=%d", tr.name, size), func(t *testing.T) {
				env, dir := tr.env(t)
				kids := spawn(t, "suite", size, 10*time.Second, 40*time.Second, env)
				var maxEnter, minExit int64
				for _, c := range kids {
					if code := c.wait(t, 40*time.Second); code != exitOK {
						t.Fatalf("rank %d exited with %d:\n%s", c.rank, code, c.errText())
					}
					if line := c.waitLine(t, "transport ", time.Second); !strings.HasPrefix(line, "transport "+tr.want) {
						t.Errorf("rank %d: %q, want %q", c.rank, line, tr.want)
					}
					var enter, exit int64
					line := c.waitLine(t, "barrier ", time.Second)
					if _, err := fmt.Sscanf(line, "barrier %d %d", &enter, &exit); err != nil {
						t.Fatalf("rank %d: %q: %v", c.rank, line, err)
					}
					maxEnter = max(maxEnter, enter)
					if minExit == 0 || exit < minExit {
						minExit = exit
					}
				}
				if minExit < maxEnter {
					t.Errorf("a rank left the barrier %s before the last one entered", time.Duration(maxEnter-minExit))
				}
				noFilesLeft(t, dir)
			})
		}
	}
}

// TestSharedMemoryNeedsOneHost gives one of three ranks another shared-memory
// directory (as a rank in another container or on another node has): the
// ranks must agree to run on TCP, say why, and pass the suite.
func TestSharedMemoryNeedsOneHost(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	env, dir := transports[1].env(t)
	other := t.TempDir()
	kids := spawn(t, "suite", 3, 10*time.Second, 40*time.Second, env, func(r int) []string {
		if r == 1 {
			return []string{envShmDir + "=" + other}
		}
		return nil
	})
	for _, c := range kids {
		if code := c.wait(t, 40*time.Second); code != exitOK {
			t.Fatalf("rank %d exited with %d:\n%s", c.rank, code, c.errText())
		}
		want := "transport tcp (shared memory: the ranks do not share a host"
		if line := c.waitLine(t, "transport ", time.Second); !strings.HasPrefix(line, want) {
			t.Errorf("rank %d: %q, want %q…", c.rank, line, want)
		}
	}
	noFilesLeft(t, dir)
	noFilesLeft(t, other)
}

// TestKilledInSetupFileIsSwept SIGKILLs a rank right after it created its
// shared-memory file, before the agreement after which every rank unlinks its
// own: the survivor's setup must fail (the group cannot form) and remove its
// own file, the victim's stays. The next group formed in that directory
// removes it once it is old enough and unlocked, and leaves alone what is not:
// a file some process holds locked (a live rank), a young file (a rank that
// is taking its lock), and files that are not the transport's.
func TestKilledInSetupFileIsSwept(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	env, dir := transports[1].env(t)
	kids := spawn(t, "suite", 2, 10*time.Second, 40*time.Second, env, func(r int) []string {
		if r == 1 {
			return []string{envHang + "=1"}
		}
		return nil
	})
	line := kids[1].waitLine(t, "created ", 20*time.Second)
	orphan := strings.TrimPrefix(line, "created ")
	if err := kids[1].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := kids[0].wait(t, 20*time.Second); code != exitSetup {
		t.Fatalf("rank 0 exited with %d, want %d (setup failed):\n%s", code, exitSetup, kids[0].errText())
	}
	kids[1].wait(t, 5*time.Second)
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || filepath.Join(dir, left[0].Name()) != orphan {
		t.Fatalf("after the kill %s holds %v, want only the victim's %s", dir, left, orphan)
	}

	old := time.Now().Add(-2 * gloo.OrphanAge)
	keep := map[string]bool{}
	file := func(name string, age time.Time) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, age, age); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if err := os.Chtimes(orphan, old, old); err != nil { // as if a minute had passed
		t.Fatal(err)
	}
	locked := file("lrtrain-gloo-live-r0", old)
	f, err := os.Open(locked)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	keep[locked] = true
	keep[file("lrtrain-gloo-young-r0", time.Now())] = true
	keep[file("other-old-file", old)] = true

	gloo.SetShmDir(dir)
	t.Cleanup(func() { gloo.SetShmDir("/dev/shm") })
	gs := groups(t, 2, 30*time.Second, func(_ int, c *collective.Config) { c.SharedMemory = 4096 })
	if tr := gs[0].Transport(); !strings.HasPrefix(tr, "shared memory") {
		t.Fatalf("transport %q", tr)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("the killed rank's %s is still there (stat: %v)", orphan, err)
	}
	for path := range keep {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s was removed: %v", path, err)
		}
	}
	gatherAll(t, gs, 1000)
}

// TestKilledRankFailsSurvivors SIGKILLs one of four ranks while they
// all-reduce in a loop, over TCP and over shared memory: every survivor's
// collective must fail within the timeout with an error naming the op, its
// rank and the timeout, and the survivors must exit.
func TestKilledRankFailsSurvivors(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) { killedRankFailsSurvivors(t, tr) })
	}
}

func killedRankFailsSurvivors(t *testing.T, tr transport) {
	const timeout = 3 * time.Second
	env, dir := tr.env(t)
	kids := spawn(t, "loop", 4, timeout, 30*time.Second, env)
	for _, c := range kids {
		c.waitLine(t, "ready", 15*time.Second)
		if line := c.waitLine(t, "transport ", time.Second); !strings.HasPrefix(line, "transport "+tr.want) {
			t.Fatalf("rank %d: %q, want %q", c.rank, line, tr.want)
		}
	}
	victim := kids[1]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for _, c := range kids {
		if c == victim {
			continue
		}
		code := c.wait(t, timeout+2*time.Second)
		line := c.waitLine(t, "ERR ", time.Second)
		took := c.exitAt.Sub(killed)
		t.Logf("rank %d exited %s after the kill: %s", c.rank, took.Round(time.Millisecond), line)
		if code != exitFailed {
			t.Errorf("rank %d exited with %d, want %d; stderr:\n%s", c.rank, code, exitFailed, c.errText())
		}
		if took > timeout+time.Second {
			t.Errorf("rank %d took %s to fail, timeout is %s", c.rank, took, timeout)
		}
		for _, want := range []string{"allreduce(sum)", fmt.Sprintf("rank %d of 4", c.rank), "timeout 3s"} {
			if !strings.Contains(line, want) {
				t.Errorf("rank %d's error %q does not name %q", c.rank, line, want)
			}
		}
		if strings.Contains(c.allLines(), "ERR later call") {
			t.Errorf("rank %d: a call after the failure did not fail with ErrBroken:\n%s", c.rank, c.allLines())
		}
	}
	noFilesLeft(t, dir)
}

// TestHungRankTimesOut stops one of three ranks (SIGSTOP: its sockets stay
// open and its process alive, so only the timeout can notice), over TCP and
// over shared memory: the survivors must fail within the timeout, at least one
// of them with ErrTimeout.
func TestHungRankTimesOut(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) { hungRankTimesOut(t, tr) })
	}
}

func hungRankTimesOut(t *testing.T, tr transport) {
	const timeout = 2 * time.Second
	env, _ := tr.env(t)
	kids := spawn(t, "loop", 3, timeout, 30*time.Second, env)
	for _, c := range kids {
		c.waitLine(t, "ready", 15*time.Second)
	}
	victim := kids[2]
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	timeouts := 0
	for _, c := range kids[:2] {
		code := c.wait(t, timeout+3*time.Second)
		line := c.waitLine(t, "ERR ", time.Second)
		t.Logf("rank %d exited %s after the stop: %s", c.rank, c.exitAt.Sub(stopped).Round(time.Millisecond), line)
		if code != exitFailed {
			t.Errorf("rank %d exited with %d, want %d; stderr:\n%s", c.rank, code, exitFailed, c.errText())
		}
		if took := c.exitAt.Sub(stopped); took > timeout+2*time.Second {
			t.Errorf("rank %d took %s to fail, timeout is %s", c.rank, took, timeout)
		}
		if strings.HasPrefix(line, "ERR timeout") {
			timeouts++
		}
	}
	if timeouts == 0 {
		t.Errorf("no survivor reported a timeout")
	}
}

func (c *child) allLines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}
