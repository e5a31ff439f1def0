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

// ThreadEnv adds OMP_WAIT_POLICY=PASSIVE only when neither libgomp variable is set; a
// value the user chose is kept, and a longer name that merely starts like one is not it.
func TestThreadEnv(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want bool
	}{
		{nil, true},
		{[]string{"PATH=/bin", "OMP_NUM_THREADS=2"}, true},
		{[]string{"OMP_WAIT_POLICYX=1", "XGOMP_SPINCOUNT=1"}, true},
		{[]string{"PATH=/bin", "OMP_WAIT_POLICY=ACTIVE"}, false},
		{[]string{"OMP_WAIT_POLICY="}, false},
		{[]string{"GOMP_SPINCOUNT=10000", "PATH=/bin"}, false},
	} {
		got, add := ThreadEnv(tc.env)
		if add != tc.want {
			t.Errorf("ThreadEnv(%q) adds = %v, want %v", tc.env, add, tc.want)
			continue
		}
		want := tc.env
		if add {
			want = append(slices.Clone(tc.env), "OMP_WAIT_POLICY=PASSIVE")
		}
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
	if err := execWithThreadEnv([]string{"OMP_WAIT_POLICY=ACTIVE"}, args, exe, fake); err != nil || calls != 0 {
		t.Fatalf("with OMP_WAIT_POLICY set: err %v, %d execs, want none", err, calls)
	}
	if err := execWithThreadEnv([]string{"HOME=/root"}, args, exe, fake); err != nil || calls != 1 {
		t.Fatalf("without it: err %v, %d execs, want 1", err, calls)
	}
	if gotExe != exe || !slices.Equal(gotArgs, args) || !slices.Equal(gotEnv, []string{"HOME=/root", "OMP_WAIT_POLICY=PASSIVE"}) {
		t.Errorf("exec(%q, %q, %q), want (%q, %q, [HOME=/root OMP_WAIT_POLICY=PASSIVE])", gotExe, gotArgs, gotEnv, exe, args)
	}
	boom := errors.New("boom")
	err := execWithThreadEnv(nil, args, exe, func(string, []string, []string) error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "OMP_WAIT_POLICY=PASSIVE") {
		t.Errorf("failed exec: %v, want it wrapped and naming the setting", err)
	}
	if err := execWithThreadEnv(nil, args, "/nonexistent/lrtrain", fake); err == nil || calls != 1 {
		t.Errorf("missing program: err %v after %d execs, want an error and no exec", err, calls)
	}
}

// threadEnvChild is the child "threadenv": it calls ExecWithThreadEnv and, in the
// process that runs on (the same one when it re-executed), prints its process ID and
// OMP_WAIT_POLICY.
func threadEnvChild() int {
	if err := ExecWithThreadEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d %s\n", os.Getpid(), os.Getenv("OMP_WAIT_POLICY"))
	return 0
}

// The real exec: a child started without OMP_WAIT_POLICY ends up running with
// PASSIVE under its own process ID (the launcher's bookkeeping of workers holds);
// one started with ACTIVE keeps it.
func TestExecWithThreadEnvReexecutes(t *testing.T) {
	for _, tc := range []struct{ set, want string }{{"", "PASSIVE"}, {"ACTIVE", "ACTIVE"}} {
		cmd := childproc.Command(context.Background(), "threadenv")
		env := cmd.Env[:0:0]
		for _, kv := range cmd.Env {
			if !strings.HasPrefix(kv, "OMP_WAIT_POLICY=") && !strings.HasPrefix(kv, "GOMP_SPINCOUNT=") {
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
		var policy string
		if _, err := fmt.Sscan(out.String(), &pid, &policy); err != nil {
			t.Fatalf("child printed %q: %v", out.String(), err)
		}
		if pid != cmd.Process.Pid || policy != tc.want {
			t.Errorf("started with %q: child ran as pid %d with OMP_WAIT_POLICY %q, want pid %d and %q",
				tc.set, pid, policy, cmd.Process.Pid, tc.want)
		}
	}
}
