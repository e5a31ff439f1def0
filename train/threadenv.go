package train

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// The thread pools' environment.
//
// A CPU step runs two thread pools side by side: libtorch's intra-op pool (GNU OpenMP,
// libgomp: elementwise ops, reductions, the fused φ op) and OpenBLAS's own pthreads
// (every GEMM). Each keeps its idle threads spinning for a while after its work ends,
// waiting for more: by default a libgomp thread spins for about 300,000 iterations
// after every parallel region, and the step alternates between the two pools hundreds
// of times. On a machine with as many cores as threads, the spinning OpenMP threads
// take the cores that OpenBLAS's threads need, and the other way round; with other
// processes on the machine as well, most of a step is spent spinning (perf on a
// loaded 2-core VM: libgomp's spin loop 50 % of the samples, OpenBLAS's sched_yield
// and the kernel's scheduler another 25 %; see BENCHMARKS.md, "Training step").
//
// libgomp reads its wait policy (OMP_WAIT_POLICY, GOMP_SPINCOUNT) once, when the
// dynamic loader starts it, before any Go code runs, and has no call to change it
// later. So a command that trains calls ExecWithThreadEnv first thing in main: when
// the environment does not say how the pools wait, the program re-executes itself
// (same process ID, same arguments) with OMP_WAIT_POLICY=PASSIVE added, under which
// an idle OpenMP thread sleeps at once. A value the user set is kept as it is, so
// OMP_WAIT_POLICY=ACTIVE (or any GOMP_SPINCOUNT) brings the old behaviour back.

// threadEnvKeys are the variables that already decide how libgomp's idle threads wait:
// when any is set, nothing is added.
var threadEnvKeys = []string{"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}

// threadEnvDefault is what ThreadEnv adds.
const threadEnvDefault = "OMP_WAIT_POLICY=PASSIVE"

// ThreadEnv returns environ with OMP_WAIT_POLICY=PASSIVE appended, and true, when
// environ (KEY=value entries, as os.Environ returns them) sets neither
// OMP_WAIT_POLICY nor GOMP_SPINCOUNT; otherwise environ unchanged and false.
func ThreadEnv(environ []string) ([]string, bool) {
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		for _, k := range threadEnvKeys {
			if key == k {
				return environ, false
			}
		}
	}
	out := make([]string, 0, len(environ)+1)
	return append(append(out, environ...), threadEnvDefault), true
}

// ExecWithThreadEnv re-executes the running program, with its arguments, under
// ThreadEnv's environment when that adds anything; it returns only when it does not
// (nil) or when the exec fails (an error; the program can go on with the default
// policy). Call it first in main, before any goroutine depends on process state.
func ExecWithThreadEnv() error {
	return execWithThreadEnv(os.Environ(), os.Args, "/proc/self/exe", syscall.Exec)
}

// execWithThreadEnv is ExecWithThreadEnv over its inputs: exe is the program to run
// (on Linux /proc/self/exe, the running binary even when argv[0] is not a path), exec
// replaces the process (syscall.Exec).
func execWithThreadEnv(environ, args []string, exe string, exec func(string, []string, []string) error) error {
	env, add := ThreadEnv(environ)
	if !add {
		return nil
	}
	if _, err := os.Stat(exe); err != nil {
		return fmt.Errorf("train: set %s: %w", threadEnvDefault, err)
	}
	if err := exec(exe, args, env); err != nil {
		return fmt.Errorf("train: re-execute %s with %s: %w", exe, threadEnvDefault, err)
	}
	return nil
}
