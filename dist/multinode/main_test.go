package multinode

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// lrtrainBin is the lrtrain binary TestMain builds for this run; workDir holds it.
var lrtrainBin, workDir string

// skipReason is why this machine cannot run the harness ("" when it can).
var skipReason string

func TestMain(m *testing.M) {
	// The same binary runs as an etcd member or a network probe inside a namespace.
	if ok, code := RunMemberFromEnv(); ok {
		os.Exit(code)
	}
	if ok, code := runProbeFromEnv(); ok {
		os.Exit(code)
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	skipReason = canRun()
	if skipReason != "" {
		return m.Run() // every test skips, saying why
	}
	if removed, err := Sweep(); err != nil {
		fmt.Fprintln(os.Stderr, "multinode: sweep of stale namespaces:", err)
		return 1
	} else if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "multinode: removed stale namespaces of dead runs: %v\n", removed)
	}
	dir, err := os.MkdirTemp("", "lrtrain-multinode-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "multinode:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	workDir = dir
	code := m.Run()
	if left := ownNamespaces(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "multinode: namespaces left behind: %v\n", left)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// canRun says why the harness does not run: it runs only when asked
// (LRTRAIN_MULTINODE=1, as make test-multinode sets), and needs root (to create
// network namespaces) and iproute2's ip.
func canRun() string {
	if os.Getenv("LRTRAIN_MULTINODE") != "1" {
		return "the multi-node harness runs under `make test-multinode` (LRTRAIN_MULTINODE=1; needs root and network namespaces; several minutes)"
	}
	if os.Geteuid() != 0 {
		return "the multi-node harness needs root (it creates network namespaces)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "the multi-node harness needs iproute2's ip (apt-get install iproute2)"
	}
	return ""
}

// needHarness skips t when the machine cannot run the harness.
func needHarness(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// buildLrtrain builds the lrtrain binary once for the run ($LRTRAIN_MULTINODE_BIN
// names one to use instead).
func buildLrtrain(t *testing.T) string {
	t.Helper()
	if lrtrainBin != "" {
		return lrtrainBin
	}
	if bin := os.Getenv("LRTRAIN_MULTINODE_BIN"); bin != "" { // a binary built beforehand
		lrtrainBin = bin
		return bin
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(workDir, "lrtrain")
	build := exec.Command("go", "build", "-o", bin, "./cmd/lrtrain")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build lrtrain: %v\n%s", err, out)
	}
	lrtrainBin = bin
	return bin
}

// ownNamespaces lists the namespaces this process created that still exist.
func ownNamespaces() []string {
	ents, _ := os.ReadDir("/run/netns")
	prefix := fmt.Sprintf("%s%d-", NamePrefix, os.Getpid())
	var out []string
	for _, e := range ents {
		if len(e.Name()) >= len(prefix) && e.Name()[:len(prefix)] == prefix {
			out = append(out, e.Name())
		}
	}
	return out
}

// newNet makes a Net that is closed when t ends, checking that nothing was left
// running in it.
func newNet(t *testing.T) *Net {
	t.Helper()
	n, err := NewNet("10.200.0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killed, err := n.Close()
		if err != nil {
			t.Errorf("close the namespaces: %v", err)
		}
		if len(killed) > 0 {
			t.Logf("cleanup killed processes still running in the namespaces: %v", killed)
		}
	})
	return n
}
