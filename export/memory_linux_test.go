package export_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/export"
	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// The merged export streams a weight at a time to the file: its peak resident set
// stays near one merged weight and one chunk, far below the model, which an export that
// encoded every weight before writing held once more in full.
func TestMergedHoldsOneWeightAtATime(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "base")
	tinymodel.WriteTo(t, dir, hfinit.Options{Arch: "llama", Preset: "small", Seed: 7}) // 128 MB of float32
	m := adapted(t, dir, "all-linear", adapter.LRLoRA)
	st, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var res *export.Result
	grew := testkit.PeakRSSGrowth(t, func() {
		res, err = export.Merged(m, filepath.Join(t.TempDir(), "out"), export.Options{DType: "float32"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes < st.Size()*9/10 {
		t.Fatalf("the export wrote %d bytes of weights, the base model has %d: not the whole model", res.Bytes, st.Size())
	}
	// The export holds one merged weight (the largest adapted one here is 1408×512,
	// 2.75 MiB) and one chunk of 2²⁰ values (4 MiB as float32, 4 MiB encoded) at a
	// time, with the garbage the Go collector has not yet taken: a few chunks. An
	// export that encodes every weight before writing holds the model once more (0.90×
	// measured here, where the freed memory the process already held took the rest).
	// 0.3× lies far from both.
	if g := float64(grew) / float64(res.Bytes); g > 0.3 {
		t.Fatalf("exporting %d MiB of weights raised the peak resident set by %d MiB (%.2f× the weights), want at most 0.3×",
			res.Bytes>>20, grew>>20, g)
	}
	t.Logf("peak resident set +%d MiB for %d MiB of weights", grew>>20, res.Bytes>>20)
}
