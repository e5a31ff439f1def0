package model

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/sugarme/gotch/ts"
)

// The head of a causal LM, forward and backward to its input: the loss on the logits
// (libtorch's cross-entropy) and computed a chunk of vocabulary rows at a time
// (lossAndGrad; chunk=0 is the automatic size), alternating in every iteration, at the small preset's shapes (H 512,
// V 8192) and Qwen2-0.5B's (H 896, V 151936), 2×128 positions. fused/logits is the
// ratio of their times (the final norm, the same in both, is left out):
//
//	go test ./model -run '^$' -bench FusedHead -benchtime 3x
func BenchmarkFusedHead(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, sh := range []struct {
		name      string
		hid, voc  int64
		batch, tl int64
	}{{"small", 512, 8192, 2, 128}, {"qwen2-0.5b", 896, 151936, 2, 128}} {
		rng := rand.New(rand.NewPCG(1, 2))
		randn := func(shape ...int64) *ts.Tensor {
			n := int64(1)
			for _, d := range shape {
				n *= d
			}
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(0.05 * rng.NormFloat64())
			}
			t := ts.MustOfSlice(v).MustReshape(shape, true)
			return t
		}
		x := randn(sh.batch, sh.tl, sh.hid).MustMulScalar(ts.FloatScalar(20), true)
		w := randn(sh.voc, sh.hid)
		ids := make([]int64, sh.batch*sh.tl)
		for i := range ids {
			ids[i] = rng.Int64N(sh.voc)
		}
		labels := ts.MustOfSlice(ids).MustReshape([]int64{sh.batch, sh.tl}, true)
		src, err := newRowSource(w, nil)
		if err != nil {
			b.Fatal(err)
		}
		logits := func() time.Duration {
			t0 := time.Now()
			leaf := x.MustDetach(false).MustSetRequiresGrad(true, true)
			s := newScope("bench")
			z := s.linear(leaf, w, nil)
			if !s.ok(z) {
				b.Fatal(s.err)
			}
			loss, err := CausalLMLossSum(z, labels)
			if err != nil {
				b.Fatal(err)
			}
			if err := loss.Backward(); err != nil {
				b.Fatal(err)
			}
			g := leaf.MustGrad(false)
			d := time.Since(t0)
			g.MustDrop()
			loss.MustDrop()
			s.drop()
			leaf.MustDrop()
			return d
		}
		for _, chunk := range []int{0, 2048} {
			b.Run(fmt.Sprintf("%s/chunk=%d", sh.name, chunk), func(b *testing.B) {
				var tl, tf time.Duration
				for b.Loop() {
					tl += logits()
					t0 := time.Now()
					sum, grad, err := lossAndGrad(x, labels, src, nil, chunk)
					if err != nil {
						b.Fatal(err)
					}
					tf += time.Since(t0)
					sum.MustDrop()
					grad.MustDrop()
				}
				b.ReportMetric(float64(tl)/1e6/float64(b.N), "logits-ms/op")
				b.ReportMetric(float64(tf)/1e6/float64(b.N), "fused-ms/op")
				b.ReportMetric(float64(tf)/float64(tl), "fused/logits")
			})
		}
		x.MustDrop()
		w.MustDrop()
		labels.MustDrop()
	}
}
