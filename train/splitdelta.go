package train

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/lrlora"
)

// ΔW's per-step work split across data-parallel ranks (model.split_delta). With
// model.delta_per_step every rank forms each layer's merged weight once per step and
// runs its backward once, on the same adapters: work every rank repeats, which data
// parallelism cannot speed up. Split, each held layer has one owner rank (layers
// dealt out largest first to the least loaded rank, by d_out·d_in). Two flat buffers
// hold every layer's d_out·d_in elements, grouped by owner: rank k's layers in block
// k, every block as long as the largest rank's share. At the start of a step each
// rank forms its layers' weights into its block and one all-gather gives every rank
// every layer's weight. The held weights' gradients gather in place in the second
// buffer (their .grad are views of it, lrlora.Adapter.GatherGradInto, from the first
// backward on), and after the micro-batches one reduce-scatter of it leaves each
// rank the sum over ranks of its own block: the owner runs its layers' backward with
// that sum. The other ranks leave those layers' parameter gradients at zero, so the
// usual all-reduce of the parameters' gradients adds up the owners' results. φ's backward
// is linear in its upstream gradient, so this is the unsplit gradient up to the order
// of the sums. Cost per step: an all-gather and a reduce-scatter of every held layer's
// d_out·d_in elements (each moves (n−1)/n of them per rank, half an all-reduce),
// against each rank's φ work falling to its layers' share.
//
// Both run in place: the owner forms its weights in its block of the gathered buffer
// (the all-gather's send is its own block of recv), and the reduce-scatter leaves the
// sum in the rank's block of the gradient buffer, so neither exists twice.
//
// That is the path on GPUs (NCCL) and on CPU ranks whose Gloo group runs through
// shared memory. Over Gloo's TCP both steps all-reduce the whole buffer instead: the
// weights with zeros outside each rank's own layers (a sum with zeros gives the
// owner's values exactly), and the gradients summed in full, of which each rank reads
// its block. Over TCP, side by side in training, the two ways ran at the same
// throughput (the collectives' time is mostly the wait for the slower rank) and the
// TCP reduce-scatter's kept buffers added 90 MiB of peak RSS; through shared memory
// the gathering way runs faster (no 94 MB of zeros to write, fewer bytes to move)
// for about 10 MiB more RSS than the all-reduces (BENCHMARKS.md).

// viaSharedMemory reports whether g moves its collectives through shared memory
// (a Gloo group whose ranks share a host).
func viaSharedMemory(g collective.ProcessGroup) bool {
	s, ok := g.(interface{ SharedMemory() bool })
	return ok && s.SharedMemory()
}

// exchange names how the split moves the weights and their gradients (logged).
func (sh *deltaShare) exchange() string {
	if sh.gather {
		return "all-gather and reduce-scatter"
	}
	return "all-reduce"
}

// splitGroup is what a group needs for the split: the raw all-gather and
// reduce-scatter (Gloo on host memory, NCCL on device memory).
type splitGroup interface {
	collective.RawAllGatherer
	collective.RawReduceScatterer
}

// deltaShare is one step's split: ads[i] (a holding adapter) has owner[i] and the
// elements [off[i], off[i]+n[i]) of the flat buffers, inside block owner[i] of
// block elements each.
type deltaShare struct {
	ads      []*lrlora.Adapter
	owner    []int
	off, n   []int64
	block    int64
	ranks    int
	dtype    gotch.DType
	gather   bool                     // all-gather and reduce-scatter (sg); else all-reduce (ar)
	sg       splitGroup               // NCCL groups
	ar       collective.RawAllReducer // Gloo groups
	reduceDT collective.DType
	reduced  time.Duration // the host's time in this step's two collectives
	// grads is the gradient buffer (hold to release): the held weights' .grad are
	// views of it, so the passes add into it in place.
	grads *ts.Tensor
}

// splitStats sums what the steps that split ΔW spent in its collectives (logged
// with "training finished").
type splitStats struct {
	steps  int
	reduce time.Duration
}

