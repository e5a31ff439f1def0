// cpu_alloc.cpp: a caching CPU allocator for libtorch (c10::SetCPUAllocator).
//
// Why: a φ step at d = 4096 makes 64 MiB outputs and gradients. glibc serves
// blocks that large with a fresh mmap and gives them back with munmap on free,
// so every step page-faults all of it again (the kernel zeroes each page). Here
// a freed block of at least kMinCached bytes stays mapped in a cache and the
// next request of about the same size takes it back without a fault. Blocks
// from kMinCached (64 KiB) up go through the cache rather than glibc's arenas,
// which keep freed chunks of that size resident and scattered: on a small
// Llama's training step glibc held 100–140 MiB free per process that way.
//
// The rules:
//   - requests below kMinCached (64 KiB) go to libtorch's default CPU
//     allocator (its alignment, profiling and deleter), counted on the way;
//   - larger ones are rounded up to kSmallRound (64 KiB) below kLarge (1 MiB)
//     and to an eighth of their power of two from there (class_size), so that
//     the shapes of one step and the next land in the same size class while a
//     block wastes at most an eighth, and mapped with mmap (page-aligned, hence
//     64-byte aligned as libtorch requires);
//   - a request takes the smallest cached block that fits and wastes at most
//     an eighth of the rounded size; otherwise it maps a new block (a miss);
//   - a freed block joins the cache unless it alone exceeds the bound; then the
//     oldest cached blocks are unmapped until the cached bytes fit the bound;
//   - a failed mmap empties the cache and tries once more before throwing;
//   - blocks are handed out as they were left: never zeroed (libtorch does not
//     assume zeroed memory; fresh mappings happen to be zero).
// The allocator also counts the bytes live tensors hold (large blocks as
// mapped, small ones as malloc_usable_size reports them) and their peak: the
// CPU's counterpart of a GPU allocator's "max memory allocated".
// One mutex guards the maps and counters; mmap and munmap run outside it.
// Tensors are freed from Go finalizers and libtorch's threads alike.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cpu_alloc.h"
#include "message.h"

namespace phiop {
namespace {

constexpr size_t kMiB = size_t(1) << 20;
constexpr size_t kMinCached = 64 * 1024;  // smaller requests: libtorch's default allocator
constexpr size_t kSmallRound = 64 * 1024; // size classes below kLarge
constexpr size_t kLarge = kMiB;
constexpr int kClassesPerDoubling = 8;  // size classes from kLarge on

// class_size is the block size a request of n >= kMinCached bytes gets: a multiple
// of kSmallRound below kLarge, and from kLarge on a multiple of an eighth of the
// power of two at or below n (1 MiB + 4 B: 1.125 MiB; 2.75 MiB: 2.75 MiB; 64 MiB:
// 64 MiB), so a block wastes at most 1/8 of its request. Every class is a multiple
// of the page size.
size_t class_size(size_t n) {
  size_t round = kSmallRound;
  if (n >= kLarge) {
    round = (size_t(1) << (63 - __builtin_clzll(static_cast<unsigned long long>(n)))) /
            kClassesPerDoubling;
  }
  return (n + round - 1) / round * round;
}

using Block = std::pair<void*, size_t>;  // mapping and its (rounded) length

void unmap_all(const std::vector<Block>& blocks) {
  for (const Block& b : blocks) munmap(b.first, b.second);
}

class CachingCPUAllocator final : public c10::Allocator {
 public:
  // libtorch before 2.3 declares allocate const, later versions non-const;
  // both overloads are defined so that the class builds against either (the
  // one the installed libtorch declares is the virtual override).
  c10::DataPtr allocate(size_t n) const { return allocate_impl(n); }
  c10::DataPtr allocate(size_t n) { return allocate_impl(n); }

  // libtorch 2.x's Allocator::copy_data (pure virtual there, absent in 1.13).
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count > 0) std::memcpy(dest, src, count);
  }

