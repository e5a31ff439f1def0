package train

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/ncclpg"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// The split's exchange on GPU ranks (ncclpg), run against the fake libnccl/libcudart
// as the flat all-reduce's tests run it (flatorder_test.go: CPU tensors stand for CUDA
// ones, fakeCUDA tells the trainer it is on a GPU).

// floats makes a CPU float32 tensor of v.
func floats(t *testing.T, v []float32) *ts.Tensor {
	t.Helper()
	x, err := ts.OfSlice(v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.MustDrop)
	return x
}

// orderedCall matches an event line or a collective line of the fakes' log.
var orderedCall = regexp.MustCompile(`^(cudaEventRecord|cudaStreamWaitEvent|cudaStreamSynchronize|cudaDeviceSynchronize|ncclAllGather|ncclReduceScatter)\b`)

// Two GPU ranks exchange the owners' weights by an all-gather and sum the gradients'
// blocks by a reduce-scatter, both in place, each ordered against libtorch's stream
// by events: values exact (halves and small integers), no device-wide
// synchronisation, and per rank and collective an event recorded on stream 0, the
// group's stream waiting for it, the collective, an event on the group's stream,
// stream 0 waiting for it.
func TestSplitExchangeOrderedByEventsOnGPU(t *testing.T) {
	logPath := withFakeNCCL(t)
	const block = 3
	groups := twoFakeNCCLRanks(t)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	owned := [2][]float32{{1, 2, 3}, {-0.5, 4, 8}}                       // each rank's block of weights
	grads := [2][]float32{{1, 0, 2, 0.5, 0.5, 1}, {3, 1, -2, 1, 1.5, 0}} // each rank's gradients of every weight
	want := [2][]float32{{4, 1, 0}, {1.5, 2, 1}}                         // rank r: block r summed over ranks
	// In place, as deltaShare.hold and backward call them: mine is rank r's block of
	// all (which holds the owned weights there before the gather), gmine rank r's
	// block of gall.
	var mine, all, gall, gmine [2]*ts.Tensor
	for r := range 2 {
		start := make([]float32, 2*block)
		copy(start[r*block:], owned[r])
		all[r], gall[r] = floats(t, start), floats(t, grads[r])
		var err error
		if mine[r], err = all[r].Narrow(0, int64(r*block), block, false); err != nil {
			t.Fatal(err)
		}
		if gmine[r], err = gall[r].Narrow(0, int64(r*block), block, false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(mine[r].MustDrop)
		t.Cleanup(gmine[r].MustDrop)
	}
	syncs := deviceSyncs.Load()
	for r, g := range groups {
		wg.Go(func() {
			sh := &deltaShare{ranks: 2, block: block, gather: true, sg: g, dtype: gotch.Float, reduceDT: collective.Float32}
			ctx := context.Background()
			if errs[r] = sh.collective(fakeCUDA, mine[r], all[r], sh.gatherWeights(ctx)); errs[r] != nil {
				return
			}
			errs[r] = sh.collective(fakeCUDA, gall[r], gmine[r], sh.scatterGrads(ctx))
		})
	}
	wg.Wait()
	if n := deviceSyncs.Load() - syncs; n != 0 {
		t.Errorf("%d device-wide synchronisations, want 0", n)
	}
	for r := range 2 {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		gotAll, err := tensorkit.Float32s(all[r])
		if err != nil {
			t.Fatal(err)
		}
		gotMine, err := tensorkit.Float32s(gmine[r])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotAll, slices.Concat(owned[0], owned[1])) || !slices.Equal(gotMine, want[r]) {
			t.Errorf("rank %d: gathered %v, reduced %v; want %v, %v", r, gotAll, gotMine, slices.Concat(owned[0], owned[1]), want[r])
		}
	}
	var calls []string
	for line := range strings.Lines(readCallLog(t, logPath)) {
		if m := orderedCall.FindString(line); m != "" {
			calls = append(calls, m)
		}
	}
	// The two ranks' calls interleave in the log; per collective each rank makes the
	// same five, and nothing synchronises.
	count := map[string]int{}
	for _, c := range calls {
		count[c]++
	}
	wantCount := map[string]int{"cudaEventRecord": 8, "cudaStreamWaitEvent": 8, "ncclAllGather": 2, "ncclReduceScatter": 2}
	for name, n := range wantCount {
		if count[name] != n {
			t.Errorf("%d %s calls, want %d; calls: %v", count[name], name, n, calls)
		}
	}
	if count["cudaStreamSynchronize"]+count["cudaDeviceSynchronize"] != 0 {
		t.Errorf("the ordered exchange synchronised: %v", calls)
	}
}

// A split group without the ordered calls gets the device synchronised before each
// collective (counted; on this CPU-only libtorch the synchronisation itself fails, so
// nothing is exchanged), and gatherWeights/scatterGrads offer no ordered variant.
func TestSplitExchangePlainGroupSynchronises(t *testing.T) {
	withFakeNCCL(t)
	g, err := ncclpg.New(context.Background(), ncclpg.Config{Size: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	plain := struct{ splitGroup }{g}
	sh := &deltaShare{ranks: 1, block: 2, gather: true, sg: plain, dtype: gotch.Float, reduceDT: collective.Float32}
	w, s := sh.gatherWeights(context.Background()), sh.scatterGrads(context.Background())
	if w.ordered != nil || s.ordered != nil {
		t.Fatal("a group without the stream-ordered calls got an ordered variant")
	}
	if o := (&deltaShare{sg: g}).gatherWeights(context.Background()); o.ordered == nil {
		t.Fatal("an ncclpg group got no ordered all-gather")
	}
	syncs := deviceSyncs.Load()
	err = sh.collective(fakeCUDA, floats(t, []float32{1, 2}), floats(t, []float32{0, 0}), w)
	if n := deviceSyncs.Load() - syncs; n != 1 {
		t.Errorf("%d device-wide synchronisations (err %v), want 1", n, err)
	}
}
