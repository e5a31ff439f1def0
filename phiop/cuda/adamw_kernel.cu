// adamw_kernel.cu: the multi-tensor AdamW step as one CUDA launch over a tensor
// list (raw pointers, no torch headers). Built into libphiop_cuda.a by
// `make -C phiop cuda` beside phi_kernel.cu and linked only under the `cuda`
// build tag; the shim (adamw_shim_cuda.cpp) packs the list and its chunk table
// into one device buffer with a single host-to-device copy, then launches once.
//
// The arithmetic lives in adamw_device.cuh, shared with the CPU op and with the
// host emulation the tests run: block b walks chunks b, b + gridDim.x, ...; the
// block's threads stride through a chunk, so every element is updated by exactly
// one thread and the result does not depend on the grid size. nvcc may contract
// a·b + c into one FMA here, where the CPU rounds twice; the tests' float32 bound
// (phiop/adamw_test.go) admits either.
#include <cuda_runtime.h>
#include <stdint.h>

#include "adamw_device.cuh"
#include "adamw_kernel_cuda.h"

namespace {

using adamw_dev::Chunk;
using adamw_dev::Slot;

// More blocks than this only queue behind the first wave; each block loops.
constexpr int64_t kMaxBlocks = 65535;

template <typename T>
__global__ void __launch_bounds__(adamw_dev::kThreads)
    adamw_kernel(const Slot<T>* __restrict__ slots, const Chunk* __restrict__ chunks,
                 int64_t nchunks) {
  for (int64_t c = blockIdx.x; c < nchunks; c += gridDim.x) {
    adamw_dev::run_chunk<T>(slots, chunks[c], threadIdx.x, blockDim.x);
  }
}

template <typename T>
int launch_adamw(const void* slots, const void* chunks, int64_t nchunks, void* stream) {
  if (nchunks <= 0) return 0;
  const int64_t blocks = nchunks < kMaxBlocks ? nchunks : kMaxBlocks;
  adamw_kernel<T><<<unsigned(blocks), adamw_dev::kThreads, 0,
                    static_cast<cudaStream_t>(stream)>>>(
      static_cast<const Slot<T>*>(slots), static_cast<const Chunk*>(chunks), nchunks);
  return int(cudaGetLastError());
}

}  // namespace

extern "C" {

int phiop_cuda_adamw_f32(const void* slots, const void* chunks, int64_t nchunks, void* stream) {
  return launch_adamw<float>(slots, chunks, nchunks, stream);
}

int phiop_cuda_adamw_f64(const void* slots, const void* chunks, int64_t nchunks, void* stream) {
  return launch_adamw<double>(slots, chunks, nchunks, stream);
}

}  // extern "C"