  // Every large DataPtr has context == data, so the raw interface works: the
  // deleter looks the pointer up and hands unknown ones (raw_allocate's small
  // blocks) to the default allocator's deleter.
  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }

  static void Delete(void* ptr);

  void set_limit(size_t limit) {
    std::vector<Block> victims;
    {
      std::lock_guard<std::mutex> lock(mu_);
      limit_ = limit;
      evict_locked(&victims);
    }
    unmap_all(victims);
  }

  void stats(phiop_alloc_stats* out) const {
    std::lock_guard<std::mutex> lock(mu_);
    *out = stats_;
    out->small_allocs = small_.load(std::memory_order_relaxed);
    out->small_in_use_bytes = small_bytes_.load(std::memory_order_relaxed);
    out->peak_tensor_bytes = peak_tensor_.load(std::memory_order_relaxed);
    out->limit_bytes = limit_;
    out->installed = c10::GetCPUAllocator() == this ? 1 : 0;
  }

  void reset_peaks() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_bytes = stats_.in_use_bytes + stats_.cached_bytes;
    stats_.peak_cached_bytes = stats_.cached_bytes;
    peak_tensor_.store(tensor_bytes_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }

  void release_cached() {
    std::vector<Block> victims;
    {
      std::lock_guard<std::mutex> lock(mu_);
      victims.assign(lru_.begin(), lru_.end());
      lru_.clear();
      by_size_.clear();
      stats_.cached_bytes = 0;
    }
    unmap_all(victims);
  }

 private:
  c10::DataPtr allocate_impl(size_t n) const {
    // const only for libtorch 1.13's signature; the cache is the state.
    return const_cast<CachingCPUAllocator*>(this)->take(n);
  }

  c10::DataPtr take(size_t n) {
    if (n < kMinCached) {
      small_.fetch_add(1, std::memory_order_relaxed);
      c10::DataPtr d = c10::GetDefaultCPUAllocator()->allocate(n);
      void* p = d.get();
      if (p == nullptr) return d;
      // The block comes back through Delete, which counts it out and hands it to
      // the default allocator's raw deleter, the one its DataPtr carried (the
      // default allocator's context is its data). A default allocator that is
      // not of that kind keeps its blocks, uncounted.
      if (d.get_context() != p || d.get_deleter() != c10::GetDefaultCPUAllocator()->raw_deleter()) {
        return d;
      }
      d.release_context();
      const size_t u = malloc_usable_size(p);
      small_bytes_.fetch_add(u, std::memory_order_relaxed);
      count_tensor_bytes(u);
      return {p, p, &Delete, c10::Device(c10::DeviceType::CPU)};
    }
    const size_t size = class_size(n);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = by_size_.lower_bound(size);
      if (it != by_size_.end() && it->first <= size + size / 8) {
        const Block b = *it->second;
        lru_.erase(it->second);
        by_size_.erase(it);
        stats_.cached_bytes -= b.second;
        stats_.in_use_bytes += b.second;
        ++stats_.hits;
        live_[b.first] = b.second;
        count_tensor_bytes(b.second);
        return {b.first, b.first, &Delete, c10::Device(c10::DeviceType::CPU)};
      }
      ++stats_.misses;
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      release_cached();
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (p == MAP_FAILED) {
      const int err = errno;
      TORCH_CHECK(false, "phiop caching CPU allocator: cannot map ", size, " bytes for a ", n,
                  "-byte tensor: ", std::strerror(err));
    }
    std::lock_guard<std::mutex> lock(mu_);
    live_[p] = size;
    stats_.in_use_bytes += size;
    count_tensor_bytes(size);
    stats_.peak_bytes = std::max(stats_.peak_bytes,
                                 (unsigned long long)(stats_.in_use_bytes + stats_.cached_bytes));
    return {p, p, &Delete, c10::Device(c10::DeviceType::CPU)};
  }

  // give takes back a block this allocator mapped; false if ptr is not one.
  bool give(void* ptr) {
    std::vector<Block> victims;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(ptr);
      if (it == live_.end()) return false;
      const Block b{ptr, it->second};
      live_.erase(it);
      stats_.in_use_bytes -= b.second;
      tensor_bytes_.fetch_sub(b.second, std::memory_order_relaxed);
      if (b.second > limit_) {
        victims.push_back(b);
      } else {
        lru_.push_back(b);
        by_size_.emplace(b.second, std::prev(lru_.end()));
        stats_.cached_bytes += b.second;
        evict_locked(&victims);
        stats_.peak_cached_bytes = std::max(stats_.peak_cached_bytes, stats_.cached_bytes);
      }
    }
    unmap_all(victims);
    return true;
  }

  // count_tensor_bytes adds n bytes to the live tensors' and raises the peak.
  void count_tensor_bytes(size_t n) {
    const unsigned long long now = tensor_bytes_.fetch_add(n, std::memory_order_relaxed) + n;
    unsigned long long peak = peak_tensor_.load(std::memory_order_relaxed);
    while (now > peak && !peak_tensor_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
  }

  // give_small counts out a small block on its way to the default allocator.
  void give_small(void* ptr) {
    const size_t u = malloc_usable_size(ptr);
    small_bytes_.fetch_sub(u, std::memory_order_relaxed);
    tensor_bytes_.fetch_sub(u, std::memory_order_relaxed);
  }

  // evict_locked moves the oldest cached blocks to *victims until the cached
  // bytes fit the bound. Holds mu_.
  void evict_locked(std::vector<Block>* victims) {
    while (stats_.cached_bytes > limit_ && !lru_.empty()) {
      const Block b = lru_.front();
      auto range = by_size_.equal_range(b.second);
      for (auto it = range.first; it != range.second; ++it) {
        if (it->second == lru_.begin()) {
          by_size_.erase(it);
          break;
        }
      }
      lru_.pop_front();
      stats_.cached_bytes -= b.second;
      ++stats_.evictions;
      victims->push_back(b);
    }
  }

  mutable std::mutex mu_;
  size_t limit_ = 0;
  std::list<Block> lru_;                                      // free blocks, oldest first
  std::multimap<size_t, std::list<Block>::iterator> by_size_;  // the same, by length
  std::unordered_map<void*, size_t> live_;                    // blocks owned by tensors
  phiop_alloc_stats stats_{};
  // Off the mutex: small requests are frequent.
  std::atomic<unsigned long long> small_{0};        // small requests so far
  std::atomic<unsigned long long> small_bytes_{0};  // usable bytes of live small blocks
  std::atomic<unsigned long long> tensor_bytes_{0}; // live large and small bytes
  std::atomic<unsigned long long> peak_tensor_{0};  // highest tensor_bytes_
};

