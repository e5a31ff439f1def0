package launch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// worker is one spawned worker process of a group.
type worker struct {
	local, rank int
	log         string
	logFile     *os.File // open until the worker is reaped: tee copies into it
	cmd         *exec.Cmd
	done        chan struct{} // closed once the process has been reaped
	state       *os.ProcessState
	waitErr     error
}

// group is the workers of one node in one round.
type group struct {
	round   int64
	restart int
	workers []*worker
	exits   chan *worker // each worker once, when it has exited
}

// groupSpec is what startGroup needs besides the configuration.
type groupSpec struct {
	round   int64
	restart int
	env     func(local int) WorkerEnv
	console io.Writer // teed output, shared by the ranks
	logDir  string
}

// startGroup starts one worker per local rank, each in its own process
// group with its output in logDir/rank<k>.log. If one cannot start, the
// ones already started are killed.
func startGroup(c *Config, s groupSpec) (*group, error) {
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: log directory: %w", ErrSpawn, err)
	}
	g := &group{round: s.round, restart: s.restart, exits: make(chan *worker, c.Nproc)}
	base := c.Environ
	if base == nil {
		base = os.Environ()
	}
	for local := 0; local < c.Nproc; local++ {
		env := s.env(local)
		w, err := startWorker(c, s, env, mergeEnv(base, env.Vars()))
		if err != nil {
			g.stop(syscall.SIGKILL, 0, nil)
			return nil, err
		}
		g.workers = append(g.workers, w)
		go func() {
			w.waitErr = w.cmd.Wait()
			w.logFile.Close()
			w.state = w.cmd.ProcessState
			close(w.done)
			g.exits <- w
		}()
	}
	return g, nil
}

func startWorker(c *Config, s groupSpec, env WorkerEnv, environ []string) (*worker, error) {
	w := &worker{local: env.LocalRank, rank: env.Rank, done: make(chan struct{}),
		log: filepath.Join(s.logDir, fmt.Sprintf("rank%d.log", env.Rank))}
	f, err := os.OpenFile(w.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: rank %d: %w", ErrSpawn, env.Rank, err)
	}
	w.logFile = f
	fmt.Fprintf(f, "=== lrtrain launch: rank %d (local %d), round %d, restart %d, %s, %s %s\n",
		env.Rank, env.LocalRank, s.round, s.restart, time.Now().Format(time.RFC3339),
		c.Program, strings.Join(c.Args, " "))

	w.cmd = exec.Command(c.Program, c.Args...)
	w.cmd.Env = environ
	var out io.Writer = f
	if c.TeeAll || containsInt(c.Tee, env.Rank) {
		// One writer for both streams: exec then copies them in one goroutine.
		out = io.MultiWriter(f, newPrefixWriter(s.console, fmt.Sprintf("[rank%d]: ", env.Rank)))
		// Grandchildren may keep the pipe open after the worker exits.
		w.cmd.WaitDelay = time.Second
	}
	w.cmd.Stdout, w.cmd.Stderr = out, out
	// Own process group, so that stopping reaches the worker's children;
	// killed with the launcher's thread if the launcher dies without stopping it.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: rank %d: %w", ErrSpawn, env.Rank, err)
	}
	return w, nil
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// stop sends sig to every worker's process group, waits up to grace (or
// until hurry is closed) for the workers to exit, then SIGKILLs the process
// groups, which also ends children that outlived their worker.
func (g *group) stop(sig syscall.Signal, grace time.Duration, hurry <-chan struct{}) {
	for _, w := range g.workers {
		_ = syscall.Kill(-w.cmd.Process.Pid, sig)
	}
	// One deadline for the whole group: the timer fires once, so waiting on
	// its channel worker by worker would leave the later ones unbounded.
	timer := time.NewTimer(grace)
	defer timer.Stop()
wait:
	for _, w := range g.workers {
		select {
		case <-w.done:
		case <-timer.C:
			break wait
		case <-hurry:
			break wait
		}
	}
	for _, w := range g.workers {
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, w := range g.workers {
		<-w.done // SIGKILL cannot be ignored
	}
}

// failure describes how w ended, nil when it exited with code 0.
func (g *group) failure(w *worker) *WorkerFailure {
	if w.state == nil {
		return &WorkerFailure{Round: g.round, Restart: g.restart, Rank: w.rank, LocalRank: w.local,
			PID: w.cmd.Process.Pid, ExitCode: -1, Log: w.log}
	}
	if w.state.Success() {
		return nil
	}
	f := &WorkerFailure{Round: g.round, Restart: g.restart, Rank: w.rank, LocalRank: w.local,
		PID: w.state.Pid(), ExitCode: w.state.ExitCode(), Log: w.log}
	if ws, ok := w.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		f.Signal = ws.Signal()
	}
	return f
}

// logTail returns the last lines of a worker's log (at most n lines of the
// last 4 KiB), for the launcher's error message.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 4096
	if st, err := f.Stat(); err == nil && st.Size() > window {
		if _, err := f.Seek(st.Size()-window, io.SeekStart); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