// planShare returns the split for this step, or nil and why the step cannot split
// (then it holds as without model.split_delta).
func (r *run) planShare() (*deltaShare, string) {
	if !r.opts.Model.SplitDelta || r.g.Size() < 2 {
		return nil, ""
	}
	dev := r.m.Device()
	sh := &deltaShare{ads: r.m.HoldingAdapters(), ranks: r.g.Size()}
	dr, onDevice := r.g.(deviceReducer)
	switch sg, ok := r.g.(splitGroup); {
	case dev.IsCuda() != onDevice || (onDevice && dr.Device() != dev.Value):
		return nil, fmt.Sprintf("the group (%T) does not reach %v memory", r.g, dev)
	case onDevice && !ok:
		return nil, fmt.Sprintf("the group (%T) has no raw all-gather and reduce-scatter", r.g)
	case onDevice || (ok && (r.env.seams.splitGather || viaSharedMemory(r.g))):
		sh.gather, sh.sg = true, sg
	default:
		if sh.ar, ok = r.g.(collective.RawAllReducer); !ok {
			return nil, fmt.Sprintf("the group (%T) has no raw all-reduce", r.g)
		}
	}
	if len(sh.ads) == 0 {
		return nil, "no adapter holds ΔW (plain LoRA, a sharded backbone or model.recompute_delta)"
	}
	sh.n = make([]int64, len(sh.ads))
	for i, ad := range sh.ads {
		var dt gotch.DType
		sh.n[i], dt = ad.HeldSize()
		if i == 0 {
			sh.dtype = dt
		} else if dt != sh.dtype {
			return nil, fmt.Sprintf("adapters %s and %s differ in dtype (%v, %v)", sh.ads[0].Name(), ad.Name(), sh.dtype, dt)
		}
	}
	var ok bool
	if sh.reduceDT, ok = reducible(sh.dtype); !ok {
		return nil, fmt.Sprintf("the adapters' dtype %v is not reduced (float32 or float64)", sh.dtype)
	}
	sh.owner = dealOwners(sh.n, sh.ranks)
	sh.off, sh.block = layout(sh.n, sh.owner, sh.ranks)
	return sh, ""
}

// layout places n[i] elements in block owner[i] of ranks equal blocks, each rank's
// in order, and returns their offsets and the block length (the largest rank's total).
func layout(n []int64, owner []int, ranks int) (off []int64, block int64) {
	fill := make([]int64, ranks)
	off = make([]int64, len(n))
	for i, o := range owner {
		off[i] = fill[o]
		fill[o] += n[i]
	}
	block = slices.Max(fill)
	for i, o := range owner {
		off[i] += int64(o) * block
	}
	return off, block
}

// dealOwners gives each of sizes an owner among ranks: largest first (ties in order)
// to the rank with the least so far (ties to the lowest rank). Every rank computes the
// same deal from the same sizes.
func dealOwners(sizes []int64, ranks int) []int {
	order := make([]int, len(sizes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sizes[b], sizes[a]) })
	load := make([]int64, ranks)
	owner := make([]int, len(sizes))
	for _, i := range order {
		least := 0
		for k := 1; k < ranks; k++ {
			if load[k] < load[least] {
				least = k
			}
		}
		owner[i] = least
		load[least] += sizes[i]
	}
	return owner
}

// fill is how many elements of its block rank's layers take (the rest is padding).
func (sh *deltaShare) fill(rank int) int64 {
	var n int64
	for i, o := range sh.owner {
		if o == rank {
			n += sh.n[i]
		}
	}
	return n
}

// owned counts the layers this rank owns.
func (sh *deltaShare) owned(rank int) int {
	n := 0
	for _, o := range sh.owner {
		if o == rank {
			n++
		}
	}
	return n
}

