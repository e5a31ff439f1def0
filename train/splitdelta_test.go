package train

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/phiop"
)

// Two ranks that split ΔW's per-step work by layer (model.split_delta) train what one
// process trains on the same global batches with ΔW held for its two micro-batches:
// the same losses, gradient norms and final adapters as TestTwoRanksTrainLikeOne
// requires (float64; the sums run in another order). Between them the two ranks run
// φ's op exactly as often as the one process (one forward and one backward per layer
// and step), each a part of it: every layer is formed once, by its owner, not once
// per rank. With φ shared by all layers too (each owner adds its layers' part into
// the shared parameters' gradient, and the all-reduce adds the owners' parts). Both
// ways of exchanging the held weights and their gradients: the all-reduces of Gloo
// over TCP, and the all-gather (in place: each owner forms its weights in its block
// of the gathered buffer) and reduce-scatter of GPUs and of Gloo through shared
// memory (the layers grouped by owner, the shorter rank's block padded): over TCP
// with the seam that asks for them, and through shared memory, where the trainer
// chooses them itself. The log names the way each run took.
func TestSplitDeltaTrainsLikeOne(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	for _, tc := range []struct {
		name     string
		share    adapter.Sharing
		env      []string
		exchange string
	}{
		{"all-reduce", adapter.ShareNone, nil, "all-reduce"},
		{"all-reduce/phi shared", adapter.ShareAll, nil, "all-reduce"},
		{"all-gather and reduce-scatter", adapter.ShareNone, []string{envGather + "=1"}, "all-gather and reduce-scatter"},
		{"shared memory", adapter.ShareNone, []string{envSharedMem + "=1"}, "all-gather and reduce-scatter"},
	} {
		t.Run(tc.name, func(t *testing.T) { splitDeltaTrainsLikeOne(t, tc.share, tc.env, tc.exchange) })
	}
}

