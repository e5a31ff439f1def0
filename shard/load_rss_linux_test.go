package shard_test

import (
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/safetensors"
	"github.com/lrtrain/lrtrain/shard"
)

// A rank copies its pieces out of the memory-mapped checkpoint and gives the mapped
// pages back once copied: its peak resident set while loading is about its shards
// alone, not its shards plus the pages of the checkpoint it read (which would stay
// mapped until the file is closed, twice its part).
func TestLoadLocalDoesNotKeepTheCheckpointResident(t *testing.T) {
	dir := writeModel(t, "llama", "small", "") // 128 MB of float32
	tensors := frozenTensors(t, dir)
	plan, err := shard.NewPlan(tensors, 2, shard.Options{ElemSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	src, err := safetensors.Open(filepath.Join(dir, safetensors.SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var local *shard.Local
	grew := testkit.PeakRSSGrowth(t, func() { local, err = shard.LoadLocal(src, plan, 0, gotch.Float, nil) })
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	part := plan.ShardBytes()
	// The shards are this rank's part of the weights: at least 0.9 of it shows the
	// measure sees them; another part on top would be the mapping kept. Between the
	// two, 1.5: far from either.
	if g := float64(grew) / float64(part); g < 0.9 || g > 1.5 {
		t.Fatalf("loading a rank's %d MiB of shards raised the peak resident set by %d MiB (%.2f× the part), want 0.9× to 1.5×",
			part>>20, grew>>20, g)
	}
}
