package ncclpg

// The device thread: the one goroutine, locked to its OS thread, that makes
// every CUDA and NCCL call of a group; bounded waits on it; the release; and
// the watcher of an idle communicator.

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/nccl"
)

// abortGrace is how long a caller waits, past a call's timeout, for the
// worker to come back from NCCL after ncclCommAbort. NCCL returns within
// milliseconds of an abort; a worker that overruns this is declared wedged
// and abandoned, so that no call, and no Close, waits longer than its
// timeout plus abortGrace.
const abortGrace = 10 * time.Second

// errWedged is wrapped when the worker did not come back in time.
var errWedged = errors.New("the device thread is still inside NCCL after the abort")

// work runs the group's requests on one OS thread, on which the device is
// current.
func (g *Group) work() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for f := range g.reqs {
		f()
	}
}

// submit queues f on the worker; the channel closes when f has run.
func (g *Group) submit(f func()) <-chan struct{} {
	ran := make(chan struct{})
	g.reqs <- func() { defer close(ran); f() }
	return ran
}

// exec runs f on the worker and waits for it, at most limit (0: no
// limit). When the worker does not take f or finish it in time, the group
// is marked wedged and exec returns an error wrapping errWedged and
// collective.ErrTimeout; f may still run later and must then touch only
// its own variables.
func (g *Group) exec(limit time.Duration, f func()) error {
	if g.wedged.Load() {
		return fmt.Errorf("%w: %w", collective.ErrTimeout, errWedged)
	}
	var expired <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		expired = t.C
	}
	ran := make(chan struct{})
	select {
	case g.reqs <- func() { defer close(ran); f() }:
	case <-expired:
		g.wedged.Store(true)
		return fmt.Errorf("%w: %w (not taken within %s)", collective.ErrTimeout, errWedged, limit)
	}
	select {
	case <-ran:
		return nil
	case <-expired:
		g.wedged.Store(true)
		return fmt.Errorf("%w: %w (not back within %s)", collective.ErrTimeout, errWedged, limit)
	}
}

// shutdown frees everything on the worker and stops it, waiting for the
// worker at most Timeout + grace: a wedged worker is abandoned (its
// communicator was aborted; the rest leaks) rather than waited for. A
// healthy communicator is destroyed; a broken one is aborted, never
// destroyed (Destroy would wait for work that never finishes).
func (g *Group) shutdown() error {
	errc := make(chan error, 1)
	broken := g.life.Broken() != nil
	err := g.exec(g.cfg.Timeout+g.grace, func() {
		var errs []error
		if g.comm != nil {
			release := g.comm.Destroy
			if broken {
				release = g.comm.Abort
			}
			if err := release(); err != nil && !errors.Is(err, nccl.ErrClosed) {
				errs = append(errs, err)
			}
		}
		for i := range g.stage {
			errs = append(errs, g.stage[i].free())
		}
		errs = append(errs, g.freeEvents())
		if g.stream != 0 {
			errs = append(errs, nccl.StreamDestroy(g.stream))
		}
		errc <- errors.Join(errs...)
	})
	if err != nil {
		return err // the worker keeps g.reqs; it is stuck for good
	}
	close(g.reqs)
	return <-errc
}

// asyncPoll is how often an idle group asks ncclCommGetAsyncError, as
// PyTorch's NCCL watchdog thread does between collectives (it sleeps
// 100 ms). A call in flight is polled by its own watchdog instead.
const asyncPoll = 100 * time.Millisecond

// health watches an idle communicator for asynchronous errors (a peer or
// the network failing between collectives): on one it breaks the group,
// cancelling any caller, and aborts the communicator on the device thread,
// so that the next call fails at once instead of hanging. It stops when
// Close closes stopHealth, or after the group broke.
type health struct {
	stop chan struct{} // closed by Close before the release
	done chan struct{} // closed when the watcher has returned
}

func (g *Group) watchHealth() {
	defer close(g.health.done)
	tick := time.NewTicker(asyncPoll)
	defer tick.Stop()
	for {
		select {
		case <-g.health.stop:
			return
		case <-g.life.Aborted().Done():
			return
		case <-tick.C:
		}
		if g.life.Broken() != nil || g.wedged.Load() {
			return
		}
		errc := make(chan error, 1)
		select {
		case g.reqs <- func() { errc <- g.comm.AsyncError() }:
		default:
			continue // the worker is busy: the call in flight polls for itself
		}
		err := <-errc
		if err == nil || errors.Is(err, nccl.ErrClosed) {
			continue
		}
		g.life.Abort(fmt.Sprintf("communicator failed between collectives: %v", err))
		select {
		case g.reqs <- func() { _ = g.comm.Abort() }:
		case <-g.health.stop:
		}
		return
	}
}

// stopHealth ends the watcher and waits for it, before the release closes
// the worker's queue.
func (g *Group) stopHealth() {
	if g.health.stop == nil {
		return
	}
	close(g.health.stop)
	<-g.health.done
}
