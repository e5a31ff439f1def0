package worker_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// goList returns the packages `go list -deps pkg` prints (non-test dependencies).
func goList(t *testing.T, pkg string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// A worker reads the launcher's environment without linking the launcher or the
// etcd server it embeds; the launcher is the one that depends on the definition.
func TestWorkerDoesNotImportTheLauncher(t *testing.T) {
	const (
		self    = "github.com/lrtrain/lrtrain/dist/worker"
		env     = self + "/workerenv"
		launch  = "github.com/lrtrain/lrtrain/dist/launch"
		embed   = "github.com/lrtrain/lrtrain/dist/etcdembed"
		server  = "go.etcd.io/etcd/server"
		rdzvPkg = "github.com/lrtrain/lrtrain/dist/rdzv"
	)
	deps := goList(t, self)
	seen := map[string]bool{}
	for _, p := range deps {
		seen[p] = true
		if p == launch || p == embed || strings.HasPrefix(p, server) {
			t.Errorf("%s depends on %s", self, p)
		}
	}
	for _, p := range []string{self, env, rdzvPkg} { // the list is the real one, not empty
		if !seen[p] {
			t.Errorf("go list -deps %s lacks %s (%d packages)", self, p, len(deps))
		}
	}
	imports := false
	for _, p := range goList(t, launch) {
		if p == env {
			imports = true
		}
		if p == self {
			t.Errorf("%s depends on %s, which forms groups; it should only need %s", launch, self, env)
		}
	}
	if !imports {
		t.Errorf("%s does not depend on %s", launch, env)
	}
}
