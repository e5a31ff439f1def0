package shard

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"
	"unsafe"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// Prefetch depths (SetPrefetch).
const (
	// DefaultPrefetch is how many blocks a Gatherer gathers ahead unless told otherwise.
	DefaultPrefetch = 1
	// MaxPrefetch bounds SetPrefetch: each block ahead holds one more gathered unit.
	MaxPrefetch = 16
	// EnvNoKeep set to 1 turns the kept buffer off (every unit asked for is
	// all-gathered again), for measuring what it saves; every rank must agree.
	EnvNoKeep = "LRTRAIN_SHARD_NO_KEEP"
)

// request is one all-gather of a unit into its buffer. The pass's goroutine fills
// it (buffer allocated, pointers read) and the gatherer's collective goroutine runs
// it; done closes once err and took are set.
type request struct {
	block      int // the piece it was asked for (errors name it)
	unit       int
	buf        *ts.Tensor
	send, recv unsafe.Pointer
	bytes      int
	done       chan struct{}
	err        error
	took       time.Duration
}

// SetPrefetch sets how many scheduled blocks (model.BlockScheduler) are gathered
// ahead of the one that runs: 0 gathers each block when it is needed, on the pass's
// goroutine; n ≥ 1 runs every all-gather on a goroutine of the gatherer, in the order
// the pass asks for them, and asks for the next n blocks' as soon as a block starts,
// so that they travel while it computes. Gathered memory is then at most 1 + n units
// (one more for a head with tied embeddings) instead of 1. Set it before the first
// pass; every rank of the shard group must use the same depth.
func (g *Gatherer) SetPrefetch(n int) error {
	if n < 0 || n > MaxPrefetch {
		return fmt.Errorf("%w: prefetch depth %d, want 0 to %d", ErrState, n, MaxPrefetch)
	}
	if len(g.pending) > 0 || g.sched != nil {
		return fmt.Errorf("%w: SetPrefetch during a pass", ErrState)
	}
	g.depth = n
	return nil
}

// Prefetch is the depth SetPrefetch set.
func (g *Gatherer) Prefetch() int { return g.depth }

// BufferBound bounds the gather buffers allocated at once, in bytes, at the depth
// SetPrefetch set: the units of the piece running and of the depth pieces ahead, and
// the kept buffer, each at most the largest unit, one unit more where a piece needs
// another's (a head with tied embeddings). It is what a caching allocator needs room
// for so that the buffers, freed and allocated again unit by unit, do not evict
// other blocks.
func (g *Gatherer) BufferBound() int64 {
	if g.plan == nil || g.pg.Size() == 1 {
		return 0 // one rank gathers nothing: its units are views of its shards
	}
	n := int64(g.depth + 2)
	if len(g.extra) > 0 {
		n++
	}
	return n * g.plan.MaxUnitBytes()
}

// Schedule implements model.BlockScheduler: order is the sequence of Before calls the
// model is about to make. It drops (after waiting for them) gathers ahead that an
// earlier schedule left unused, then requests the first blocks of order. nil ends
// the schedule. Every rank makes the same calls, so the collectives they issue come
// in the same order everywhere.
func (g *Gatherer) Schedule(order []int) error {
	err := g.cancel()
	if order == nil || !g.bound || g.pg.Size() == 1 || g.depth == 0 {
		return err
	}
	g.sched = append([]int(nil), order...)
	return errors.Join(err, g.requestAhead())
}

// advance moves the schedule past block, or drops it if the model asked for another.
func (g *Gatherer) advance(block int) error {
	if g.sched == nil {
		return nil
	}
	if g.pos < len(g.sched) && g.sched[g.pos] == block {
		g.pos++
		return nil
	}
	return g.cancel()
}

// requestAhead requests the units of the scheduled blocks up to depth past the one
// entered last, skipping units held or requested already.
func (g *Gatherer) requestAhead() error {
	for ; g.ahead < min(g.pos+g.depth, len(g.sched)); g.ahead++ {
		block := g.sched[g.ahead]
		us, err := g.units(block)
		if err != nil {
			return err
		}
		if err := g.requestUnits(block, us); err != nil {
			return err
		}
	}
	return nil
}

