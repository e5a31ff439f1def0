package tensortest

import (
	"math"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// Set writes values into a float32 tensor in place and Values reads them back: the
// values are chosen exact in float32, so the round trip is exact.
func TestSetValuesRoundTrip(t *testing.T) {
	x := ts.MustZeros([]int64{2, 3}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	want := []float64{1, -2.5, 0.125, 3, 0, -0.75}
	Set(t, x, want)
	got := Values(t, x)
	if d := MaxAbsDiff(got, want); d != 0 {
		t.Errorf("Values after Set = %v, want %v", got, want)
	}
	if dt := x.DType(); dt != gotch.Float {
		t.Errorf("Set changed the dtype to %v", dt)
	}
	if err := set(x, want[:5]); err == nil {
		t.Error("setting 5 values into a tensor of 6 succeeded")
	}
}

func TestMaxAbsDiff(t *testing.T) {
	if d := MaxAbsDiff([]float64{1, 2}, []float64{1.5, -1}); d != 3 {
		t.Errorf("MaxAbsDiff = %v, want 3", d)
	}
	if d := MaxAbsDiff([]float64{1}, []float64{1, 2}); !math.IsInf(d, 1) {
		t.Errorf("lengths 1 and 2: %v, want +Inf", d)
	}
	if d := MaxAbsDiff([]float64{math.NaN()}, []float64{0}); !math.IsNaN(d) {
		t.Errorf("a NaN difference: %v, want NaN", d)
	}
	if m := MaxAbs([]float64{-4, 3}); m != 4 {
		t.Errorf("MaxAbs = %v, want 4", m)
	}
}

// Logits has one value per position and vocabulary entry, is the same on a second
// call and is not all zeros.
func TestLogits(t *testing.T) {
	dir := tinymodel.Write(t, hfinit.Options{Arch: "llama", Seed: 3})
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Train(false)
	a := Logits(t, m)
	if want := 2 * 6 * m.Config().VocabSize; len(a) != int(want) {
		t.Fatalf("%d logits, want %d", len(a), want)
	}
	if d := MaxAbsDiff(a, Logits(t, m)); d != 0 {
		t.Errorf("a second call differs by %v", d)
	}
	if MaxAbs(a) == 0 {
		t.Fatal("all logits are 0")
	}
}
