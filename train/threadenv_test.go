package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
)

// ThreadEnv adds each default only when none of its variables is set, each decided on
// its own; a value the user chose is kept, and a longer name that merely starts like
// one is not it.
func TestThreadEnv(t *testing.T) {
	const omp, blas = "OMP_WAIT_POLICY=PASSIVE", "OPENBLAS_THREAD_TIMEOUT=4"
	for _, tc := range []struct {
		env []string
		add []string // what must be appended, in this order
	}{
		{nil, []string{omp, blas}},
		{[]string{"PATH=/bin", "OMP_NUM_THREADS=2"}, []string{omp, blas}},
		{[]string{"OMP_WAIT_POLICYX=1", "XGOMP_SPINCOUNT=1", "OPENBLAS_THREAD_TIMEOUTS=9"}, []string{omp, blas}},
		{[]string{"PATH=/bin", "OMP_WAIT_POLICY=ACTIVE"}, []string{blas}},
		{[]string{"OMP_WAIT_POLICY="}, []string{blas}},
		{[]string{"GOMP_SPINCOUNT=10000", "PATH=/bin"}, []string{blas}},
		{[]string{"OPENBLAS_THREAD_TIMEOUT=28"}, []string{omp}},
		{[]string{"OPENBLAS_THREAD_TIMEOUT=28", "GOMP_SPINCOUNT=0"}, nil},
		{[]string{"OMP_WAIT_POLICY=PASSIVE", "OPENBLAS_THREAD_TIMEOUT=4"}, nil},
	} {
		got, add := ThreadEnv(tc.env)
		if add != (len(tc.add) > 0) {
			t.Errorf("ThreadEnv(%q) adds = %v, want %v", tc.env, add, len(tc.add) > 0)
			continue
		}
		want := append(slices.Clone(tc.env), tc.add...)
		if !slices.Equal(got, want) {
			t.Errorf("ThreadEnv(%q) = %q, want %q", tc.env, got, want)
		}
	}
	// The caller's slice is not written through.
	env := make([]string, 1, 4)
	env[0] = "PATH=/bin"
	ThreadEnv(env)
	if env[:2][1] != "" {
		t.Errorf("ThreadEnv wrote into its argument's spare capacity: %q", env[:2])
	}
}

// execWithThreadEnv execs the same program with the same arguments and the extended
// environment, does nothing when the environment already decides, and wraps a failed
// exec.
func TestExecWithThreadEnv(t *testing.T) {
	exe, args := os.Args[0], []string{"lrtrain", "train", "--config", "c.yaml"}
	var calls int
	var gotExe string
	var gotArgs, gotEnv []string
	fake := func(e string, a, env []string) error {
		calls++
		gotExe, gotArgs, gotEnv = e, a, env
		return nil
	}
	if err := execWithThreadEnv([]string{"OMP_WAIT_POLICY=ACTIVE", "OPENBLAS_THREAD_TIMEOUT=28"}, args, exe, fake); err != nil || calls != 0 {
		t.Fatalf("with both pools' variables set: err %v, %d execs, want none", err, calls)
	}
	if err := execWithThreadEnv([]string{"HOME=/root"}, args, exe, fake); err != nil || calls != 1 {
		t.Fatalf("without them: err %v, %d execs, want 1", err, calls)
	}
	wantEnv := []string{"HOME=/root", "OMP_WAIT_POLICY=PASSIVE", "OPENBLAS_THREAD_TIMEOUT=4"}
	if gotExe != exe || !slices.Equal(gotArgs, args) || !slices.Equal(gotEnv, wantEnv) {
		t.Errorf("exec(%q, %q, %q), want (%q, %q, %q)", gotExe, gotArgs, gotEnv, exe, args, wantEnv)
	}
	boom := errors.New("boom")
	err := execWithThreadEnv([]string{"OMP_WAIT_POLICY=ACTIVE"}, args, exe, func(string, []string, []string) error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "OPENBLAS_THREAD_TIMEOUT=4") || strings.Contains(err.Error(), "PASSIVE") {
		t.Errorf("failed exec: %v, want it wrapped and naming only the setting it added", err)
	}
	if err := execWithThreadEnv(nil, args, "/nonexistent/lrtrain", fake); err == nil || calls != 1 {
		t.Errorf("missing program: err %v after %d execs, want an error and no exec", err, calls)
	}
}

// threadEnvChild is the child "threadenv": it calls ExecWithThreadEnv and, in the
// process that runs on (the same one when it re-executed), prints its process ID,
// OMP_WAIT_POLICY and OPENBLAS_THREAD_TIMEOUT.
func threadEnvChild() int {
	if err := ExecWithThreadEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d %s %s\n", os.Getpid(), os.Getenv("OMP_WAIT_POLICY"), os.Getenv("OPENBLAS_THREAD_TIMEOUT"))
	return 0
}

// The real exec: a child started without the variables ends up running with PASSIVE
// and a thread timeout of 4 under its own process ID (the launcher's bookkeeping of
// workers holds); one started with ACTIVE keeps it and still gets the timeout.
func TestExecWithThreadEnvReexecutes(t *testing.T) {
	for _, tc := range []struct{ set, want string }{{"", "PASSIVE"}, {"ACTIVE", "ACTIVE"}} {
		cmd := childproc.Command(context.Background(), "threadenv")
		env := cmd.Env[:0:0]
		for _, kv := range cmd.Env {
			if !strings.HasPrefix(kv, "OMP_WAIT_POLICY=") && !strings.HasPrefix(kv, "GOMP_SPINCOUNT=") &&
				!strings.HasPrefix(kv, "OPENBLAS_THREAD_TIMEOUT=") {
				env = append(env, kv)
			}
		}
		if tc.set != "" {
			env = append(env, "OMP_WAIT_POLICY="+tc.set)
		}
		cmd.Env = env
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, childproc.LogWriter(t, "child: ")
		childproc.Start(t, cmd)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
		var pid int
		var policy, timeout string
		if _, err := fmt.Sscan(out.String(), &pid, &policy, &timeout); err != nil {
			t.Fatalf("child printed %q: %v", out.String(), err)
		}
		if pid != cmd.Process.Pid || policy != tc.want || timeout != "4" {
			t.Errorf("started with %q: child ran as pid %d with OMP_WAIT_POLICY %q and OPENBLAS_THREAD_TIMEOUT %q, want pid %d, %q and 4",
				tc.set, pid, policy, timeout, cmd.Process.Pid, tc.want)
		}
	}
}
