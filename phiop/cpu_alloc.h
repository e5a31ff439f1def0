/* cpu_alloc.h: the C interface between Go (alloc.go) and the caching CPU
 * allocator (cpu_alloc.cpp) that phiop installs into libtorch.
 *
 * Blocks of at least 64 KiB are rounded up to 64 KiB (below 1 MiB) or 2 MiB,
 * mapped with mmap and kept in a cache when freed, up to a bound on
 * cached-but-free bytes; smaller requests go to libtorch's default CPU
 * allocator, counted.
 */
#ifndef PHIOP_CPU_ALLOC_H
#define PHIOP_CPU_ALLOC_H

#ifdef __cplusplus
extern "C" {
#endif

/* phiop_alloc_stats is a snapshot of the allocator's counters. Byte counts
 * are of rounded (mapped) blocks, and of small ones as malloc reports them. */
typedef struct {
  unsigned long long hits;         /* cached-size requests served from the cache */
  unsigned long long misses;       /* large requests that mapped a new block */
  unsigned long long evictions;    /* cached blocks unmapped to respect the bound */
  unsigned long long small_allocs; /* requests passed to libtorch's default allocator */
  unsigned long long cached_bytes; /* free blocks held in the cache now */
  unsigned long long in_use_bytes; /* large blocks owned by live tensors now */
  unsigned long long peak_bytes;   /* highest in_use_bytes + cached_bytes seen */
  unsigned long long peak_cached_bytes; /* highest cached_bytes seen */
  unsigned long long limit_bytes;  /* the bound on cached_bytes */
  unsigned long long small_in_use_bytes; /* usable bytes of small blocks owned by live tensors now */
  unsigned long long peak_tensor_bytes;  /* highest in_use_bytes + small_in_use_bytes seen */
  int installed;                   /* 1 when libtorch's CPU allocator is this one */
} phiop_alloc_stats;

/* phiop_alloc_install makes the caching allocator libtorch's CPU allocator
 * (c10::SetCPUAllocator; once per process, later calls only set the bound)
 * and sets the bound on cached-but-free bytes. Returns NULL or a malloc'd
 * error message. */
char* phiop_alloc_install(unsigned long long limit_bytes);

/* phiop_alloc_set_limit changes the bound, unmapping the oldest cached
 * blocks that no longer fit; 0 caches nothing. */
void phiop_alloc_set_limit(unsigned long long limit_bytes);

/* phiop_alloc_release_cached unmaps every cached block. */
void phiop_alloc_release_cached(void);

/* phiop_alloc_reset_peaks sets the peaks to the current values. */
void phiop_alloc_reset_peaks(void);

/* phiop_alloc_get_stats fills *out with the current counters. */
void phiop_alloc_get_stats(phiop_alloc_stats* out);

/* phiop_alloc_phys_bytes is the machine's physical memory (0 if unknown). */
unsigned long long phiop_alloc_phys_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* PHIOP_CPU_ALLOC_H */
