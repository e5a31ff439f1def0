package shard_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/shard"
)

// serveGoroutines counts the gatherers' collective goroutines alive in this process.
func serveGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "shard.(*Gatherer).serve")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// abortChild is role abort. Where the ranks all-gather, rank 1 gathers the
// embeddings and block 0 as a forward pass would (scheduled so that it requests
// nothing beyond them) and leaves, closing its end of the group; rank 0 runs a whole
// evaluation Forward, whose gather of block 1 (requested ahead while block 0 runs)
// must fail. Where they read each other's shards, no gather needs rank 1 to take
// part: rank 1 gives its shards up as after a failure (Abort) and meets rank 0 at a
// barrier, and then rank 0's Forward must fail at its first gather, the embeddings'.
// Rank 0 prints the error and how many collective goroutines are left once the
// gatherer is closed.
func abortChild(m *model.Model, gat *shard.Gatherer, g collective.ProcessGroup, rank int) int {
	barrier := g.(collective.Barrierer).Barrier
	if rank == 1 {
		if gat.PeerReads() {
			m.Close()
			gat.Abort()
			if err := barrier(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			return 0
		}
		if err := gat.Schedule([]int{-1, 0}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for _, b := range []int{-1, 0} {
			if err := errors.Join(gat.Before(b), gat.After(b)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return 0
	}
	if gat.PeerReads() {
		if err := barrier(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	runtime.LockOSThread()
	ids := make([]int64, 12)
	in, err := model.Int64Tensor(ids, 2, 6)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer in.Drop()
	if _, err := ts.GradSetEnabled(false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logits, err := m.Forward(model.Inputs{InputIDs: in})
	if err == nil {
		logits.Drop()
		fmt.Fprintln(os.Stderr, "the forward pass succeeded without rank 1")
		return 1
	}
	m.Close()
	gat.Close()
	fmt.Printf("error: %v\nleft after Close: %d\n", err, serveGoroutines())
	return 0
}

// When a rank leaves the group in the middle of a pass, the gather that rank 0 asked
// for ahead fails on the collective goroutine; the error must reach the pass at the
// block it was for, name that block and the rank, and leave no goroutine behind.
// Reading the shards of a rank that gave them up fails likewise, naming the rank that
// left, and Close does not wait for it.
func TestPrefetchFailureNamesBlockAndRank(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	dir := writeModel(t, "llama", "tiny", "")
	for _, c := range []struct {
		peer bool
		want string
	}{
		{false, "before the block 1: shard: rank 0: gather of block 1: "},
		{true, "before the embeddings: shard: rank 0: gather of embeddings: collective: peer lost: rank 1: peermem: peer gone: "},
	} {
		t.Run(fmt.Sprintf("peer-reads=%v", c.peer), func(t *testing.T) {
			env := envNoPeer + "=all"
			if c.peer {
				env = envNoPeer + "="
			}
			runs := runRanks(t, "abort", 2, 60*time.Second, envDir+"="+dir, envPrefetch+"=1", env)
			for _, r := range runs {
				if r.err != nil {
					t.Fatalf("rank %d: %v\n%s", r.rank, r.err, r.stderr)
				}
			}
			out := runs[0].stdout
			t.Logf("rank 0: %s", out)
			if !strings.Contains(out, c.want) {
				t.Errorf("rank 0's error does not say %q:\n%s", c.want, out)
			}
			if !strings.Contains(out, "left after Close: 0\n") {
				t.Errorf("collective goroutines left after Close:\n%s", out)
			}
		})
	}
}

func TestSetPrefetchValidatesTheDepth(t *testing.T) {
	g := shard.NewGatherer(context.Background(), oneRank(t))
	defer g.Close()
	if g.Prefetch() != shard.DefaultPrefetch {
		t.Errorf("default depth %d, want %d", g.Prefetch(), shard.DefaultPrefetch)
	}
	for _, n := range []int{-1, shard.MaxPrefetch + 1} {
		if err := g.SetPrefetch(n); !errors.Is(err, shard.ErrState) {
			t.Errorf("SetPrefetch(%d): %v, want ErrState", n, err)
		}
	}
	for _, n := range []int{0, shard.MaxPrefetch} {
		if err := g.SetPrefetch(n); err != nil || g.Prefetch() != n {
			t.Errorf("SetPrefetch(%d): %v, depth %d", n, err, g.Prefetch())
		}
	}
}

// accounting replays, for a plan, the calls a model makes to its gatherer (Schedule,
// Before, After) with the gatherer's rules for requesting ahead and keeping the last
// released buffer, and counts what it must hold: gathered bytes at their peak,
// buffer bytes (held, requested ahead or kept) at their peak, all-gathers.
type accounting struct {
	p            *shard.Plan
	tied         bool // the head needs the embeddings too
	depth        int
	held         map[int]int
	pending      map[int]bool
	sched        []int
	pos, ahead   int
	heldB, peakB int64
	bufB, peakBf int64
	kept         int          // the released unit whose buffer is kept, -1 if none
	fromKept     map[int]bool // pending units served from the kept buffer
	gathers      int          // units bound from an all-gather
	reused       int          // units served from the kept buffer
}

func newAccounting(p *shard.Plan, tied bool, depth int) *accounting {
	return &accounting{p: p, tied: tied, depth: depth, held: map[int]int{}, pending: map[int]bool{},
		kept: -1, fromKept: map[int]bool{}}
}

func (a *accounting) units(b int) []int {
	var us []int
	if u, ok := a.p.Unit(b); ok {
		us = append(us, u)
	}
	if a.tied && b == a.p.Blocks {
		e, _ := a.p.Unit(shard.Embeddings)
		us = append(us, e)
	}
	return us
}

// bytes is what unit u's gathered values take; bufBytes what its buffer takes.
func (a *accounting) bytes(u int) int64    { return a.p.Units[u].Len * int64(a.p.ElemSize) }
func (a *accounting) bufBytes(u int) int64 { return a.p.BufferLen(u) * int64(a.p.ElemSize) }

func (a *accounting) dropKept() {
	if a.kept >= 0 {
		a.bufB -= a.bufBytes(a.kept)
	}
	a.kept = -1
}

func (a *accounting) take(b int) {
	var want []int
	for _, u := range a.units(b) {
		if a.held[u] == 0 && !a.pending[u] {
			want = append(want, u)
		}
	}
	if len(want) > 0 && !slices.Contains(want, a.kept) {
		a.dropKept()
	}
	for _, u := range want {
		a.pending[u] = true
		if u == a.kept {
			a.kept, a.fromKept[u] = -1, true
			a.reused++
		} else {
			a.bufB += a.bufBytes(u)
			a.peakBf = max(a.peakBf, a.bufB)
		}
		a.heldB += a.bytes(u)
		a.peakB = max(a.peakB, a.heldB)
	}
}

func (a *accounting) cancel() {
	for u := range a.pending {
		a.bufB -= a.bufBytes(u)
		a.heldB -= a.bytes(u)
	}
	a.pending, a.fromKept, a.sched, a.pos, a.ahead = map[int]bool{}, map[int]bool{}, nil, 0, 0
}

func (a *accounting) requestAhead() {
	for ; a.ahead < min(a.pos+a.depth, len(a.sched)); a.ahead++ {
		a.take(a.sched[a.ahead])
	}
}

func (a *accounting) schedule(order []int) {
	a.cancel()
	if order != nil && a.depth > 0 {
		a.sched = order
		a.requestAhead()
	}
}

func (a *accounting) before(b int) {
	if a.sched != nil {
		if a.pos < len(a.sched) && a.sched[a.pos] == b {
			a.pos++
		} else {
			a.cancel()
		}
	}
	a.take(b)
	a.requestAhead()
	a.dropKept()
	for _, u := range a.units(b) {
		if a.held[u] == 0 {
			if !a.fromKept[u] {
				a.gathers++
			}
			delete(a.pending, u)
			delete(a.fromKept, u)
		}
		a.held[u]++
	}
}

func (a *accounting) after(b int) {
	for _, u := range a.units(b) {
		if a.held[u]--; a.held[u] == 0 {
			a.dropKept()
			a.kept = u
			a.heldB -= a.bytes(u)
		}
	}
}

// forward replays an evaluation Forward.
func (a *accounting) forward() {
	order := pieces(-1, a.p.Blocks)
	a.schedule(order)
	for _, b := range order {
		a.before(b)
		a.after(b)
	}
}

// checkpointed replays Begin and Pass.Backward of a checkpointed training pass: the
// forward schedules the embeddings and the blocks, not the head; backward's top
// block runs unscheduled, then the blocks below it are scheduled.
func (a *accounting) checkpointed() {
	order := pieces(-1, a.p.Blocks-1)
	a.schedule(order)
	for _, b := range order {
		a.before(b)
		a.after(b)
	}
	a.before(a.p.Blocks) // the head is held until backward has gone through it
	a.after(a.p.Blocks)
	top := a.p.Blocks - 1 // backward recomputes the blocks, not the embeddings
	a.before(top)
	a.after(top)
	if top > 0 {
		down := pieces(top-1, 0)
		a.schedule(down)
		for _, b := range down {
			a.before(b)
			a.after(b)
		}
	}
	a.schedule(nil)
}

// pieces counts from first to last (up or down), both included.
func pieces(first, last int) []int {
	var out []int
	step := 1
	if last < first {
		step = -1
	}
	for i := first; ; i += step {
		out = append(out, i)
		if i == last {
			return out
		}
	}
}
