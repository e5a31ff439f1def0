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

// The merged export writes a weight at a time: its peak resident set stays near one
// weight's copies (merged, read out, encoded), far below the model, which an export
// that encoded every weight before writing held once more in full.
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
	// A weight is held about three times over while it is written (merged, read out as
	// float32, encoded), and the largest, the 8192×512 embedding table or lm_head, is
	// 16 MiB: 0.4× the weights at most, with the garbage the Go collector has not yet
	// taken. An export that encodes every weight before writing holds the model once
	// more (0.90× measured here, where the freed memory the process already held took
	// the rest). 0.6× lies between.
	if g := float64(grew) / float64(res.Bytes); g > 0.6 {
		t.Fatalf("exporting %d MiB of weights raised the peak resident set by %d MiB (%.2f× the weights), want at most 0.6×",
			res.Bytes>>20, grew>>20, g)
	}
	t.Logf("peak resident set +%d MiB for %d MiB of weights", grew>>20, res.Bytes>>20)
}
