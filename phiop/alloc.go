package phiop

// The caching CPU allocator (cpu_alloc.cpp) as seen from Go: installing it,
// its bound, its counters.

/*
#include "cpu_alloc.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CacheEnv names the environment variable that sets the bound on cached-but-free
// bytes of the caching CPU allocator, in MiB: unset or empty means
// DefaultCacheLimit, 0 leaves libtorch's own allocator in place.
const CacheEnv = "LRTRAIN_CPU_CACHE_MB"

// ErrCacheEnv reports an unusable LRTRAIN_CPU_CACHE_MB.
var ErrCacheEnv = errors.New("phiop: " + CacheEnv + " must be a whole number of MiB ≥ 0")

// defaultCacheCap is the default bound on machines with 8 GiB or more.
const defaultCacheCap = 1 << 30

// DefaultCacheLimit is the default bound on cached-but-free bytes: 1 GiB, or an
// eighth of the physical memory where that is less.
func DefaultCacheLimit() int64 {
	limit := int64(defaultCacheCap)
	if phys := int64(C.phiop_alloc_phys_bytes()); phys > 0 {
		limit = min(limit, phys/8)
	}
	return limit
}

// AllocStats is a snapshot of the caching allocator's counters. Bytes are of
// whole blocks (requests of 64 KiB or more, rounded up to 64 KiB below 1 MiB
// and to an eighth of their power of two from there); smaller requests go to libtorch's default
// allocator, and what they hold is counted as SmallInUseBytes.
type AllocStats struct {
	Installed   bool  // libtorch's CPU allocator is the caching one
	Hits        int64 // large requests served from the cache
	Misses      int64 // large requests that mapped a new block
	Evictions   int64 // cached blocks unmapped to stay within the bound
	SmallAllocs int64 // requests below 64 KiB, passed to the default allocator
	CachedBytes int64 // free blocks held in the cache
	InUseBytes  int64 // large blocks owned by live tensors
	PeakBytes   int64 // highest InUseBytes + CachedBytes so far
	PeakCached  int64 // highest CachedBytes so far
	LimitBytes  int64 // the bound on CachedBytes

	// SmallInUseBytes is what the small blocks of live tensors hold (as
	// malloc_usable_size reports it); PeakTensorBytes the highest InUseBytes +
	// SmallInUseBytes so far: the peak of what live tensors held, as a GPU
	// allocator's "max memory allocated" is.
	SmallInUseBytes int64
	PeakTensorBytes int64
}

// String is a one-line summary for logs.
func (s AllocStats) String() string {
	const mib = 1 << 20
	return fmt.Sprintf("cpu cache: installed %t, %d hits, %d misses, %d evictions, %d small; "+
		"cached %.0f MiB (limit %.0f), in use %.0f MiB + %.0f MiB small, peak %.0f MiB mapped, %.0f MiB in tensors",
		s.Installed, s.Hits, s.Misses, s.Evictions, s.SmallAllocs,
		float64(s.CachedBytes)/mib, float64(s.LimitBytes)/mib, float64(s.InUseBytes)/mib,
		float64(s.SmallInUseBytes)/mib, float64(s.PeakBytes)/mib, float64(s.PeakTensorBytes)/mib)
}

// InstallCachingAllocator makes the caching allocator libtorch's CPU allocator
// for the rest of the process (tensors allocated before keep their own
// deleters) and bounds its cached-but-free bytes by limitBytes; 0 installs it
// caching nothing. Calling it again only changes the bound.
//
// Blocks of 64 KiB or more are rounded up to 64 KiB (below 1 MiB) or to an eighth
// of their power of two (1 MiB + 1 B: 1.125 MiB; at most 1/8 wasted) and
// kept mapped when their tensor is freed, so that the next step's tensors of the same shapes reuse
// them instead of page-faulting fresh memory; when the cache would exceed the
// bound, the oldest cached blocks are returned to the system.
func InstallCachingAllocator(limitBytes int64) error {
	if limitBytes < 0 {
		return fmt.Errorf("phiop: caching allocator bound %d bytes is negative", limitBytes)
	}
	return takeError(C.phiop_alloc_install(C.ulonglong(limitBytes)))
}

// InstallCachingAllocatorFromEnv installs the caching allocator with the bound
// from LRTRAIN_CPU_CACHE_MB (DefaultCacheLimit when unset) and returns that
// bound. With 0 it installs nothing, and where the allocator is already
// installed it stops caching. The commands that compute call it at start.
func InstallCachingAllocatorFromEnv() (int64, error) {
	limit, err := parseCacheEnv(os.Getenv(CacheEnv))
	if err != nil {
		return 0, err
	}
	if limit == 0 {
		SetCacheLimit(0)
		return 0, nil
	}
	return limit, InstallCachingAllocator(limit)
}

// parseCacheEnv turns the value of LRTRAIN_CPU_CACHE_MB into bytes.
func parseCacheEnv(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return DefaultCacheLimit(), nil
	}
	mib, err := strconv.ParseInt(v, 10, 64)
	if err != nil || mib < 0 || mib > 1<<40 {
		return 0, fmt.Errorf("%w, got %q", ErrCacheEnv, v)
	}
	return mib << 20, nil
}

// SetCacheLimit changes the bound on cached-but-free bytes, returning the
// oldest cached blocks that no longer fit to the system; 0 caches nothing
// (every large block is unmapped when its tensor is freed). Without
// InstallCachingAllocator it only sets the bound a later install would replace.
func SetCacheLimit(limitBytes int64) {
	C.phiop_alloc_set_limit(C.ulonglong(max(limitBytes, 0)))
}

// ReleaseCachedBlocks returns every cached block to the system; the bound
// stays as it is.
func ReleaseCachedBlocks() { C.phiop_alloc_release_cached() }

// ResetAllocPeaks sets PeakBytes, PeakCached and PeakTensorBytes to the current values, so
// that a later snapshot reports the peaks since this call.
func ResetAllocPeaks() { C.phiop_alloc_reset_peaks() }

// CachingAllocatorStats reads the allocator's counters.
func CachingAllocatorStats() AllocStats {
	var c C.phiop_alloc_stats
	C.phiop_alloc_get_stats(&c)
	return AllocStats{
		Installed:   c.installed != 0,
		Hits:        int64(c.hits),
		Misses:      int64(c.misses),
		Evictions:   int64(c.evictions),
		SmallAllocs: int64(c.small_allocs),
		CachedBytes: int64(c.cached_bytes),
		InUseBytes:  int64(c.in_use_bytes),
		PeakBytes:   int64(c.peak_bytes),
		PeakCached:  int64(c.peak_cached_bytes),
		LimitBytes:  int64(c.limit_bytes),

		SmallInUseBytes: int64(c.small_in_use_bytes),
		PeakTensorBytes: int64(c.peak_tensor_bytes),
	}
}
