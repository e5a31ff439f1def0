package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// rssBytes reads VmRSS from /proc/self/status.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parse VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmRSS line")
	return 0
}

// retainedBytes is the memory that φ(M) holds on to (M side×side float32,
// requiring grad, so the autograd node and its saved tensors are alive): the
// RSS that dropping the result gives back. Counting the release rather than
// the growth during forward keeps unrelated allocations (Go's heap, libtorch's
// thread pool) out of the number; releases of blocks above glibc's mmap
// threshold reach the kernel at once.
func retainedBytes(t *testing.T, fn phiFunc, side int64, K int) int64 {
	t.Helper()
	m := ts.MustRandn([]int64{side, side}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)
	defer m.MustDrop()
	p := phiParams{a: make([]float64, K), beta: make([]float64, K), g: make([]float64, K), basis: adapter.Sinc, scale: 1}
	for k := range K {
		p.a[k], p.beta[k], p.g[k] = 0.5, 0.5, -3+6*float64(k)/float64(K-1)
	}
	a, beta, g := p.tensors(t, gotch.Float)
	y, err := fn(m, a, beta, g, adapter.Sinc, 1)
	if err != nil {
		t.Fatal(err)
	}
	held := rssBytes(t)
	y.MustDrop()
	return held - rssBytes(t)
}

// minRetained is the smallest of three measurements: RSS noise (the Go
// runtime or libtorch's pool releasing unrelated pages in the same window)
// only ever adds to the figure.
func minRetained(t *testing.T, fn phiFunc, side int64, K int) int64 {
	t.Helper()
	best := retainedBytes(t, fn, side, K)
	for range 2 {
		best = min(best, retainedBytes(t, fn, side, K))
	}
	return best
}

// The fused node keeps M and the K-vectors only: holding φ(M) costs the output
// and nothing that grows with K. The op-by-op Naive keeps (…, K)
// intermediates, which shows that the measurement sees retained memory.
// M is 3072² float32 (36 MiB): above glibc's largest mmap threshold (32 MiB),
// so the output is its own mapping, unmapped when dropped. The same holds for
// Naive's K=200 intermediates (50 MiB each).
func TestRetainedMemoryIndependentOfK(t *testing.T) {
	if testing.Short() {
		t.Skip("long numeric; runs without -short")
	}
	lockThread(t)
	const side = 3072
	const mib = 1 << 20
	out := int64(side * side * 4)
	fused5 := minRetained(t, Apply, side, 5)
	fused200 := minRetained(t, Apply, side, 200)
	t.Logf("fused, %d² float32: retained %.1f MiB at K=5, %.1f MiB at K=200 (output %.1f MiB)",
		side, float64(fused5)/mib, float64(fused200)/mib, float64(out)/mib)
	// Allow a few MiB of RSS noise; anything that grew with K would add
	// 36 MiB per K-sized float32 copy of M, ~7 GiB at K = 200. Only growth
	// with K is a failure: a smaller K=200 figure is noise (another
	// allocation released during the K=5 measurement).
	if d := fused200 - fused5; d > 4*mib {
		t.Errorf("fused: K=200 retains %.1f MiB more than K=5", float64(d)/mib)
	}
	if fused200 > out+4*mib || fused200 < out-4*mib {
		t.Errorf("fused: K=200 retains %.1f MiB, want the output's %.1f MiB", float64(fused200)/mib, float64(out)/mib)
	}

	const small = 256
	naive5 := retainedBytes(t, Naive, small, 5)
	naive200 := retainedBytes(t, Naive, small, 200)
	perK := int64(small * small * 200 * 4) // one (…, K) float32 tensor at K = 200
	t.Logf("naive, %d² float32: retained %.1f MiB at K=5, %.1f MiB at K=200 (one K-sized tensor %.1f MiB)",
		small, float64(naive5)/mib, float64(naive200)/mib, float64(perK)/mib)
	if naive200 < 2*perK {
		t.Errorf("naive: K=200 retains %.1f MiB, want at least two K-sized tensors (%.1f MiB)",
			float64(naive200)/mib, float64(2*perK)/mib)
	}
}
