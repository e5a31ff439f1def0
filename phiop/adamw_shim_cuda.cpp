// adamw_shim_cuda.cpp: CUDA tensor lists -> the one-launch kernel of
// cuda/adamw_kernel.cu. Compiled in every build; the body exists only with
// PHIOP_WITH_CUDA (build tag `cuda`, see cgo.go and the Makefile).
//
// A call packs the list (pack_adamw, the same tables the CPU op and the tests'
// host emulation walk) into one pinned host buffer, copies it to the device
// asynchronously on the current stream and launches the kernel once on that
// stream: one copy and one kernel per dtype/device group, whatever the number
// of tensors. Nothing waits for the device; the caching allocators keep both
// buffers alive until the stream has used them (libtorch records the pinned
// buffer's copy on the stream, and the device buffer returns to the current
// stream's pool, where later work is ordered after the kernel).
#include "adamw_shim.h"

#ifdef PHIOP_WITH_CUDA
#include <cstring>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda/adamw_kernel_cuda.h"
#include "cuda/phi_kernel_cuda.h"  // phiop_cuda_error_string
#endif

namespace phiop {

#ifndef PHIOP_WITH_CUDA

void cuda_adamw(const AdamWList&) { TORCH_CHECK(false, "phiop: built without CUDA support"); }

#else

namespace {

using LaunchFn = int (*)(const void*, const void*, int64_t, void*);

// launch packs the list for element type T and runs fn on the device copy.
template <typename T>
void launch(const AdamWList& l, LaunchFn fn) {
  const AdamWTables<T> t = pack_adamw<T>(l);
  if (t.chunks.empty()) return;  // only empty tensors: nothing to update
  const size_t slot_bytes = t.slots.size() * sizeof(adamw_dev::Slot<T>);
  const size_t chunk_at = (slot_bytes + 15) / 16 * 16;
  const size_t chunk_bytes = t.chunks.size() * sizeof(adamw_dev::Chunk);
  const int64_t total = static_cast<int64_t>(chunk_at + chunk_bytes);

  at::Tensor host =
      at::empty({total}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  uint8_t* h = host.data_ptr<uint8_t>();
  std::memcpy(h, t.slots.data(), slot_bytes);
  std::memcpy(h + chunk_at, t.chunks.data(), chunk_bytes);

  const at::Device device = l.p.front().device();
  const c10::cuda::CUDAGuard guard(device);
  const at::Tensor dev = host.to(device, at::kByte, /*non_blocking=*/true);
  const uint8_t* d = dev.data_ptr<uint8_t>();
  void* stream = static_cast<void*>(c10::cuda::getCurrentCUDAStream().stream());
  const int code = fn(d, d + chunk_at, static_cast<int64_t>(t.chunks.size()), stream);
  TORCH_CHECK(code == 0, "phiop: CUDA adamw launch failed: ", phiop_cuda_error_string(code));
}

}  // namespace

void cuda_adamw(const AdamWList& l) {
  if (l.p.empty()) return;
  if (l.p.front().scalar_type() == at::kFloat) {
    launch<float>(l, phiop_cuda_adamw_f32);
  } else {
    launch<double>(l, phiop_cuda_adamw_f64);
  }
}

#endif  // PHIOP_WITH_CUDA

}  // namespace phiop