// The allocator libtorch holds a pointer to: never destroyed, since tensors
// may be freed during static destruction.
CachingCPUAllocator& instance() {
  static CachingCPUAllocator* a = new CachingCPUAllocator();
  return *a;
}

void CachingCPUAllocator::Delete(void* ptr) {
  if (ptr == nullptr || instance().give(ptr)) return;
  instance().give_small(ptr);
  c10::DeleterFnPtr d = c10::GetDefaultCPUAllocator()->raw_deleter();
  if (d != nullptr) {
    d(ptr);
  } else {
    std::free(ptr);  // c10::alloc_cpu uses posix_memalign
  }
}

char* error_copy(const char* what) {
  return copy_message(std::string("phiop caching CPU allocator: ") + what);
}

}  // namespace
}  // namespace phiop

extern "C" {

char* phiop_alloc_install(unsigned long long limit_bytes) {
  try {
    phiop::CachingCPUAllocator& a = phiop::instance();
    a.set_limit(static_cast<size_t>(limit_bytes));
    if (c10::GetCPUAllocator() != &a) c10::SetCPUAllocator(&a);
    if (c10::GetCPUAllocator() != &a) {
      return phiop::error_copy("libtorch kept another CPU allocator (set with a higher priority)");
    }
    return nullptr;
  } catch (const std::exception& e) {
    return phiop::error_copy(e.what());
  }
}

void phiop_alloc_set_limit(unsigned long long limit_bytes) {
  phiop::instance().set_limit(static_cast<size_t>(limit_bytes));
}

void phiop_alloc_release_cached(void) { phiop::instance().release_cached(); }

void phiop_alloc_reset_peaks(void) { phiop::instance().reset_peaks(); }

void phiop_alloc_get_stats(phiop_alloc_stats* out) { phiop::instance().stats(out); }

unsigned long long phiop_alloc_phys_bytes(void) {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<unsigned long long>(pages) * static_cast<unsigned long long>(page);
}

}  // extern "C"
