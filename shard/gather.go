package shard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// Gatherer holds one rank's shards of a model's frozen weights and, as the model's
// BlockHook, all-gathers a unit's flat buffer before the piece of the pass that needs
// it and frees it after. It is also a model.WeightDeferrer: the model binds every
// frozen weight as a placeholder and never reads it from the checkpoint.
//
// Before(i) gathers the unit straight into a libtorch buffer on the model's device
// (the group's collective.RawAllGatherer writes into the tensor's memory: Gloo's
// all-gather on a CPU model, NCCL's on a CUDA one; no copy besides the all-gather
// itself) and points each of the unit's weight tensors at its slice of that buffer
// with libtorch's set_, so that the layers and adapters, which hold those tensor
// objects, compute with the gathered values. After(i) points them back at their
// placeholders. Each buffer is its unit's size (Plan.BufferLen), allocated when the
// gather is requested and freed when it is no longer wanted (libtorch's allocator,
// or the trainer's caching CPU allocator, hands the memory to the next buffer), so
// what a rank holds at any moment is its shards plus the units it actually uses or
// gathers ahead: a block's unit in the middle of the network, not the largest unit
// (an embedding table can be several times a block). The buffer of the unit released
// last is kept until the next Before: a request made until then for that same unit
// takes it with its values (no all-gather); otherwise that Before frees it. Reuse
// of memory is safe because the model calls After only once nothing uses the
// weights, and any autograd graph that still held them would fail on libtorch's
// version check rather than read another unit's values. A unit asked for twice is
// gathered once (counted).
//
// A Gatherer serves one model, from the goroutine that runs its passes; its
// all-gathers run on a goroutine of its own when it prefetches (SetPrefetch).
type Gatherer struct {
	ctx context.Context
	pg  collective.ProcessGroup
	raw collective.RawAllGatherer // pg's raw all-gather (Bind checks it has one)
	dev gotch.Device              // the model's: shards and gathered buffers live there

	deferred []Tensor              // offered by the model, binding order
	ckNames  map[string]string     // plan name → checkpoint name
	weights  map[string]*ts.Tensor // the model's tensors (placeholders when released)
	spares   map[string]*ts.Tensor // placeholders to return the weights to
	bound    bool

	plan   *Plan
	local  *Local
	held   []int         // per unit: how many Before without After
	bufs   []*ts.Tensor  // per unit: its gathered buffer while held
	kept   int           // the unit whose gathered values keep holds, -1 if none
	keep   *ts.Tensor    // the released unit's buffer, until the next Before (prefetch.go)
	noKeep bool          // EnvNoKeep: released buffers are freed at once
	extra  map[int][]int // block → units it needs besides its own (tied embeddings)
	stats  Stats

	// Prefetch (prefetch.go): the schedule the model announced, how far the pass
	// (pos) and the requests (ahead) have gone in it, the requests not yet used, and
	// the collective goroutine's queue (nil until the first request at depth ≥ 1).
	depth      int
	sched      []int
	pos, ahead int
	pending    map[int]*request
	reqs       chan *request
	exited     chan struct{}

	peers   *peers // set where the ranks read each other's shards (peers.go)
	peerWhy string // why they do not, where a CPU group could

	// Rows (rows.go): the weights the current pass reads by rows, and per unit the
	// elements its gathers fill (nil: every unit whole).
	streamed map[string]bool
	spans    []int64

	syncs atomic.Int64 // device synchronisations before a gather (tests read it)
}

// Stats counts what a Gatherer holds and did.
type Stats struct {
	ShardBytes      int64         // this rank's shards of every unit
	HeldBytes       int64         // gathered buffers held now
	PeakHeldBytes   int64         // most gathered bytes held at once
	BufferBytes     int64         // gather buffers allocated now: held, requested ahead, kept
	PeakBufferBytes int64         // most BufferBytes at once
	Gathers         int           // units bound from an all-gather (with one rank: from the shard)
	Reused          int           // units bound again from their kept buffer, without an all-gather
	GatherTime      time.Duration // spent in them (on the collective goroutine when prefetching)
	WaitTime        time.Duration // the pass spent waiting for gathers (what prefetch did not hide)
	RowReads        int           // ReadRows calls (rows.go): vocabulary rows read instead of gathered
	RowBytes        int64         // what they copied
	RowTime         time.Duration // what they took, on the pass's goroutine
}

// NewGatherer makes the hook for one model of the shard group pg, whose collectives
// run under ctx. With more than one rank pg must be a collective.RawAllGatherer that
// reaches the model's memory: a Gloo group for a CPU model, an NCCL group on the
// model's GPU for a CUDA one. Pass it to model.Load with model.WithBlockHook, then call Bind.
func NewGatherer(ctx context.Context, pg collective.ProcessGroup) *Gatherer {
	return &Gatherer{ctx: ctx, pg: pg, ckNames: map[string]string{}, depth: DefaultPrefetch, kept: -1,
		noKeep:  os.Getenv(EnvNoKeep) == "1",
		weights: map[string]*ts.Tensor{}, spares: map[string]*ts.Tensor{}, pending: map[int]*request{}}
}

// Plan is the layout Bind made (nil before).
func (g *Gatherer) Plan() *Plan { return g.plan }

// Stats reports the memory and time accounting so far.
func (g *Gatherer) Stats() Stats { return g.stats }