// requestUnits requests the units us of block that are neither held nor requested.
// If the kept buffer holds none of those, it goes first, so that the allocator can
// hand its memory to theirs.
func (g *Gatherer) requestUnits(block int, us []int) error {
	var want []int
	for _, u := range us {
		if g.held[u] == 0 && g.pending[u] == nil {
			want = append(want, u)
		}
	}
	if len(want) > 0 && !slices.Contains(want, g.kept) {
		g.dropKept()
	}
	for _, u := range want {
		if err := g.request(block, u); err != nil {
			return err
		}
	}
	return nil
}

// request allocates a buffer for unit u (or takes the kept one if it holds u; see
// requestUnits) and hands its all-gather to the collective goroutine, or runs it
// here at depth 0.
func (g *Gatherer) request(block, u int) error {
	unit := g.plan.Units[u]
	if g.kept == u {
		return g.reuse(block, u)
	}
	full, err := g.newBuffer(u)
	if err != nil {
		return fmt.Errorf("shard: rank %d: buffer for %s: %w", g.pg.Rank(), g.plan.unitName(unit), err)
	}
	r := &request{block: block, unit: u, buf: full, done: make(chan struct{}),
		bytes: int(unit.ShardLen) * g.plan.ElemSize}
	if r.send, err = g.local.Shards[u].DataPtr(); err == nil {
		r.recv, err = full.DataPtr()
	}
	if err != nil {
		g.freeBuffer(full, u)
		return fmt.Errorf("shard: rank %d: gather %s: %w", g.pg.Rank(), g.plan.unitName(unit), err)
	}
	g.pending[u] = r
	g.stats.HeldBytes += g.spanOf(u) * int64(g.plan.ElemSize)
	g.stats.PeakHeldBytes = max(g.stats.PeakHeldBytes, g.stats.HeldBytes)
	if g.depth == 0 {
		g.run(r)
		g.stats.WaitTime += r.took // the pass waited for all of it
		return nil
	}
	if g.reqs == nil {
		g.reqs, g.exited = make(chan *request, 2*(MaxPrefetch+2)), make(chan struct{})
		go g.serve(g.reqs, g.exited)
	}
	g.reqs <- r
	return nil
}

// newBuffer allocates unit u's flat buffer (Plan.BufferLen) on the model's device.
// On a GPU the memory may be a block that kernels queued on libtorch's stream for an
// earlier unit still read: the caching allocator orders its reuse on that stream,
// and run orders the all-gather, which writes from the group's stream, after them.
func (g *Gatherer) newBuffer(u int) (*ts.Tensor, error) {
	b, err := ts.Empty([]int64{g.bufferLen(u)}, g.local.DType, g.dev)
	if err != nil {
		return nil, err
	}
	g.stats.BufferBytes += g.bufferLen(u) * int64(g.plan.ElemSize)
	g.stats.PeakBufferBytes = max(g.stats.PeakBufferBytes, g.stats.BufferBytes)
	return b, nil
}

// freeBuffer frees b, unit u's buffer.
func (g *Gatherer) freeBuffer(b *ts.Tensor, u int) {
	b.Drop()
	g.stats.BufferBytes -= g.bufferLen(u) * int64(g.plan.ElemSize)
}

// dropKept frees the kept buffer, if there is one.
func (g *Gatherer) dropKept() {
	if g.keep != nil {
		g.freeBuffer(g.keep, g.kept)
	}
	g.keep, g.kept = nil, -1
}

// reuse makes the kept buffer, which still holds unit u's gathered values, u's
// request, done without an all-gather. Every rank keeps and reuses the same units,
// since the choice depends only on the calls the model makes, so the collectives stay
// in step across the group.
func (g *Gatherer) reuse(block, u int) error {
	r := &request{block: block, unit: u, buf: g.keep, done: make(chan struct{})}
	close(r.done)
	g.keep, g.kept = nil, -1
	g.pending[u] = r
	g.stats.Reused++
	g.stats.HeldBytes += g.spanOf(u) * int64(g.plan.ElemSize)
	g.stats.PeakHeldBytes = max(g.stats.PeakHeldBytes, g.stats.HeldBytes)
	return nil
}

