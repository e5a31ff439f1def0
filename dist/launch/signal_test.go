package launch

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/internal/testkit"
)

// A launcher process configured through PET_* variables (and one flag that
// wins over its variable) forwards SIGTERM to its workers, kills what they
// leave behind, and exits with 128+15.
func TestSIGTERMStopsWorkersAndLauncher(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	out := workerOut(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, roleLauncher, "--nproc-per-node", "2", "--", roleWorker, "child", out)
	cmd.Env = append(os.Environ(),
		"PET_STANDALONE=1", "PET_NPROC_PER_NODE=5", "PET_GRACE_PERIOD=3", "PET_MONITOR_INTERVAL=0.5",
		"PET_RUN_DIR="+t.TempDir(), "PET_RDZV_BACKEND=etcd-v2", "PET_TEE=all")
	stderr, stdout := &syncBuffer{}, &syncBuffer{}
	cmd.Stderr, cmd.Stdout = stderr, stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill() // its workers die with it (Pdeathsig)
			<-exited
		}
		if t.Failed() {
			t.Logf("launcher stderr:\n%s", stderr)
		}
	})

	testkit.WaitFor(t, testDeadline, "both workers and their children", func() bool {
		recs := records(t, out)
		return len(recs) == 2 && recs[recordName(0, 1)].Child != 0 && recs[recordName(0, 0)].Child != 0
	})
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(testDeadline):
		t.Fatal("launcher did not exit after SIGTERM")
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("launcher ended with %v, want exit code 143", waitErr)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("launcher took %v to stop workers that exit at once", d)
	}
	for rank := 0; rank < 2; rank++ {
		var term struct{ Signal string }
		readJSON(t, filepath.Join(out, "term-r0-rank"+string(rune('0'+rank))+".json"), &term)
		if term.Signal != syscall.SIGTERM.String() {
			t.Errorf("rank %d got %q, want SIGTERM", rank, term.Signal)
		}
	}
	for _, r := range records(t, out) {
		testkit.WaitFor(t, 10*time.Second, "the SIGKILL of a child that ignores SIGTERM", func() bool { return !procAlive(r.Child) })
	}
	log := stderr.String()
	for _, want := range []string{"etcd-v2", "stopping workers"} {
		if !strings.Contains(log, want) {
			t.Errorf("launcher log lacks %q", want)
		}
	}
	if !strings.Contains(stdout.String(), "[rank1]: hello from rank 1 of 2") {
		t.Errorf("--tee all: stdout %q", stdout)
	}
}
