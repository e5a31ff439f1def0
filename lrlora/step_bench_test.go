package lrlora

// BenchmarkLayerStep: one adapted projection's training step (forward of 2×256 tokens,
// backward; the small Llama preset's up_proj, 1408×512) for the parts the LR-LoRA/LoRA
// step ratio is made of, round-robin within every iteration so that the machine's load
// falls on all of them alike:
//
//	lrlora     Forward as trained: W_eff = W0 + φ(M; s·a), one GEMM forward, two back
//	unfused    the same step with s applied to φ(M) (ΔW = s·φ(M) as before: one more
//	           d_out×d_in pass and tensor forward, and one backward for s·G)
//	lora       plain LoRA's unmerged training path, the reference method
//	phi        φ's fused forward and backward alone on M (the method's own arithmetic)
//	gtx        the d_out×d_in GEMM Gᵀ·x alone (the gradient that LoRA never forms)
//
// Reported: each part's median ms, unfused/lrlora and lrlora/lora (medians of per-round
// ratios), φ's rate in K-terms per second forward + backward and Gᵀ·x's GFLOP/s. From
// the repository root:
//
//	go test ./lrlora/ -run '^$' -bench LayerStep -benchtime 20x -count 3

import (
	"runtime"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/phiop"
)

func BenchmarkLayerStep(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	phiop.SetNumThreads(runtime.NumCPU())
	const dOut, dIn, tokens, rank = 1408, 512, 512, 8
	w0 := benchTensor(b, randVals(1, dOut*dIn), []int64{dOut, dIn})
	x := benchTensor(b, randVals(2, tokens*dIn), []int64{2, tokens / 2, dIn}) // batch × seq × d_in, as the model's
	r := benchTensor(b, randVals(3, tokens*dOut), []int64{2, tokens / 2, dOut})
	g := benchTensor(b, randVals(4, tokens*dOut), []int64{tokens, dOut})
	bv := benchTensor(b, randVals(5, dOut*rank), []int64{dOut, rank})
	small := func(s *adapter.Spec) { s.Init, s.InitValue = adapter.InitSmall, 0.1 }
	newAd := func(m adapter.Method) *Adapter {
		ad, err := New("layers.0.mlp.up_proj", w0, nil, spec(m, rank, small), seeded(4))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(ad.Close)
		if err := tensorkit.NoGrad(func() error { ad.b.Copy_(bv); return nil }); err != nil { // B ≠ 0: a trained layer
			b.Fatal(err)
		}
		return ad
	}
	lr, lo := newAd(adapter.LRLoRA), newAd(adapter.LoRA)
	backward := func(ad *Adapter, y *ts.Tensor) {
		loss := y.MustMul(r, true).MustSum(gotch.Float, true)
		if err := loss.Backward(); err != nil {
			b.Fatal(err)
		}
		loss.MustDrop()
		for _, p := range ad.TrainableParameters() {
			p.Tensor.MustGrad(false).MustZero_()
		}
	}
	forward := func(ad *Adapter) func() {
		return func() {
			y, err := ad.Forward(x)
			if err != nil {
				b.Fatal(err)
			}
			backward(ad, y)
		}
	}
	unfused := func() { // the merged path as it was: s·φ and W0 + ΔW each a new tensor
		m := lr.b.MustMm(lr.a, false)
		phi, err := phiop.Apply(m, lr.phi.amplitude, lr.phi.bandwidthRaw, lr.phi.grid, lr.spec.Basis, lr.phiScale)
		if err != nil {
			b.Fatal(err)
		}
		m.MustDrop()
		dw := phi.MustMulScalar(ts.FloatScalar(lr.scaling), true)
		weff := w0.MustAdd(dw, false)
		dw.MustDrop()
		noBias := ts.NewTensor()
		y := ts.MustLinear(x, weff, noBias)
		noBias.MustDrop()
		weff.MustDrop()
		backward(lr, y)
	}
	phiOnly := func() {
		m := lr.b.MustMm(lr.a, false)
		phi, err := phiop.Apply(m, lr.phi.amplitude, lr.phi.bandwidthRaw, lr.phi.grid, lr.spec.Basis, lr.phiScale)
		if err != nil {
			b.Fatal(err)
		}
		m.MustDrop()
		loss := phi.MustSum(gotch.Float, true)
		if err := loss.Backward(); err != nil {
			b.Fatal(err)
		}
		loss.MustDrop()
		for _, p := range lr.TrainableParameters() {
			p.Tensor.MustGrad(false).MustZero_()
		}
	}
	gtx := func() { // Gᵀ·x as linear's backward runs it: (d_out×N)·(N×d_in)
		gt := g.MustT(false)
		x2 := x.MustView([]int64{tokens, dIn}, false)
		gt.MustMm(x2, false).MustDrop()
		x2.MustDrop()
		gt.MustDrop()
	}
	parts := []struct {
		name string
		run  func()
	}{{"lrlora", forward(lr)}, {"unfused", unfused}, {"lora", forward(lo)}, {"phi", phiOnly}, {"gtx", gtx}}
	for _, p := range parts { // warm-up
		p.run()
	}
	ms := make([][]float64, len(parts))
	b.ResetTimer()
	for n := range b.N {
		for j := range parts { // rotate the order, so no part always runs first
			i := (n + j) % len(parts)
			start := time.Now()
			parts[i].run()
			ms[i] = append(ms[i], float64(time.Since(start).Microseconds())/1000)
		}
	}
	ratio := func(i, j int) float64 {
		q := make([]float64, len(ms[i]))
		for k := range q {
			q[k] = ms[i][k] / ms[j][k]
		}
		return median(q)
	}
	for i, p := range parts {
		b.ReportMetric(median(ms[i]), p.name+"-ms")
	}
	b.ReportMetric(ratio(1, 0), "unfused/lrlora")
	b.ReportMetric(ratio(0, 2), "lrlora/lora")
	terms := float64(dOut*dIn) * float64(lr.spec.Phi.K)
	b.ReportMetric(terms/(median(ms[3])/1000)/1e9, "phi-Gterms/s")
	b.ReportMetric(2*float64(dOut*dIn*tokens)/(median(ms[4])/1000)/1e9, "gtx-GFLOP/s")
}
