package phiop

// Benchmarks (make -C phiop bench, or from the repository root:
//   go test ./phiop/ -run '^$' -bench . -benchtime 3x
// ). They set libtorch to all cores and install the caching CPU allocator
// as train.Run does; LRTRAIN_CPU_CACHE_MB=0 measures libtorch's own. Naive at 4096² runs only with
// PHIOP_BENCH_NAIVE_4096=1: its broadcast intermediates need ~34 GiB.

import (
	"github.com/lrtrain/lrtrain/adapter"

	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

const benchK = 50

// naivePeakTensors is Naive's measured peak memory (BenchmarkPhi/naive/d=1024:
// 2209 MiB) in units of one (…,K) float32 tensor (200 MiB at 1024², K = 50):
// what autograd keeps (u, t, sinc t) plus the backward temporaries.
const naivePeakTensors = 11

// procStatus reads a "kB" field of /proc/self/status in bytes (0 if absent).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// peakTracker measures the peak RSS above the current RSS: writing 5 to
// /proc/self/clear_refs resets VmHWM (Linux ≥ 4.0).
type peakTracker struct{ base int64 }

func startPeak() peakTracker {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return peakTracker{base: procStatus("VmRSS")}
}

func (p peakTracker) mib() float64 { return float64(procStatus("VmHWM")-p.base) / (1 << 20) }

func benchSetup(b *testing.B) {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	SetNumThreads(runtime.NumCPU())
	// The caching CPU allocator, as the commands that train install it.
	if _, err := InstallCachingAllocatorFromEnv(); err != nil {
		b.Fatal(err)
	}
}

// benchInputs returns a d×d float32 M requiring grad and K = 50 sinc parameters.
func benchInputs(b *testing.B, d int64) (m, a, beta, g *ts.Tensor) {
	m = ts.MustRandn([]int64{d, d}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)
	b.Cleanup(func() { m.MustDrop() })
	p := phiParams{a: make([]float64, benchK), beta: make([]float64, benchK), g: make([]float64, benchK), basis: adapter.Sinc, scale: 1}
	for k := range benchK {
		p.a[k], p.beta[k], p.g[k] = 0.01*float64(k%7-3), betaForB(1), -3+6*float64(k)/(benchK-1)
	}
	a, beta, g = p.tensors(b, gotch.Float)
	return m, a, beta, g
}

// phiStep runs φ forward and backward (L = Σ φ(M)) and frees everything it made.
func phiStep(b *testing.B, fn phiFunc, m, a, beta, g *ts.Tensor) (fwd, bwd time.Duration) {
	t0 := time.Now()
	y, err := fn(m, a, beta, g, adapter.Sinc, 1)
	if err != nil {
		b.Fatal(err)
	}
	loss := y.MustSum(gotch.Float, false)
	t1 := time.Now()
	if err := loss.Backward(); err != nil {
		b.Fatal(err)
	}
	t2 := time.Now()
	loss.MustDrop()
	y.MustDrop()
	for _, x := range []*ts.Tensor{m, a, beta} {
		x.ZeroGrad()
	}
	return t1.Sub(t0), t2.Sub(t1)
}

// ktermStep is phiStep with the tabulated path forbidden for forward and backward.
func ktermStep(b *testing.B, m, a, beta, g *ts.Tensor) (fwd, bwd time.Duration) {
	prev := SetTabulated(false)
	defer SetTabulated(prev)
	return phiStep(b, Apply, m, a, beta, g)
}

// BenchmarkPhi: φ forward+backward on a d×d float32 M, K = 50: the fused op as
// Apply runs it (tabulated at these sizes), its K-term kernels, and naive ops.
func BenchmarkPhi(b *testing.B) {
	for _, d := range []int64{1024, 4096} {
		for _, impl := range []struct {
			name string
			fn   phiFunc
		}{{"fused", Apply}, {"fused-kterm", Apply}, {"naive", Naive}} {
			b.Run(fmt.Sprintf("%s/d=%d", impl.name, d), func(b *testing.B) {
				if impl.name == "naive" && d == 4096 && os.Getenv("PHIOP_BENCH_NAIVE_4096") != "1" {
					perK := float64(d*d*benchK*4) / (1 << 30)
					b.Skipf("naive at %d², K=%d: one (…,K) float32 tensor is %.2f GiB; naive's peak at 1024² "+
						"(2209 MiB measured) is 11 such tensors (200 MiB each there), so ≈ %.0f GiB here, "+
						"more than this machine's 24 GiB (PHIOP_BENCH_NAIVE_4096=1 runs it anyway)",
						d, benchK, perK, naivePeakTensors*perK)
				}
				benchSetup(b)
				if impl.name == "fused-kterm" { // forward and backward on the K-term kernels
					prev := SetTabulated(false)
					b.Cleanup(func() { SetTabulated(prev) })
				}
				m, a, beta, g := benchInputs(b, d)
				phiStep(b, impl.fn, m, a, beta, g) // warm-up: page faults, thread pool
				peak := startPeak()
				cache := CachingAllocatorStats()
				tabulated := TabulatedCalls()
				var fwd, bwd time.Duration
				best := time.Duration(1 << 62)
				b.ResetTimer()
				for range b.N {
					f, bw := phiStep(b, impl.fn, m, a, beta, g)
					fwd += f
					bwd += bw
					best = min(best, f+bw)
				}
				b.StopTimer()
				n := float64(b.N)
				b.ReportMetric(float64(d*d)*n/(fwd+bwd).Seconds(), "elem/s")
				b.ReportMetric(fwd.Seconds()*1e3/n, "fwd-ms")
				b.ReportMetric(bwd.Seconds()*1e3/n, "bwd-ms")
				// The fastest iteration: on a shared machine the least disturbed one.
				b.ReportMetric(best.Seconds()*1e3, "best-ms")
				b.ReportMetric(peak.mib(), "peak-MiB")
				// Blocks the caching allocator had to map (0 per op once warm).
				b.ReportMetric(float64(CachingAllocatorStats().Misses-cache.Misses)/n, "cache-misses/op")
				// Of the op's two passes per iteration, how many took the table.
				b.ReportMetric(float64(TabulatedCalls()-tabulated)/n, "tabulated-passes/op")
			})
		}
	}
}

// BenchmarkOverheadRatio (paper Appendix C): φ forward+backward for one d×d
// layer over the forward+backward matmul of that layer at 8192 tokens
// (x: 8192×d, y = x·Wᵀ; backward dx = G·W, dW = Gᵀ·x), float32, all measured
// in the same run: φ as Apply runs it (tabulated at these sizes) and, as
// kterm-*, with the tabulated path forbidden.
func BenchmarkOverheadRatio(b *testing.B) {
	const tokens = 8192
	for _, d := range []int64{1024, 4096} {
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			benchSetup(b)
			m, a, beta, g := benchInputs(b, d)
			x := ts.MustRandn([]int64{tokens, d}, gotch.Float, gotch.CPU)
			w := ts.MustRandn([]int64{d, d}, gotch.Float, gotch.CPU)
			grad := ts.MustRandn([]int64{tokens, d}, gotch.Float, gotch.CPU)
			b.Cleanup(func() { x.MustDrop(); w.MustDrop(); grad.MustDrop() })
			matmulStep := func() time.Duration {
				t0 := time.Now()
				wt := w.MustT(false)
				y := x.MustMm(wt, false) // forward
				dx := grad.MustMm(w, false)
				gt := grad.MustT(false)
				dw := gt.MustMm(x, true) // backward; true drops gt
				el := time.Since(t0)
				wt.MustDrop()
				y.MustDrop()
				dx.MustDrop()
				dw.MustDrop()
				return el
			}
			phiStep(b, Apply, m, a, beta, g)
			ktermStep(b, m, a, beta, g)
			matmulStep()
			var phi, kterm, mm time.Duration
			bestPhi, bestKterm, bestMM := time.Duration(1<<62), time.Duration(1<<62), time.Duration(1<<62)
			b.ResetTimer()
			for range b.N {
				f, bw := phiStep(b, Apply, m, a, beta, g)
				step := matmulStep()
				kf, kbw := ktermStep(b, m, a, beta, g)
				phi += f + bw
				kterm += kf + kbw
				mm += step
				bestPhi, bestKterm, bestMM = min(bestPhi, f+bw), min(bestKterm, kf+kbw), min(bestMM, step)
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(phi.Seconds()*1e3/n, "phi-ms")
			b.ReportMetric(kterm.Seconds()*1e3/n, "kterm-phi-ms")
			b.ReportMetric(mm.Seconds()*1e3/n, "matmul-ms")
			b.ReportMetric(100*phi.Seconds()/mm.Seconds(), "overhead-%")
			b.ReportMetric(100*kterm.Seconds()/mm.Seconds(), "kterm-overhead-%")
			// Fastest iteration of each: less sensitive to other load on the machine.
			b.ReportMetric(100*bestPhi.Seconds()/bestMM.Seconds(), "best-overhead-%")
			b.ReportMetric(100*bestKterm.Seconds()/bestMM.Seconds(), "kterm-best-overhead-%")
		})
	}
}
