package ncclpg

import (
	"errors"
	"fmt"
	"time"

	"github.com/lrtrain/lrtrain/nccl"
)

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
