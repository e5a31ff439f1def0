package train

import (
	"fmt"
	"os"
	"slices"
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

// OpenBLAS's pthread server (Debian's libopenblas0-pthread, which libtorch's GEMMs
// call) has the same habit: an idle thread polls its queue, calling sched_yield, until
// 2^t cycles of the time-stamp counter have passed since its last job, and only then
// sleeps on a condition variable. t comes from OPENBLAS_THREAD_TIMEOUT, read once at
// load, clamped to [4, 30], default 28 (2^28 cycles: about 0.1 s at 2.5 GHz, far
// longer than the gap between two GEMMs of a step). The re-exec sets it to 4 (16
// cycles: sleep at once), which frees the cores for libgomp's threads and for other
// ranks; waking a sleeping thread costs microseconds per GEMM, small beside a step's
// GEMMs (BENCHMARKS.md measures both settings side by side). A value of 0, a negative
// one or one that is not a number keeps the default. The library reads no other name
// for it: GotoBLAS's GOTO_THREAD_TIMEOUT went in OpenBLAS 0.2.16 (Debian 12's 0.3.21
// holds only the OPENBLAS_ spelling), so it is no alias to respect; and an OpenBLAS
// built for OpenMP instead of pthreads has no server of its own and ignores it.

// threadDefault is one variable the re-exec adds, unless one of keys (the variables
// that already decide the same thing) is set.
type threadDefault struct {
	keys []string
	set  string
}

// threadDefaults are what ThreadEnv adds, each decided on its own.
var threadDefaults = []threadDefault{
	{keys: []string{"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}, set: "OMP_WAIT_POLICY=PASSIVE"},
	{keys: []string{"OPENBLAS_THREAD_TIMEOUT"}, set: "OPENBLAS_THREAD_TIMEOUT=4"},
}

// ThreadEnv returns environ (KEY=value entries, as os.Environ returns them) with
// OMP_WAIT_POLICY=PASSIVE appended unless it sets OMP_WAIT_POLICY or GOMP_SPINCOUNT,
// and OPENBLAS_THREAD_TIMEOUT=4 appended unless it sets OPENBLAS_THREAD_TIMEOUT; the
// bool reports whether anything was added. environ itself is never written.
func ThreadEnv(environ []string) ([]string, bool) {
	set := make(map[string]bool, len(environ))
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		set[key] = true
	}
	var add []string
	for _, d := range threadDefaults {
		if !slices.ContainsFunc(d.keys, func(k string) bool { return set[k] }) {
			add = append(add, d.set)
		}
	}
	if len(add) == 0 {
		return environ, false
	}
	out := make([]string, 0, len(environ)+len(add))
	return append(append(out, environ...), add...), true
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
	added := strings.Join(env[len(environ):], " ")
	if _, err := os.Stat(exe); err != nil {
		return fmt.Errorf("train: set %s: %w", added, err)
	}
	if err := exec(exe, args, env); err != nil {
		return fmt.Errorf("train: re-execute %s with %s: %w", exe, added, err)
	}
	return nil
}
