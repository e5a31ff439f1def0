package optim

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// benchSizes cycle through the shapes of an LR-LoRA adapter list: the K-vectors
// of a transfer function (16), rank-8 factors of a 896-wide projection (8·896) and
// of a 4864-wide one (8·4864), and a small bias-like vector.
var benchSizes = []int64{16, 16, 8 * 896, 8 * 896, 8 * 4864, 128}

// benchOptimizer makes n float32 parameters of the cycled sizes with gradients
// set once (a step does not clear them) and an optimizer over them.
func benchOptimizer(b *testing.B, n int, opsOnly bool) *AdamW {
	b.Helper()
	named := make([]ts.NamedTensor, n)
	var loss *ts.Tensor
	for i := range n {
		size := benchSizes[i%len(benchSizes)]
		p := ts.MustRandn([]int64{size}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)
		b.Cleanup(func() { p.MustDrop() })
		named[i] = ts.NamedTensor{Name: fmt.Sprintf("p%03d", i), Tensor: p}
		w := ts.MustRandn([]int64{size}, gotch.Float, gotch.CPU)
		term := p.MustMul(w, false).MustSum(gotch.Float, true)
		w.MustDrop()
		if loss == nil {
			loss = term
		} else {
			loss = loss.MustAdd(term, true)
			term.MustDrop()
		}
	}
	loss.MustBackward()
	loss.MustDrop()
	o, err := NewAdamW(named, DefaultAdamWConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(o.Close)
	o.opsOnly = opsOnly
	if err := o.Step(1e-4); err != nil { // creates the state
		b.Fatal(err)
	}
	return o
}

// BenchmarkAdamWStep times one optimizer step over 200 float32 parameters of
// mixed sizes (1.8 M elements), the libtorch-op path ("ops") beside the native
// multi-tensor call ("native"), and reports what a step issues: torch-ops/step
// (8 per parameter with weight decay) and native-calls/step (one per dtype/device
// group). Run both in one invocation; compare them side by side, not across runs:
//
//	go test ./optim/ -run '^$' -bench AdamWStep -benchtime 20x -count 3
func BenchmarkAdamWStep(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const n = 200
	for _, path := range []struct {
		name    string
		opsOnly bool
	}{{"ops", true}, {"native", false}} {
		b.Run(path.name, func(b *testing.B) {
			o := benchOptimizer(b, n, path.opsOnly)
			b.ResetTimer()
			for range b.N {
				if err := o.Step(1e-4); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			opsPerParam := 7
			if o.cfg.WeightDecay != 0 {
				opsPerParam = 8
			}
			b.ReportMetric(float64(opsPerParam*o.last.fallbackParams), "torch-ops/step")
			b.ReportMetric(float64(o.last.nativeCalls), "native-calls/step")
		})
	}
}