// hold forms this rank's layers' weights into its block and gathers the others'
// (see above). On error the caller releases what is held (model.ReleaseDeltas).
func (sh *deltaShare) hold(ctx context.Context, dev gotch.Device, rank int) error {
	alloc := ts.Zeros // the all-reduce's zeros
	if sh.gather {
		alloc = ts.Empty // every element is gathered
	}
	all, err := alloc([]int64{int64(sh.ranks) * sh.block}, sh.dtype, dev)
	if err != nil {
		return fmt.Errorf("train: split ΔW: buffer of %d elements: %w", int64(sh.ranks)*sh.block, err)
	}
	defer all.Drop() // the received weights keep its storage
	mine, base := all, int64(0)
	if sh.gather {
		// The owned weights are formed in this rank's block of the buffer, which the
		// all-gather then leaves in place: no second copy of them. Its padding is zeroed.
		base = int64(rank) * sh.block
		if mine, err = all.Narrow(0, base, sh.block, false); err != nil {
			return fmt.Errorf("train: split ΔW: block %d of the buffer: %w", rank, err)
		}
		defer mine.Drop()
		if pad := sh.block - sh.fill(rank); pad > 0 {
			if err := withSlot(mine, sh.block-pad, pad, func(p *ts.Tensor) error { return tensorkit.Done(p.ZeroOut(p, false)) }); err != nil {
				return fmt.Errorf("train: split ΔW: padding of block %d: %w", rank, err)
			}
		}
	}
	for i, ad := range sh.ads {
		if sh.owner[i] == rank {
			err = withSlot(mine, sh.off[i]-base, sh.n[i], ad.HoldDeltaInto)
		} else {
			err = withSlot(all, sh.off[i], sh.n[i], ad.HoldReceived)
		}
		if err != nil {
			return fmt.Errorf("train: split ΔW: %w", err)
		}
	}
	start := time.Now()
	if sh.gather {
		err = sh.collective(dev, mine, all, sh.gatherWeights(ctx))
	} else {
		err = sh.collective(dev, mine, all, rawCalls{plain: func(_, recv unsafe.Pointer) error {
			return sh.ar.AllReduceRaw(ctx, recv, sh.ranks*int(sh.block), sh.reduceDT, collective.Sum)
		}})
	}
	if err != nil {
		return fmt.Errorf("train: split ΔW: exchange the held weights: %w", err)
	}
	sh.reduced += time.Since(start)
	return nil
}

// backward sums the held weights' gradients across ranks block by block and runs
// this rank's layers' backward with its block of the sum; every held weight is
// released.
func (sh *deltaShare) backward(ctx context.Context, dev gotch.Device, rank int) error {
	if err := sh.gradsInPlace(dev); err != nil { // a rank without micro-batches this step
		return err
	}
	for i, ad := range sh.ads {
		if sh.owner[i] != rank {
			ad.ReleaseDelta() // its gradient stays in sh.grads
		}
	}
	all := sh.grads
	var err error
	mine, base := all, int64(0)
	if sh.gather { // the reduce-scatter leaves the sum in this rank's block, in place
		base = int64(rank) * sh.block
		if mine, err = all.Narrow(0, base, sh.block, false); err != nil {
			return fmt.Errorf("train: split ΔW: block %d of the gradient buffer: %w", rank, err)
		}
		defer mine.Drop()
	}
	start := time.Now()
	if sh.gather {
		err = sh.collective(dev, all, mine, sh.scatterGrads(ctx))
	} else {
		err = sh.collective(dev, all, mine, rawCalls{plain: func(send, _ unsafe.Pointer) error {
			return sh.ar.AllReduceRaw(ctx, send, sh.ranks*int(sh.block), sh.reduceDT, collective.Sum)
		}})
	}
	if err != nil {
		return fmt.Errorf("train: split ΔW: sum the held weights' gradients: %w", err)
	}
	sh.reduced += time.Since(start)
	if sh.gather {
		sh.release() // mine keeps the buffer's storage
	}
	grads := make([]*ts.Tensor, len(sh.ads)) // views of mine for the owned layers; nil for the others
	defer func() {
		for _, g := range grads {
			if g != nil {
				g.Drop()
			}
		}
	}()
	for i := range sh.ads {
		if sh.owner[i] != rank {
			continue
		}
		if grads[i], err = mine.Narrow(0, sh.off[i]-base, sh.n[i], false); err != nil {
			return fmt.Errorf("train: split ΔW: gradient of %s: %w", sh.ads[i].Name(), err)
		}
	}
	if err := lrlora.BackwardHeldWith(sh.ads, grads); err != nil {
		return fmt.Errorf("train: split ΔW: %w", err)
	}
	return nil
}
