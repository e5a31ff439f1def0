package lrlora

// BenchmarkVariantStep: one adapted layer's training step (forward of 512 tokens,
// backward) for plain LR-LoRA and each φ variant, round-robin within every iteration so
// that the machine's load falls on all of them alike; ratios to plain are reported as
// metrics. From the repository root:
//
//	go test ./lrlora/ -run '^$' -bench VariantStep -benchtime 20x -count 3

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/phiop"
)

func BenchmarkVariantStep(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	phiop.SetNumThreads(runtime.NumCPU())
	const d, tokens = 1024, 512
	w0 := benchTensor(b, randVals(1, d*d), []int64{d, d})
	x := benchTensor(b, randVals(2, tokens*d), []int64{tokens, d})
	r := benchTensor(b, randVals(3, tokens*d), []int64{tokens, d})
	bv := benchTensor(b, randVals(5, d*8), []int64{d, 8})
	variants := []struct {
		name string
		edit func(*adapter.Spec)
	}{
		{"plain", func(*adapter.Spec) {}},
		{"center", func(s *adapter.Spec) { s.Center = true }},
		{"residual", func(s *adapter.Spec) { s.Residual = true }},
	}
	ads := make([]*Adapter, len(variants))
	for i, v := range variants {
		small := func(s *adapter.Spec) { s.Init, s.InitValue = adapter.InitSmall, 0.1 } // the same a for all
		ad, err := New("layers.0.proj", w0, nil, spec(adapter.LRLoRA, 8, small, v.edit), seeded(4))
		if err != nil {
			b.Fatal(err)
		}
		defer ad.Close()
		if err := tensorkit.NoGrad(func() error { ad.b.Copy_(bv); return nil }); err != nil { // B ≠ 0: a trained layer
			b.Fatal(err)
		}
		ads[i] = ad
	}
	rounds := make([][]float64, len(ads)) // per round: each variant's step, in ms
	step := func(ad *Adapter) {
		y, err := ad.Forward(x)
		if err != nil {
			b.Fatal(err)
		}
		loss := y.MustMul(r, true).MustSum(gotch.Float, true)
		if err := loss.Backward(); err != nil {
			b.Fatal(err)
		}
		loss.MustDrop()
		for _, p := range ad.TrainableParameters() {
			p.Tensor.MustGrad(false).MustZero_()
		}
	}
	for _, ad := range ads { // warm-up
		step(ad)
	}
	b.ResetTimer()
	for n := range b.N {
		for j := range ads { // rotate the order, so no variant always runs first
			i := (n + j) % len(ads)
			start := time.Now()
			step(ads[i])
			rounds[i] = append(rounds[i], float64(time.Since(start).Microseconds())/1000)
		}
	}
	// Medians: of each variant's step and of its per-round ratio to plain (the ratio of
	// two steps a few hundred milliseconds apart, so the machine's load mostly cancels).
	for i, v := range variants {
		b.ReportMetric(median(rounds[i]), v.name+"-ms/step")
		if i > 0 {
			ratios := make([]float64, len(rounds[i]))
			for k := range ratios {
				ratios[k] = rounds[i][k] / rounds[0][k]
			}
			b.ReportMetric(median(ratios), v.name+"/plain")
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func benchTensor(b *testing.B, v []float64, shape []int64) *ts.Tensor {
	x, err := newTensor(v, shape, gotch.Float, gotch.CPU, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { x.Drop() })
	return x
}
