package launch

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors; match them with errors.Is. The errors returned wrap them
// with what was being done and the names involved.
var (
	// ErrConfig: a flag or PET_* variable is invalid or contradicts another.
	ErrConfig = errors.New("launch: invalid configuration")
	// ErrBackend: the rendezvous backend is not one lrtrain supports
	// (c10d and static need torch's TCPStore; lrtrain meets over etcd v3).
	ErrBackend = errors.New("launch: unsupported rendezvous backend")
	// ErrNoGPU: --nproc-per-node gpu on a node where NVML finds no GPU.
	ErrNoGPU = errors.New("launch: no GPU found")
	// ErrSpawn: a worker process could not be started.
	ErrSpawn = errors.New("launch: cannot start worker")
	// ErrRestartsExhausted: a worker failed and no restarts were left; the
	// error wraps a *WorkerFailure naming the rank.
	ErrRestartsExhausted = errors.New("launch: worker failed and no restarts are left")
	// ErrInterrupted: the launcher was stopped by a signal or its context;
	// the error wraps an *Interrupted.
	ErrInterrupted = errors.New("launch: interrupted")
)

// WorkerFailure describes the first worker of a group that failed: it exited
// with a non-zero code or was killed by a signal.
type WorkerFailure struct {
	Round     int64
	Restart   int // the restart count the worker ran with
	Rank      int // global rank
	LocalRank int
	PID       int
	ExitCode  int            // -1 when killed by a signal
	Signal    syscall.Signal // 0 when it exited
	Log       string         // the worker's log file
}

func (f *WorkerFailure) Error() string {
	how := fmt.Sprintf("exited with code %d", f.ExitCode)
	if f.Signal != 0 {
		how = fmt.Sprintf("was killed by signal %d (%s)", int(f.Signal), f.Signal)
	}
	return fmt.Sprintf("rank %d (local rank %d, pid %d, round %d, restart %d) %s; log: %s",
		f.Rank, f.LocalRank, f.PID, f.Round, f.Restart, how, f.Log)
}

// Interrupted says the launcher stopped its workers because it received a
// signal (Signal != 0) or its context ended.
type Interrupted struct {
	Signal syscall.Signal
	Cause  error // the context's error when Signal is 0
}

func (i *Interrupted) Error() string {
	if i.Signal != 0 {
		return fmt.Sprintf("received signal %d (%s); workers stopped", int(i.Signal), i.Signal)
	}
	return fmt.Sprintf("stopped (%v); workers stopped", i.Cause)
}

func (i *Interrupted) Unwrap() error { return i.Cause }

// Exit codes of the launcher, as ExitCode reports them.
const (
	ExitOK     = 0
	ExitFailed = 1 // a worker failed for good, or the launcher itself failed
	ExitUsage  = 2 // invalid flags or PET_* variables
)

// ExitCode maps Run's error to the launcher's exit status: 0 for nil, 2 for
// configuration errors, 128+signal when interrupted by a signal (as a shell
// reports a process killed by it) and 1 otherwise.
func ExitCode(err error) int {
	var in *Interrupted
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &in) && in.Signal != 0:
		return 128 + int(in.Signal)
	case errors.Is(err, ErrConfig), errors.Is(err, ErrBackend):
		return ExitUsage
	}
	return ExitFailed
}