// units lists the units block needs.
func (g *Gatherer) units(block int) ([]int, error) {
	if !g.bound {
		return nil, fmt.Errorf("%w: block %d before Bind", ErrState, block)
	}
	if block < Embeddings || block > g.plan.Blocks {
		return nil, fmt.Errorf("%w: block %d of a plan with %d blocks", ErrState, block, g.plan.Blocks)
	}
	var us []int
	if u, ok := g.plan.Unit(block); ok {
		us = append(us, u)
	}
	us = append(us, g.extra[block]...)
	if g.spans != nil { // units read by rows alone are not gathered (rows.go)
		us = slices.DeleteFunc(us, func(u int) bool { return g.spans[u] == 0 })
	}
	return us, nil
}

// Before gathers the units block needs (model.BlockHook): it requests those not
// gathered ahead, then the next scheduled blocks' (SetPrefetch), and waits for its
// own. On an error every gather requested ahead is waited for and dropped.
func (g *Gatherer) Before(block int) error {
	us, err := g.units(block)
	if err != nil {
		return err
	}
	if err := g.advance(block); err != nil {
		return err
	}
	if g.pg.Size() > 1 {
		if err := g.requestUnits(block, us); err != nil {
			return errors.Join(err, g.cancel())
		}
	}
	if err := g.requestAhead(); err != nil {
		return errors.Join(err, g.cancel())
	}
	g.dropKept() // no request took it
	for k, u := range us {
		if g.held[u] == 0 {
			if err := g.gather(block, u); err != nil {
				for _, v := range us[:k] {
					g.release(v)
				}
				return errors.Join(err, g.cancel())
			}
		}
		g.held[u]++
	}
	return nil
}

// After releases the units block needed (model.BlockHook).
func (g *Gatherer) After(block int) error {
	us, err := g.units(block)
	if err != nil {
		return err
	}
	for _, u := range us {
		if g.held[u] == 0 {
			return fmt.Errorf("%w: After(%d) without Before", ErrState, block)
		}
	}
	for _, u := range us {
		g.release(u)
	}
	return nil
}

// gather waits for unit u's all-gather (prefetch.go), or with one rank takes the
// local shard itself, and points the unit's weights at the gathered buffer.
func (g *Gatherer) gather(block, u int) error {
	unit := g.plan.Units[u]
	name := g.plan.unitName(unit)
	var full *ts.Tensor
	var err error
	if g.pg.Size() == 1 {
		start := time.Now()
		if full, err = g.local.Shards[u].ShallowClone(); err != nil {
			return fmt.Errorf("shard: gather %s: %w", name, err)
		}
		g.stats.GatherTime += time.Since(start)
		g.stats.Gathers++
	} else if full, err = g.await(block, u); err != nil {
		return err
	}
	g.bufs[u] = full
	for _, e := range unit.Tensors {
		if g.streamed[e.Name] {
			continue // read by rows (rows.go)
		}
		if err := bindView(g.weights[e.Name], full, e); err != nil {
			g.unbind(u)
			if g.pg.Size() > 1 {
				g.stats.HeldBytes -= g.spanOf(u) * int64(g.plan.ElemSize)
			}
			return fmt.Errorf("shard: gather %s: bind %q: %w", name, e.Name, err)
		}
	}
	return nil
}

// release points unit u's weights back at their placeholders when its last holder
// is done.
func (g *Gatherer) release(u int) {
	g.held[u]--
	if g.held[u] > 0 {
		return
	}
	g.unbind(u)
	if g.pg.Size() > 1 {
		g.stats.HeldBytes -= g.spanOf(u) * int64(g.plan.ElemSize)
	}
}

// unbind points unit u's weights at their placeholders and gives its buffer up: it
// becomes the kept buffer (prefetch.go), and the one kept before is freed.
func (g *Gatherer) unbind(u int) {
	for _, e := range g.plan.Units[u].Tensors {
		setSource(g.weights[e.Name], g.spares[e.Name])
	}
	if g.pg.Size() > 1 {
		g.dropKept()
		g.kept, g.keep = u, g.bufs[u]
		if g.noKeep {
			g.dropKept()
		}
	} else {
		g.bufs[u].Drop()
	}
	g.bufs[u] = nil
}

// PeerReads reports whether the ranks gather by reading each other's shards (a CPU
// group on one host; see Bind) rather than by all-gathers.
func (g *Gatherer) PeerReads() bool { return g.peers != nil }

// GatherPath names how the ranks gather, for a log: "peer reads", "all-gather", or
// "all-gather (no peer reads: <why>)" where a CPU group could not read its peers.
func (g *Gatherer) GatherPath() string {
	switch {
	case g.peers != nil:
		return "peer reads"
	case g.peerWhy != "":
		return "all-gather (no peer reads: " + g.peerWhy + ")"
	}
	return "all-gather"
}

// Close waits for the gathers in flight, ends the collective goroutine and frees the
// shards and placeholders the gatherer holds (after the model's Close). Where the
// ranks read each other's shards, it first waits until every other rank has closed
// or exited (at most 30 s), since they may still be reading this rank's: call it on
// every rank, after the same passes, or Abort.
func (g *Gatherer) Close() { g.close(true) }

// Abort is Close after a failure: it does not wait for the other ranks, whose later
// reads of this rank's shards fail (collective.ErrPeerLost, naming this rank).
func (g *Gatherer) Abort() { g.close(false) }

func (g *Gatherer) close(wait bool) {
	_ = g.stop()
	if g.peers != nil {
		g.peers.close(wait)
		g.peers = nil
	}
	if g.local != nil {
		g.local.Close()
		g.local = nil
	}
	g.dropKept()
	for _, b := range g.bufs {
		if b != nil {
			b.Drop() // a gathered buffer, or with one rank a view of the shard: not counted
		}
	}
	g.bufs = nil
	for _, s := range g.spares {
		s.Drop()
	}
	g.spares, g.weights = nil, nil
}