func splitDeltaTrainsLikeOne(t *testing.T, share adapter.Sharing, extra []string, exchange string) {
	one := distOptions(t, 2)
	one.Adapter.Phi.Share = share
	before := phiop.Passes()
	if _, err := Run(context.Background(), one, Env{Console: io.Discard}); err != nil {
		t.Fatal(err)
	}
	onePasses := phiop.Passes() - before

	two := distOptions(t, 1)
	two.Adapter.Phi.Share = share
	two.Model.SplitDelta = true
	dir := t.TempDir()
	runTwoRanks(t, two, append([]string{envPasses + "=" + dir}, extra...)...)
	compareTwoWithOne(t, one, two)

	var passes [2]int64
	for r := range passes {
		raw, err := os.ReadFile(filepath.Join(dir, "passes-"+strconv.Itoa(r)))
		if err == nil {
			passes[r], err = strconv.ParseInt(string(raw), 10, 64)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("φ passes: one process %d, split ranks %d + %d", onePasses, passes[0], passes[1])
	if want := int64(4 * 14 * 2); onePasses != want { // 4 steps × 14 layers × forward and backward
		t.Errorf("one process: %d φ passes, want %d", onePasses, want)
	}
	if passes[0]+passes[1] != onePasses || passes[0] == 0 || passes[1] == 0 {
		t.Errorf("split ranks ran φ %d and %d times; want a part each, %d together", passes[0], passes[1], onePasses)
	}
	logs, err := os.ReadFile(filepath.Join(two.Output.Dir, "train.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), `"adapters":14,"owned":`) ||
		!strings.Contains(string(logs), "split across ranks (model.split_delta)") ||
		!strings.Contains(string(logs), `"split_delta_steps":4,"split_delta_reduce_s":`) {
		t.Error("train.log does not note the split, or its 4 steps when training finished")
	}
	if want := `"exchange":"` + exchange + `"`; !strings.Contains(string(logs), want) {
		t.Errorf("train.log does not name the exchange %s", want)
	}
}

// model.split_delta splits what model.delta_per_step holds: one without the other is
// refused before any work, naming the key.
func TestSplitDeltaNeedsDeltaPerStep(t *testing.T) {
	o := tinyOptions(t, t.TempDir())
	o.Model.DeltaPerStep, o.Model.SplitDelta = false, true
	_, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "model.split_delta") {
		t.Fatalf("Run: %v, want an error naming model.split_delta", err)
	}
}

// The deal gives every layer one owner, largest first to the least loaded rank, so
// no rank's load exceeds the least loaded one's by more than the largest layer; the
// layout puts each layer inside its owner's block without overlap. The sizes are a
// Llama block's 7 projections (d = 512, d_kv = 128, d_ff = 1408) twice, over 2 and 3
// ranks (3: unequal blocks, the shorter ones padded).
func TestDealOwnersAndLayout(t *testing.T) {
	var sizes []int64
	for range 2 {
		sizes = append(sizes, 512*512, 128*512, 128*512, 512*512, 1408*512, 1408*512, 512*1408)
	}
	for _, ranks := range []int{2, 3} {
		owner := dealOwners(sizes, ranks)
		if again := dealOwners(sizes, ranks); !slices.Equal(owner, again) {
			t.Fatalf("%d ranks: two deals differ: %v, %v", ranks, owner, again)
		}
		load := make([]int64, ranks)
		for i, o := range owner {
			if o < 0 || o >= ranks {
				t.Fatalf("%d ranks: layer %d dealt to rank %d", ranks, i, o)
			}
			load[o] += sizes[i]
		}
		if spread := slices.Max(load) - slices.Min(load); spread > slices.Max(sizes) {
			t.Errorf("%d ranks: loads %v differ by %d, more than the largest layer", ranks, load, spread)
		}
		off, block := layout(sizes, owner, ranks)
		if block != slices.Max(load) {
			t.Errorf("%d ranks: block %d, want the largest load %d", ranks, block, slices.Max(load))
		}
		used := make([]int, int64(ranks)*block)
		for i, o := range owner {
			if lo, hi := int64(o)*block, int64(o+1)*block; off[i] < lo || off[i]+sizes[i] > hi {
				t.Errorf("%d ranks: layer %d at [%d, %d), outside its owner %d's block [%d, %d)", ranks, i, off[i], off[i]+sizes[i], o, lo, hi)
			}
			for k := off[i]; k < off[i]+sizes[i] && k < int64(len(used)); k++ {
				used[k]++
			}
		}
		if slices.Max(used) > 1 {
			t.Errorf("%d ranks: layers overlap", ranks)
		}
		t.Logf("%d ranks: loads %v, block %d", ranks, load, block)
	}
}

// A rank that dies during model.split_delta's exchange stops the other with one error
// naming the step and the exchange, and rank 0 saves the last completed step (the
// failed step changed nothing but gradients), which opens as a checkpoint of step 2.
func TestSplitDeltaDeadRankStopsTheOther(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	t.Run("tcp", func(t *testing.T) { splitDeltaDeadRank(t, "all-reduce") })
	t.Run("shared memory", func(t *testing.T) { splitDeltaDeadRank(t, "all-gather and reduce-scatter", envSharedMem+"=1") })
}

// splitDeltaDeadRank is TestSplitDeltaDeadRankStopsTheOther with extra in both
// ranks' environment, where the split's exchange is the one named.
func splitDeltaDeadRank(t *testing.T, exchange string, extra ...string) {
	o := distOptions(t, 1)
	o.Model.SplitDelta = true
	o.Checkpoint.Every = 0 // nothing saved before the failure: rank 0 saves step 2 then
	deadRankRun(t, o, envDieSplit+"=3", []string{"split ΔW", "collective"}, extra...)
	logs, err := os.ReadFile(filepath.Join(o.Output.Dir, "train.log"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"exchange":"` + exchange + `"`; !strings.Contains(string(logs), want) {
		t.Errorf("train.log does not name the exchange %s", want)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
