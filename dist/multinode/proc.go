package multinode

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is a process running in a host's namespace, its output in a log file.
type Proc struct {
	Name    string
	Log     string
	Started time.Time
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	exited  time.Time
}

// Start runs argv in h's namespace (`ip netns exec`, which becomes the program: the
// pid is the program's) with env added to this process's environment and stdout and
// stderr appended to log. The process gets SIGKILL if this one dies (Pdeathsig), and
// Net.Close kills whatever is left in the namespace.
func (h *Host) Start(name, log string, env []string, argv ...string) (*Proc, error) {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("multinode: %s: %w", name, err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS}, argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("multinode: start %s in %s: %w", name, h.NS, err)
	}
	p := &Proc{Name: name, Log: log, Started: time.Now(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.exited = time.Now()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and when.
func (p *Proc) Exited() (bool, time.Time) {
	select {
	case <-p.done:
		return true, p.exited
	default:
		return false, time.Time{}
	}
}

// Err is the process's exit error (nil for exit status 0); only valid once Done.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Wait waits up to d for the process to exit; it returns its exit error, or an
// error saying it still runs.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("multinode: %s (pid %d) still running after %v", p.Name, p.Pid(), d)
	}
}

// Signal sends sig to the process (nothing once it has exited).
func (p *Proc) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// Kill SIGKILLs the process and waits for it.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Output is the tail (last max bytes) of the process's log.
func (p *Proc) Output(max int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// Children lists the process's child processes.
func (p *Proc) Children() []int {
	return children(p.Pid())
}

// children lists the child processes of pid.
func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, s := range strings.Fields(string(b)) {
			var c int
			if _, err := fmt.Sscan(s, &c); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