// serve is the collective goroutine: it runs the requests in the order they came,
// on one OS thread (gotch reads libtorch's errors, of CudaSynchronize, per thread).
func (g *Gatherer) serve(reqs <-chan *request, exited chan<- struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(exited)
	for r := range reqs {
		g.run(r)
	}
}

// run all-gathers r. It reads only what Bind fixed, so it may run on any goroutine.
// On a GPU the group's collective runs on its own stream, and the buffer's memory may
// still be read by kernels queued for an earlier unit: a stream-ordered group
// (ncclpg) starts the all-gather, on the device, after the work queued on libtorch's
// stream so far and makes the work queued there later wait for it, so the block
// being computed goes on while the next one is gathered; any other group gets the
// device synchronised first. Either way run returns once the buffer is filled (the
// host waits for the group's stream, bounded by its timeout).
func (g *Gatherer) run(r *request) {
	defer close(r.done)
	start := time.Now()
	ordered, isOrdered := g.raw.(collective.StreamOrderedAllGatherer)
	switch {
	case g.peers != nil:
		r.err = g.peers.gather(r.unit, r.send, r.recv, r.bytes, int(g.spanOf(r.unit))*g.plan.ElemSize)
	case g.dev.IsCuda() && isOrdered:
		r.err = ordered.AllGatherRawOrdered(g.ctx, r.send, r.recv, r.bytes, collective.Uint8, collective.DefaultStream)
	case g.dev.IsCuda():
		if err := g.synchronize(); err != nil {
			r.err = fmt.Errorf("synchronise %v before the all-gather: %w", g.dev, err)
			return
		}
		fallthrough
	default:
		r.err = g.raw.AllGatherRaw(g.ctx, r.send, r.recv, r.bytes, collective.Uint8)
	}
	r.took = time.Since(start)
}

// synchronize waits for every kernel on every stream of the model's GPU.
func (g *Gatherer) synchronize() error {
	g.syncs.Add(1)
	return ts.CudaSynchronize(int(g.dev.Value))
}

// await waits for unit u's request (made now if there is none) and returns its
// buffer, or the gather's error naming the unit, the piece and the rank.
func (g *Gatherer) await(block, u int) (*ts.Tensor, error) {
	if g.pending[u] == nil {
		if err := g.request(block, u); err != nil {
			return nil, err
		}
	}
	r := g.pending[u]
	start := time.Now()
	<-r.done
	g.stats.WaitTime += time.Since(start)
	delete(g.pending, u)
	g.stats.GatherTime += r.took
	if r.send != nil { // not a reused buffer
		g.stats.Gathers++
	}
	if r.err != nil {
		g.drop(r)
		return nil, fmt.Errorf("shard: rank %d: gather of %s: %w", g.pg.Rank(), g.what(block, u), r.err)
	}
	return r.buf, nil
}

// drop frees an unused request's buffer.
func (g *Gatherer) drop(r *request) {
	g.freeBuffer(r.buf, r.unit)
	g.stats.HeldBytes -= g.spanOf(r.unit) * int64(g.plan.ElemSize)
}

// cancel ends the schedule: it waits for every gather requested ahead and not used
// (they were issued on every rank, so they complete), frees their buffers and
// reports the first of their errors.
func (g *Gatherer) cancel() error {
	var first error
	for u, r := range g.pending {
		<-r.done
		delete(g.pending, u)
		g.drop(r)
		if r.err != nil && first == nil {
			first = fmt.Errorf("shard: rank %d: gather ahead of %s: %w", g.pg.Rank(), g.what(r.block, u), r.err)
		}
	}
	g.sched, g.pos, g.ahead = nil, 0, 0
	return first
}

// stop waits for the collective goroutine to finish and end.
func (g *Gatherer) stop() error {
	err := g.cancel()
	if g.reqs != nil {
		close(g.reqs)
		<-g.exited
		g.reqs = nil
	}
	return err
}

// what names unit u gathered for piece block: "block 3", "embeddings for the head".
func (g *Gatherer) what(block, u int) string {
	name := g.plan.unitName(g.plan.Units[u])
	if g.plan.Units[u].Block != block {
		name += " for the " + g.plan.unitName(Unit{Block: block})
	}
	return name
}
