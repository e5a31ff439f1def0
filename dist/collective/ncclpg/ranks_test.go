package ncclpg

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// Two ranks in one process, each group on its own device thread, meet
// through the fake's shared directory: the unique id crosses the store and
// every collective computes the real two-rank result.
func TestTwoRanksComputeRealResults(t *testing.T) {
	t.Setenv("FAKE_NCCL_SHARED_DIR", t.TempDir())
	t.Setenv("FAKE_NCCL_LOG", filepath.Join(t.TempDir(), "calls.log"))
	store := newMemStore()
	groups := make([]*Group, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			groups[r], errs[r] = New(context.Background(), Config{Rank: r, Size: 2, Store: store, Name: "two", Timeout: 10 * time.Second})
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: New: %v", r, err)
		}
		t.Cleanup(func() { _ = groups[r].Close() })
	}
	// Every rank runs the same sequence; results are exact in float32
	// (small integers and halves).
	type result struct {
		sum, avg, max, gathered, scattered []float32
		bcast                              []byte
	}
	results := make([]result, 2)
	ctx := context.Background()
	for r, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[r]
			mine := []float32{float32(r + 1), -0.5 * float32(r), 10}
			res.sum = slices.Clone(mine)
			errs[r] = g.AllReduce(ctx, res.sum, collective.Sum)
			res.avg = slices.Clone(mine)
			if errs[r] == nil {
				errs[r] = g.AllReduce(ctx, res.avg, collective.Avg)
			}
			res.max = slices.Clone(mine)
			if errs[r] == nil {
				errs[r] = g.AllReduce(ctx, res.max, collective.Max)
			}
			res.gathered = make([]float32, 6)
			if errs[r] == nil {
				errs[r] = g.AllGather(ctx, mine, res.gathered)
			}
			res.scattered = make([]float32, 2)
			if errs[r] == nil {
				errs[r] = g.ReduceScatter(ctx, []float32{1, 2, float32(3 * r), 4}, res.scattered, collective.Sum)
			}
			res.bcast = []byte{byte(r), byte(r), 7}
			if errs[r] == nil {
				errs[r] = g.Broadcast(ctx, res.bcast, 1)
			}
			if errs[r] == nil {
				errs[r] = g.Barrier(ctx)
			}
		}()
	}
	wg.Wait()
	for r, res := range results {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		checks := []struct {
			name      string
			got, want []float32
		}{
			{"sum", res.sum, []float32{3, -0.5, 20}},
			{"avg", res.avg, []float32{1.5, -0.25, 10}},
			{"max", res.max, []float32{2, 0, 10}},
			{"allgather", res.gathered, []float32{1, 0, 10, 2, -0.5, 10}},
			{"reducescatter", res.scattered, [][]float32{{2, 4}, {3, 8}}[r]},
		}
		for _, c := range checks {
			if !slices.Equal(c.got, c.want) {
				t.Errorf("rank %d %s = %v, want %v", r, c.name, c.got, c.want)
			}
		}
		if !slices.Equal(res.bcast, []byte{1, 1, 7}) {
			t.Errorf("rank %d broadcast from 1 = %v", r, res.bcast)
		}
	}
}
