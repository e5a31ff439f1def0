package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/train"
)

// lrtrainBin is the binary built by TestMain, unique to this test run, so leftover
// processes can be recognised by their executable path.
var lrtrainBin string

// workDir is TestMain's temporary directory (the binary, the shared base model).
var workDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() { // every test here skips: build nothing
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "lrtrain-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	workDir = dir
	lrtrainBin = filepath.Join(dir, "lrtrain")
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	build := exec.Command("go", "build", "-o", lrtrainBin, "./cmd/lrtrain")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build lrtrain: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if left := killLeftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: killed leftover processes %v\n", left)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// repoRoot is the module root, two levels above this package.
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("no caller information")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
}

// testdata returns the absolute path of a file of data/testdata.
func testdata(t *testing.T, name string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "data", "testdata", name)
}

// proc is a started lrtrain process with its combined output in a file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs lrtrain with args; the process is killed when the test ends.
func start(t *testing.T, logName string, args ...string) *proc {
	t.Helper()
	log := filepath.Join(t.TempDir(), logName)
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lrtrainBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = childEnv()
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if left := killLeftovers(); len(left) > 0 {
			t.Errorf("processes left behind: %v", left)
		}
	})
	return p
}

// childEnv is the environment of every lrtrain process the tests start: this
// process's own, so the same OPENBLAS_* kernel settings, and one intra-op thread
// whatever OMP_NUM_THREADS the suite runs under. The byte-for-byte comparisons set runs
// of different shapes against each other (one process; one launcher of two workers;
// two launchers of one worker each), and a bit-exact result needs the same kernels and
// thread split on both sides: a launcher left to choose gives each worker CPUs/nproc
// threads, 2 to a one-worker node agent on 2 cores but 1 to a two-worker one.
func childEnv() []string {
	return append(os.Environ(), "OMP_NUM_THREADS=1")
}

// checkWorkerEnv fails the test unless the running worker pid got the settings that
// childEnv hands the launchers: one thread and this process's OPENBLAS_* variables, with
// what lrtrain's re-exec adds to them (train.ThreadEnv: OPENBLAS_THREAD_TIMEOUT unless set).
func checkWorkerEnv(t *testing.T, pid int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatalf("worker %d: %v", pid, err)
	}
	got := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if name, v, ok := strings.Cut(kv, "="); ok {
			got[name] = v
		}
	}
	want := map[string]string{"OMP_NUM_THREADS": "1"}
	env, _ := train.ThreadEnv(os.Environ())
	for _, kv := range env {
		if name, v, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "OPENBLAS_") {
			want[name] = v
		}
	}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("worker %d: %s=%q, want %q (the test's own)", pid, name, g, v)
		}
	}
	for name := range got {
		if _, ok := want[name]; strings.HasPrefix(name, "OPENBLAS_") && !ok {
			t.Errorf("worker %d: %s set, not in the test's environment", pid, name)
		}
	}
}

// wait waits for the process to exit within d and returns its error.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v did not exit within %v\n%s", p.cmd.Args, d, p.output())
		return nil
	}
}

// output returns what the process wrote so far (its tail when long).
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// run runs lrtrain to completion within d and fails the test unless it exits 0.
func run(t *testing.T, d time.Duration, args ...string) {
	t.Helper()
	p := start(t, "run.log", args...)
	if err := p.wait(t, d); err != nil {
		t.Fatalf("lrtrain %s: %v\n%s", strings.Join(args, " "), err, p.output())
	}
}

// ourProcesses lists the live (not zombie) processes running this test run's binary.
func ourProcesses() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || strings.TrimSuffix(exe, " (deleted)") != lrtrainBin {
			continue
		}
		if processState(pid) == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// processState is the state letter of /proc/pid/stat (0 when the process is gone).
func processState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// alive reports whether pid is a running (non-zombie) process.
func alive(pid int) bool {
	s := processState(pid)
	return s != 0 && s != 'Z'
}

// killLeftovers SIGKILLs, one by one, every live process of this run's binary and
// returns their ids. Processes the tests started end before their test does, so any
// found here leaked.
func killLeftovers() []int {
	// Give processes that are being stopped a moment to go; the limit only bounds it.
	var pids []int
	_ = testkit.Poll(3*time.Second, func() bool { pids = ourProcesses(); return len(pids) == 0 })
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return pids
}

// workerPID finds the worker of the given global rank among the children of the
// launcher (by its RANK variable), waiting up to d for it to appear.
func workerPID(t *testing.T, launcher, rank int, d time.Duration) int {
	t.Helper()
	want := []byte("RANK=" + strconv.Itoa(rank) + "\x00")
	found := 0
	testkit.WaitFor(t, d, fmt.Sprintf("the worker of rank %d under launcher %d", rank, launcher), func() bool {
		for _, pid := range children(launcher) {
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if err == nil && (bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...))) && alive(pid) {
				found = pid
				return true
			}
		}
		return false
	})
	return found
}

// children lists the child processes of pid.
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// waitFor polls cond until it holds or d passes (or ctx ends), and reports whether
// it held; d only bounds the wait.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	return testkit.Poll(d, func() bool { return ctx.Err() != nil || cond() }) == nil && cond()
}
