package phiop

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

const mib = 1 << 20

// withCache installs the caching allocator with the given bound and an empty
// cache and fresh peaks, and returns the counters to compare against. At cleanup the bound goes
// back to 0, so that the package's other tests (retained RSS in memory_test.go)
// see every large block unmapped when its tensor is freed.
func withCache(t *testing.T, limit int64) AllocStats {
	t.Helper()
	if err := InstallCachingAllocator(limit); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { SetCacheLimit(0) })
	ReleaseCachedBlocks()
	ResetAllocPeaks()
	s := CachingAllocatorStats()
	if !s.Installed || s.LimitBytes != limit || s.CachedBytes != 0 {
		t.Fatalf("after install: %v, want installed, limit %d, nothing cached", s, limit)
	}
	return s
}

// floats allocates an uninitialised float32 CPU tensor of n elements (through
// libtorch's CPU allocator) and returns it with its data address.
func floats(t *testing.T, n int64) (*ts.Tensor, uintptr) {
	t.Helper()
	x := ts.MustEmpty([]int64{n}, gotch.Float, gotch.CPU)
	return x, uintptr(x.MustDataPtr())
}

// Freeing a 64 MiB tensor and allocating one again takes the same block back:
// one miss (the first mapping), one hit, the same address.
func TestCacheReuse(t *testing.T) {
	lockThread(t)
	base := withCache(t, 1<<30)
	x, p1 := floats(t, 16*mib) // 64 MiB of float32
	x.MustDrop()
	s := CachingAllocatorStats()
	if s.CachedBytes != 64*mib || s.InUseBytes != base.InUseBytes {
		t.Errorf("after the first free: %v, want 64 MiB cached", s)
	}
	y, p2 := floats(t, 16*mib)
	y.MustDrop()
	s = CachingAllocatorStats()
	if d := s.Misses - base.Misses; d != 1 {
		t.Errorf("%d misses, want 1", d)
	}
	if d := s.Hits - base.Hits; d != 1 {
		t.Errorf("%d hits, want 1", d)
	}
	if p1 != p2 {
		t.Errorf("second tensor at %#x, want the first's block %#x", p2, p1)
	}
	// A slightly smaller request of the same class (4 MiB steps at 64 MiB) takes the block too;
	// one of half the size does not (it would waste more than an eighth).
	z, p3 := floats(t, 16*mib-1000)
	z.MustDrop()
	h, p4 := floats(t, 8*mib)
	h.MustDrop()
	if p3 != p1 || p4 == p1 {
		t.Errorf("64 MiB − 4000 B at %#x (want %#x), 32 MiB at %#x (want a new block)", p3, p1, p4)
	}
}

// Addresses handed to libtorch are 64-byte aligned, large and small alike.
func TestCacheAlignment(t *testing.T) {
	lockThread(t)
	withCache(t, 1<<30)
	for _, n := range []int64{1, 1000, mib/4 - 1, mib / 4, 3*mib + 5} {
		x, p := floats(t, n)
		x.MustDrop()
		if p%64 != 0 {
			t.Errorf("%d floats at %#x: not 64-byte aligned", n, p)
		}
	}
}

// With a bound of three 4 MiB blocks, freeing five evicts the two oldest; the
// three newest come back as hits, a fourth request maps anew, and a block
// larger than the whole bound is never cached.
func TestCacheBoundEvicts(t *testing.T) {
	lockThread(t)
	base := withCache(t, 12*mib)
	var ptrs []uintptr
	var xs []*ts.Tensor
	for range 5 {
		x, p := floats(t, mib) // 4 MiB, exactly a class size
		xs, ptrs = append(xs, x), append(ptrs, p)
	}
	for _, x := range xs {
		x.MustDrop()
	}
	s := CachingAllocatorStats()
	if s.CachedBytes != 12*mib || s.Evictions-base.Evictions != 2 || s.PeakCached > 12*mib {
		t.Fatalf("after freeing five 4 MiB blocks under a 12 MiB bound: %v, want 12 MiB cached, 2 evictions", s)
	}
	kept := map[uintptr]bool{ptrs[2]: true, ptrs[3]: true, ptrs[4]: true}
	xs = xs[:0]
	for i := range 4 {
		x, p := floats(t, mib)
		xs = append(xs, x)
		if i < 3 && !kept[p] {
			t.Errorf("request %d at %#x, want one of the three newest blocks %#x %#x %#x", i, p, ptrs[2], ptrs[3], ptrs[4])
		}
		delete(kept, p)
	}
	s = CachingAllocatorStats()
	if h, m := s.Hits-base.Hits, s.Misses-base.Misses; h != 3 || m != 6 {
		t.Errorf("%d hits, %d misses, want 3 and 6", h, m)
	}
	for _, x := range xs {
		x.MustDrop()
	}
	big, _ := floats(t, 4*mib) // 16 MiB > the bound
	before := CachingAllocatorStats().CachedBytes
	big.MustDrop()
	if s := CachingAllocatorStats(); s.CachedBytes != before || s.CachedBytes > 12*mib {
		t.Errorf("a 16 MiB block under a 12 MiB bound changed the cache: %d → %d bytes", before, s.CachedBytes)
	}
	// Lowering the bound evicts at once.
	SetCacheLimit(4 * mib)
	if s := CachingAllocatorStats(); s.CachedBytes > 4*mib {
		t.Errorf("bound lowered to 4 MiB, %d bytes still cached", s.CachedBytes)
	}
}

