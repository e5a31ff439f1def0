package model_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// Loading copies each tensor out of the memory-mapped checkpoint and gives the mapped
// pages back once copied, so the process's peak resident set while loading is about
// the copies alone, not the copies plus the file's pages (which would stay mapped
// until the file is closed, twice the model).
func TestLoadDoesNotKeepTheCheckpointResident(t *testing.T) {
	dir := tinymodel.Write(t, hfinit.Options{Arch: "llama", Preset: "small", Seed: 1}) // 128 MB of float32
	st, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	var m *model.Model
	grew := testkit.PeakRSSGrowth(t, func() { m, err = model.Load(dir) })
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The copies are the file's tensors in the same dtype: at least 0.9 of its size
	// shows the measure sees them; another size on top would be the mapping kept.
	// Between the two, 1.5: far from either.
	if g := float64(grew) / float64(size); g < 0.9 || g > 1.5 {
		t.Fatalf("loading %d MiB of weights raised the peak resident set by %d MiB (%.2f× the file), want 0.9× to 1.5×",
			size>>20, grew>>20, g)
	}
}
