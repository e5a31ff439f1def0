package childproc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
)

func TestMain(m *testing.M) {
	childproc.Main(map[string]func() int{
		"env":  envChild,
		"exit": func() int { return 7 },
	})
	os.Exit(m.Run())
}

// envChild prints its name and the variables the test asks about.
func envChild() int {
	fmt.Printf("name=%s\n", childproc.Name())
	for _, k := range strings.Split(os.Getenv("KIT_SHOW"), ",") {
		fmt.Printf("%s=%s\n", k, os.Getenv(k))
	}
	return 0
}

// The child runs the named function, not the tests, with the test's environment
// (OPENBLAS_* and OMP_NUM_THREADS included) and the given entries, a later one
// winning.
func TestChildGetsTheEnvironment(t *testing.T) {
	t.Setenv("OPENBLAS_CORETYPE", "Sandybridge")
	t.Setenv("OMP_NUM_THREADS", "2")
	t.Setenv("KIT_OVERRIDDEN", "parent")
	cmd := childproc.Command(context.Background(), "env",
		"KIT_SHOW=OPENBLAS_CORETYPE,OMP_NUM_THREADS,KIT_OVERRIDDEN,KIT_EXTRA", "KIT_EXTRA=x", "KIT_OVERRIDDEN=child")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, childproc.LogWriter(t, "child: ")
	childproc.Start(t, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	want := "name=env\nOPENBLAS_CORETYPE=Sandybridge\nOMP_NUM_THREADS=2\nKIT_OVERRIDDEN=child\nKIT_EXTRA=x\n"
	if out.String() != want {
		t.Errorf("child printed\n%s\nwant\n%s", out.String(), want)
	}
	if childproc.Name() != "" {
		t.Errorf("Name in the test process: %q", childproc.Name())
	}
}

// The child's result is its exit code; an unknown name exits 2 naming the known ones.
func TestChildExitCodes(t *testing.T) {
	err := childproc.Command(context.Background(), "exit").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("child exit: %v, want exit status 7", err)
	}
	cmd := childproc.Command(context.Background(), "nonesuch")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("unknown child: %v, want exit status 2", err)
	}
	if !strings.Contains(stderr.String(), `no child "nonesuch" (it has [env exit])`) {
		t.Errorf("unknown child's message: %q", stderr.String())
	}
}

// Start's cleanup kills a child the test did not wait for.
func TestStartKillsALeftoverChild(t *testing.T) {
	var cmd *exec.Cmd
	t.Run("leave", func(t *testing.T) {
		// "exit" would end at once; the test binary's own -test.run=^$ with no marker
		// would too, so the child blocks reading a pipe nobody writes.
		cmd = exec.Command("cat")
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		childproc.Start(t, cmd)
	})
	if cmd.ProcessState == nil {
		t.Fatal("the child was not waited for")
	}
	if ws := cmd.ProcessState.String(); ws != "signal: killed" {
		t.Errorf("child ended with %q, want signal: killed", ws)
	}
}
