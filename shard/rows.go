package shard

import (
	"fmt"
	"maps"
	"time"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// StreamRows implements model.RowReader. Where the ranks read each other's shards
// (PeerReads), it takes ws — a causal LM's vocabulary matrices, for a pass that
// computes its loss in the head — off the units' gathers until the next call: a unit
// of such weights alone (an embedding table) is not gathered at all, and a unit that
// ends with them (a final norm followed by lm_head) is gathered up to them, and the
// model reads the rows it needs through ReadRows. It returns false, and every unit is
// gathered whole, where the ranks all-gather (another host, a GPU: rows would cost a
// collective each), for nil ws, or where a streamed weight lies before another
// weight of its unit. Call it between passes (a unit still held is an error).
func (g *Gatherer) StreamRows(ws []*ts.Tensor) (bool, error) {
	if !g.bound {
		return false, fmt.Errorf("%w: StreamRows before Bind", ErrState)
	}
	for u, n := range g.held {
		if n > 0 {
			return false, fmt.Errorf("%w: StreamRows while %s is held", ErrState, g.plan.unitName(g.plan.Units[u]))
		}
	}
	want := map[string]bool{}
	if g.peers != nil {
		for _, w := range ws {
			name := g.nameOf(w)
			if name == "" {
				want = nil // not a weight of this gatherer's: gather everything
				break
			}
			want[name] = true
		}
	}
	spans := g.spansFor(want)
	if spans == nil {
		want = map[string]bool{}
	}
	if !maps.Equal(want, g.streamed) {
		// Nothing gathered ahead or kept may serve the new setting: their extents
		// were the previous one's.
		if err := g.cancel(); err != nil {
			return false, err
		}
		g.dropKept()
		g.streamed, g.spans = want, spans
	}
	return len(want) > 0, nil
}

// nameOf finds the Hugging Face name of deferred weight w ("" if it is none).
func (g *Gatherer) nameOf(w *ts.Tensor) string {
	for name, t := range g.weights {
		if t == w {
			return name
		}
	}
	return ""
}

// spansFor returns, for streamed weights want, how many elements of each unit a
// gather fills: up to the end of its last weight that is not streamed (0: none);
// nil where a streamed weight lies before a weight that is not, or want is empty.
func (g *Gatherer) spansFor(want map[string]bool) []int64 {
	if len(want) == 0 {
		return nil
	}
	spans := make([]int64, len(g.plan.Units))
	for u, unit := range g.plan.Units {
		streamedFrom := int64(-1)
		for _, e := range unit.Tensors {
			if want[e.Name] {
				if streamedFrom < 0 {
					streamedFrom = e.Offset
				}
				continue
			}
			if streamedFrom >= 0 {
				return nil
			}
			spans[u] = e.Offset + e.Numel()
		}
		if streamedFrom < 0 {
			spans[u] = unit.Len
		}
	}
	return spans
}

// spanOf is how many elements of unit u a gather fills.
func (g *Gatherer) spanOf(u int) int64 {
	if g.spans != nil {
		return g.spans[u]
	}
	return g.plan.Units[u].Len
}

// bufferLen is the length of unit u's gather buffer: Plan.BufferLen, or the span
// when the unit is gathered in part.
func (g *Gatherer) bufferLen(u int) int64 {
	if g.spans != nil && g.spans[u] < g.plan.Units[u].Len {
		return g.spans[u]
	}
	return g.plan.BufferLen(u)
}

// ReadRows implements model.RowReader: it copies rows [from, from+n) of w, a weight
// StreamRows took, into dst (n rows, contiguous, the compute dtype, on the CPU),
// reading each part from the rank that holds it: this rank's shard, or a peer's
// memory (a peer that has exited or given its shards up fails with
// collective.ErrPeerLost, naming the rank).
func (g *Gatherer) ReadRows(w *ts.Tensor, from int64, dst *ts.Tensor) error {
	start := time.Now()
	name := g.nameOf(w)
	if name == "" || !g.streamed[name] {
		return fmt.Errorf("%w: ReadRows of a weight StreamRows did not take", ErrState)
	}
	u, e, err := g.entryOf(name)
	if err != nil {
		return err
	}
	rows := int64(1)
	if len(e.Shape) > 0 {
		rows = e.Shape[0]
	}
	cols := e.Numel() / max(rows, 1)
	n := int64(dst.Numel())
	if cols == 0 || n%cols != 0 || from < 0 || from+n/cols > rows {
		return fmt.Errorf("%w: rows %d to %d of %q (%v) into %d elements", ErrState, from, from+n/max(cols, 1), name, e.Shape, n)
	}
	if dst.DType() != g.local.DType {
		return fmt.Errorf("%w: rows of %q into %v, the shards are %v", ErrState, name, dst.DType(), g.local.DType)
	}
	if ok, err := dst.IsContiguous(); err != nil || !ok {
		return fmt.Errorf("%w: rows of %q into a tensor that is not contiguous", ErrState, name)
	}
	p, err := dst.DataPtr()
	if err != nil {
		return fmt.Errorf("shard: rows of %q: %w", name, err)
	}
	lo := e.Offset + from*cols
	if err := g.readRange(u, lo, lo+n, p); err != nil {
		return fmt.Errorf("shard: rank %d: rows %d to %d of %q: %w", g.pg.Rank(), from, from+n/cols, name, err)
	}
	g.stats.RowReads++
	g.stats.RowBytes += n * int64(g.plan.ElemSize)
	g.stats.RowTime += time.Since(start)
	return nil
}

// entryOf finds the unit and entry of the weight called name.
func (g *Gatherer) entryOf(name string) (int, Entry, error) {
	for u, unit := range g.plan.Units {
		for _, e := range unit.Tensors {
			if e.Name == name {
				return u, e, nil
			}
		}
	}
	return 0, Entry{}, fmt.Errorf("%w: %q is in no unit", ErrState, name)
}

// readRange copies elements [lo, hi) of unit u's flat buffer to dst: each rank's part
// of the range from its shard.
func (g *Gatherer) readRange(u int, lo, hi int64, dst unsafe.Pointer) error {
	es := int64(g.plan.ElemSize)
	sl := g.plan.Units[u].ShardLen
	own, err := g.local.Shards[u].DataPtr()
	if err != nil {
		return err
	}
	for r := lo / sl; r*sl < hi; r++ {
		a, b := max(lo, r*sl), min(hi, (r+1)*sl)
		out := unsafe.Slice((*byte)(unsafe.Add(dst, (a-lo)*es)), (b-a)*es)
		at := (a - r*sl) * es
		if int(r) == g.pg.Rank() {
			copy(out, unsafe.Slice((*byte)(unsafe.Add(own, at)), len(out)))
			continue
		}
		if err := g.peers.read(int(r), out, g.peers.ranks[r].Addrs[u]+uint64(at)); err != nil {
			return err
		}
	}
	return nil
}
