package shard_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/shard"
)

// oneRank is a real Gloo group of one rank.
func oneRank(t *testing.T) collective.ProcessGroup {
	t.Helper()
	g, err := gloo.New(context.Background(), collective.Config{Size: 1, Hostname: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// With one rank the gatherer binds views of its own shards: the workload must equal
// the unsharded model's bit for bit, and between passes the weights hold nothing.
func TestOneRankMatchesTheWholeModel(t *testing.T) {
	dir := writeModel(t, "llama", "tiny", "")
	want := reference(t, dir)
	m, g, err := shard.Load(context.Background(), oneRank(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	defer m.Close()
	got, err := workload(m, 2, 6, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := firstDiff(got, want); d != "" {
		t.Fatalf("sharded over one rank: %s", d)
	}
	for _, w := range m.Weights() {
		v, err := tensorkit.Float32s(w.Tensor)
		if err != nil {
			t.Fatal(err)
		}
		if !w.Trainable && !math.IsNaN(float64(v[0])) {
			t.Errorf("%s holds %v after the pass, want its NaN placeholder", w.Name, v[0])
		}
	}
	st := g.Stats()
	if st.ShardBytes != g.Plan().TotalBytes() || st.HeldBytes != 0 || st.PeakHeldBytes != 0 {
		t.Errorf("one rank: %+v (total %d bytes)", st, g.Plan().TotalBytes())
	}
}

func TestGathererUsedOutOfOrder(t *testing.T) {
	dir := writeModel(t, "llama", "tiny", "")
	g := shard.NewGatherer(context.Background(), oneRank(t))
	if err := g.Before(0); !errors.Is(err, shard.ErrState) {
		t.Errorf("Before without Bind: %v", err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := g.Bind(m, nil); !errors.Is(err, shard.ErrState) {
		t.Errorf("Bind of a model loaded without the hook: %v", err)
	}
	m2, g2, err := shard.Load(context.Background(), oneRank(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	defer m2.Close()
	for _, b := range []int{-2, 3} {
		if err := g2.Before(b); !errors.Is(err, shard.ErrState) {
			t.Errorf("Before(%d) of a 2-block model: %v", b, err)
		}
	}
	if err := g2.After(1); !errors.Is(err, shard.ErrState) {
		t.Errorf("After without Before: %v", err)
	}
}

// twoWithoutRaw claims two ranks but hides the group's raw all-gather.
type twoWithoutRaw struct{ collective.ProcessGroup }

func (twoWithoutRaw) Size() int { return 2 }

// A shard group of several ranks without a raw all-gather cannot feed the buffers.
func TestGroupWithoutRawAllGatherIsUnsupported(t *testing.T) {
	dir := writeModel(t, "llama", "tiny", "")
	_, _, err := shard.Load(context.Background(), twoWithoutRaw{oneRank(t)}, dir)
	if !errors.Is(err, shard.ErrUnsupported) {
		t.Errorf("Load through a group without AllGatherRaw: %v, want ErrUnsupported", err)
	}
}