// A bound of 0 caches nothing: every large request maps a new block.
func TestCacheDisabled(t *testing.T) {
	lockThread(t)
	base := withCache(t, 0)
	for range 2 {
		x, _ := floats(t, 16*mib)
		x.MustDrop()
	}
	s := CachingAllocatorStats()
	if s.Hits != base.Hits || s.Misses-base.Misses != 2 || s.CachedBytes != 0 {
		t.Errorf("disabled: %v, want 2 new misses, no hits, nothing cached", s)
	}
	// LRTRAIN_CPU_CACHE_MB=0 stops an installed cache too.
	SetCacheLimit(1 << 30)
	t.Setenv(CacheEnv, "0")
	if limit, err := InstallCachingAllocatorFromEnv(); err != nil || limit != 0 {
		t.Fatalf("%s=0: limit %d, err %v; want 0, nil", CacheEnv, limit, err)
	}
	if s := CachingAllocatorStats(); s.LimitBytes != 0 {
		t.Errorf("%s=0 left a bound of %d bytes", CacheEnv, s.LimitBytes)
	}
}

func TestParseCacheEnv(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  bool
	}{{"", DefaultCacheLimit(), false}, {" 0 ", 0, false}, {"512", 512 * mib, false},
		{"-1", 0, true}, {"1.5", 0, true}, {"lots", 0, true}} {
		got, err := parseCacheEnv(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("parseCacheEnv(%q) = %d, %v; want %d, error %t", c.in, got, err, c.want, c.err)
		}
		if err != nil && !errors.Is(err, ErrCacheEnv) {
			t.Errorf("parseCacheEnv(%q): %v does not wrap ErrCacheEnv", c.in, err)
		}
	}
	if d := DefaultCacheLimit(); d <= 0 || d > 1<<30 {
		t.Errorf("DefaultCacheLimit() = %d, want in (0, 1 GiB]", d)
	}
}

// Several goroutines on their own OS threads allocate, fill and hand tensors to
// others that check and free them: no block is ever owned twice (every tensor
// still holds its own fill value when checked), the counters add up and every
// block comes back.
func TestCacheConcurrent(t *testing.T) {
	const workers, iters = 4, 30
	base := withCache(t, 64*mib)
	sizes := []int64{mib / 4, 3 * mib / 4, 5*mib/4 + 7} // 1, 3 and 5 MiB of float32
	type item struct {
		x    *ts.Tensor
		want float64
	}
	ch := make(chan item, workers)
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		wg.Add(2)
		go func() { // producer
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for i := range iters {
				v := float64(w*1000 + i)
				ch <- item{ts.MustFull([]int64{sizes[(w+i)%len(sizes)]}, ts.FloatScalar(v), gotch.Float, gotch.CPU), v}
			}
		}()
		go func() { // consumer: frees what another thread allocated
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for range iters {
				it := <-ch
				lo, hi := it.x.MustMin(false), it.x.MustMax(false)
				if a, b := lo.Float64Values()[0], hi.Float64Values()[0]; a != it.want || b != it.want {
					errs <- fmt.Errorf("tensor filled with %v holds values in [%v, %v]", it.want, a, b)
				}
				lo.MustDrop()
				hi.MustDrop()
				it.x.MustDrop()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := CachingAllocatorStats()
	if n := (s.Hits - base.Hits) + (s.Misses - base.Misses); n != workers*iters {
		t.Errorf("%d large requests counted, want %d", n, workers*iters)
	}
	if s.InUseBytes != base.InUseBytes || s.CachedBytes > 64*mib || s.PeakCached > 64*mib {
		t.Errorf("after all frees: %v, want in-use back to %d, cache within 64 MiB", s, base.InUseBytes)
	}
	if s.Hits == base.Hits {
		t.Errorf("no hits in %d requests of three sizes", workers*iters)
	}
}

// The allocator counts what live tensors hold, small blocks (malloc_usable_size)
// and large (as mapped) alike, and the peak of their sum.
func TestCacheCountsTensorBytes(t *testing.T) {
	lockThread(t)
	base := withCache(t, 1<<30)
	const small, n = 4096, 256 // 256 float32 tensors of 16 KiB: below the 64 KiB threshold
	xs := make([]*ts.Tensor, 0, n+1)
	for range n {
		x, _ := floats(t, small)
		xs = append(xs, x)
	}
	big, _ := floats(t, 16*mib) // 64 MiB
	xs = append(xs, big)
	s := CachingAllocatorStats()
	// Tensors an earlier test left to Go's finalizers may be freed meanwhile and
	// lower the small count; 1 MiB of slack covers such strays. malloc's usable
	// size exceeds a request by its alignment padding, under 4 KiB each.
	const slack = mib
	want := int64(n * small * 4)
	if d := s.SmallInUseBytes - base.SmallInUseBytes; d < want-slack || d > want+n*4096+slack {
		t.Errorf("small blocks in use grew by %d bytes, want %d to %d", d, want, want+n*4096)
	}
	if d := s.InUseBytes - base.InUseBytes; d != 64*mib {
		t.Errorf("large blocks in use grew by %d bytes, want 64 MiB", d)
	}
	if s.PeakTensorBytes < base.InUseBytes+base.SmallInUseBytes+64*mib+want-slack {
		t.Errorf("peak tensor bytes %d, want at least the %d held now", s.PeakTensorBytes, s.InUseBytes+s.SmallInUseBytes)
	}
	for _, x := range xs {
		x.MustDrop()
	}
	after := CachingAllocatorStats()
	if after.InUseBytes != base.InUseBytes || after.SmallInUseBytes > base.SmallInUseBytes+slack {
		t.Errorf("after the frees: %v, want in use back to %d + %d small", after, base.InUseBytes, base.SmallInUseBytes)
	}
	if after.PeakTensorBytes != s.PeakTensorBytes {
		t.Errorf("peak fell from %d to %d on free", s.PeakTensorBytes, after.PeakTensorBytes)
	}
	ResetAllocPeaks()
	if r := CachingAllocatorStats(); r.PeakTensorBytes > after.InUseBytes+after.SmallInUseBytes+slack {
		t.Errorf("after ResetAllocPeaks the peak is %d, want the %d in use", r.PeakTensorBytes, after.InUseBytes+after.SmallInUseBytes)
	}
}

// Requests from 64 KiB up go through the cache in 64 KiB classes (from 1 MiB on,
// eighths of the power of two at or below the request); smaller ones go to
// libtorch's default allocator.
func TestCacheSizeClasses(t *testing.T) {
	lockThread(t)
	base := withCache(t, 1<<30)
	x, p1 := floats(t, 40000) // 160,000 B: the 192 KiB class
	x.MustDrop()
	s := CachingAllocatorStats()
	if s.CachedBytes != 192*1024 || s.Misses-base.Misses != 1 || s.SmallAllocs != base.SmallAllocs {
		t.Errorf("after a 160,000-byte tensor: %v, want one miss and 192 KiB cached", s)
	}
	y, p2 := floats(t, 45000) // 180,000 B: the same class
	y.MustDrop()
	if s := CachingAllocatorStats(); p2 != p1 || s.Hits-base.Hits != 1 {
		t.Errorf("180,000 B at %#x after 160,000 B at %#x (%v): want the same block, one hit", p2, p1, s)
	}
	z, _ := floats(t, 16000-16) // 63,936 B: below 64 KiB
	z.MustDrop()
	if s := CachingAllocatorStats(); s.SmallAllocs-base.SmallAllocs != 1 || s.Misses-base.Misses != 1 {
		t.Errorf("a 63,936-byte tensor: %v, want it passed to the default allocator", s)
	}
	w, _ := floats(t, mib/4+1) // 1 MiB + 4 B: the 1.125 MiB class (eighths of 1 MiB)
	w.MustDrop()
	if s := CachingAllocatorStats(); s.CachedBytes != 192*1024+mib+mib/8 {
		t.Errorf("after 1 MiB + 4 B: %d bytes cached, want 192 KiB + 1.125 MiB", s.CachedBytes)
	}
	v, _ := floats(t, 1408*512) // 2.75 MiB, an up_proj's d_out×d_in: its own class (eighths of 2 MiB)
	v.MustDrop()
	if s := CachingAllocatorStats(); s.CachedBytes != 192*1024+mib+mib/8+2*mib+3*mib/4 {
		t.Errorf("after 2.75 MiB: %d bytes cached, want 192 KiB + 1.125 MiB + 2.75 MiB", s.CachedBytes)
	}
}
