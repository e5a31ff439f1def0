// phi_kernel.cu: CUDA kernels of the fused transfer function (raw pointers,
// no torch headers). Built into libphiop_cuda.a by `make -C phiop cuda` and
// linked only under the `cuda` build tag.
//
//   phi(x) = sum_k a_k f(s_k (x - g_k)) - [centred] phi_0 + [residual] x,
//   s_k = c softplus(beta_k)
//
// The variants (phiop/variant.go): phi_0 is the plain sum at x = 0, written by
// the same forward kernel on a one-element zero (so a centred phi is exactly 0
// where x is 0) and read by the main launch from device memory. Their backward
// terms need Sum G, which the backward kernel sums beside the per-k sums; the
// reduce kernel adds -f(t0_k) Sum G to da_k and g_k f'(t0_k) Sum G to du_k,
// t0_k = -s_k g_k, with f and f' in double.
//
// Backward is deterministic: every block owns a fixed tile of elements, sums
// its per-k contributions through a fixed shuffle tree into its own slot of
// the workspace, and a second kernel adds the slots in block order.
//
// Which GPUs: the Makefile's CUDA_ARCHS (default "80 90") embeds SASS for each
// listed architecture and PTX for the newest, which the driver compiles for
// any newer GPU at first launch.
#include <cuda_runtime.h>
#include <stdint.h>

#include "phi_kernel_cuda.h"

namespace {

constexpr int kThreads = 256;
constexpr int kPerThread = 8;
constexpr int64_t kTile = int64_t(kThreads) * kPerThread;  // elements per backward block

#include "phi_device.cuh"  // eval<T>, KVec/stage, block_sum, kSinc, kGaussian

// offset (nullable) points at phi_0; residual adds x after subtracting it.
template <typename T, bool kStaged>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, int basis,
                               int K, const T* __restrict__ a, const T* __restrict__ s,
                               const T* __restrict__ g, const T* __restrict__ offset,
                               int residual) {
  KVec<T, kStaged> ca, cs, cg;
  stage<T, kStaged>(K, a, s, g, ca, cs, cg);
  const T off = offset != nullptr ? *offset : T(0);
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T xi = x[i];
    T acc = T(0);
    for (int k = 0; k < K; ++k) {
      T f, fp;
      eval<T>(basis, cs[k] * (xi - cg[k]), f, fp);
      acc += ca[k] * f;
    }
    y[i] = residual ? (acc - off) + xi : acc - off;
  }
}

template <typename T, bool kStaged>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* __restrict__ x, const T* __restrict__ G, T* __restrict__ dx,
                    int64_t n, int basis, int K, const T* __restrict__ s,
                    const T* __restrict__ g, const T* __restrict__ as, int residual,
                    double* __restrict__ part_a, double* __restrict__ part_u,
                    double* __restrict__ part_g) {
  KVec<T, kStaged> cs, cg, cas;
  stage<T, kStaged>(K, s, g, as, cs, cg, cas);
  __shared__ double scratch_a[kThreads / 32];
  __shared__ double scratch_u[kThreads / 32];

  const int64_t base = int64_t(blockIdx.x) * kTile + threadIdx.x;
  T xr[kPerThread], gr[kPerThread], dr[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t i = base + int64_t(j) * kThreads;
    const bool in = i < n;
    xr[j] = in ? x[i] : T(0);
    gr[j] = in ? G[i] : T(0);  // padding contributes G = 0
    dr[j] = residual ? T(1) : T(0);  // the residual's identity
  }
  if (part_g != nullptr) {  // Sum G for the centred terms (uniform over the block)
    T sg = T(0);
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) sg += gr[j];
    const double tg = block_sum(double(sg), scratch_a);
    if (threadIdx.x == 0) part_g[blockIdx.x] = tg;
  }
  for (int k = 0; k < K; ++k) {
    const T sk = cs[k], gk = cg[k], ask = cas[k];
    T sa = T(0), su = T(0);
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const T u = xr[j] - gk;
      T f, fp;
      eval<T>(basis, sk * u, f, fp);
      dr[j] += ask * fp;
      sa += gr[j] * f;
      su += gr[j] * u * fp;
    }
    const double ta = block_sum(double(sa), scratch_a);
    const double tu = block_sum(double(su), scratch_u);
    if (threadIdx.x == 0) {
      part_a[int64_t(blockIdx.x) * K + k] = ta;
      part_u[int64_t(blockIdx.x) * K + k] = tu;
    }
  }
  if (dx != nullptr) {
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int64_t i = base + int64_t(j) * kThreads;
      if (i < n) dx[i] = gr[j] * dr[j];
    }
  }
}

// reduce_kernel: one block per k adds the block slots; each thread walks a
// fixed stride, then a fixed tree combines the threads. When centred (part_g
// not null) every block also adds the Sum G slots and applies the phi_0 terms
// at t0[k] (double), gd[k] being g_k in double.
__global__ void __launch_bounds__(kThreads)
    reduce_kernel(const double* __restrict__ part_a, const double* __restrict__ part_u,
                  const double* __restrict__ part_g, const double* __restrict__ t0,
                  const double* __restrict__ gd, int basis, int64_t blocks, int K,
                  double* __restrict__ da, double* __restrict__ du) {
  __shared__ double scratch_a[kThreads / 32];
  __shared__ double scratch_u[kThreads / 32];
  const int k = blockIdx.x;
  double sa = 0.0, su = 0.0, sg = 0.0;
  for (int64_t b = threadIdx.x; b < blocks; b += kThreads) {
    sa += part_a[b * K + k];
    su += part_u[b * K + k];
    if (part_g != nullptr) sg += part_g[b];
  }
  const double ta = block_sum(sa, scratch_a);
  const double tu = block_sum(su, scratch_u);
  const double tg = part_g != nullptr ? block_sum(sg, scratch_a) : 0.0;
  if (threadIdx.x == 0) {
    if (part_g != nullptr) {
      double f0, fp0;
      eval<double>(basis, t0[k], f0, fp0);
      da[k] = ta - f0 * tg;
      du[k] = tu + gd[k] * fp0 * tg;
    } else {
      da[k] = ta;
      du[k] = tu;
    }
  }
}

int64_t backward_blocks(int64_t n) { return (n + kTile - 1) / kTile; }

// consts_fit reports whether 3·K values of T fit the dynamic shared memory
// that kernel may use (cudaFuncAttributes::maxDynamicSharedSizeBytes).
int consts_fit(const void* kernel, int K, size_t elem, bool* fit) {
  cudaFuncAttributes attr;
  const cudaError_t err = cudaFuncGetAttributes(&attr, kernel);
  if (err != cudaSuccess) return int(err);
  *fit = size_t(3) * size_t(K) * elem <= size_t(attr.maxDynamicSharedSizeBytes);
  return 0;
}

template <typename T>
int launch_forward(const T* x, T* y, int64_t n, int basis, int K, const T* a, const T* s,
                   const T* g, const T* offset, int residual, void* stream) {
  if (n == 0) return 0;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t want = (n + kThreads - 1) / kThreads;
  const int blocks = int(want < 65535 * 8 ? want : 65535 * 8);
  bool fit = false;
  const int err = consts_fit(reinterpret_cast<const void*>(&forward_kernel<T, true>), K,
                             sizeof(T), &fit);
  if (err != 0) return err;
  if (fit) {
    forward_kernel<T, true><<<blocks, kThreads, size_t(3) * K * sizeof(T), st>>>(
        x, y, n, basis, K, a, s, g, offset, residual);
  } else {
    forward_kernel<T, false><<<blocks, kThreads, 0, st>>>(x, y, n, basis, K, a, s, g, offset,
                                                          residual);
  }
  return int(cudaGetLastError());
}

template <typename T>
int launch_backward(const T* x, const T* G, T* dx, int64_t n, int basis, int K, const T* s,
                    const T* g, const T* as, int residual, const double* t0, const double* gd,
                    double* workspace, double* da, double* du, void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t blocks = backward_blocks(n);
  if (blocks == 0) {
    cudaError_t err = cudaMemsetAsync(da, 0, sizeof(double) * K, st);
    if (err == cudaSuccess) err = cudaMemsetAsync(du, 0, sizeof(double) * K, st);
    return int(err);
  }
  double* part_a = workspace;
  double* part_u = workspace + blocks * K;
  double* part_g = t0 != nullptr ? workspace + 2 * blocks * K : nullptr;
  bool fit = false;
  int err = consts_fit(reinterpret_cast<const void*>(&backward_kernel<T, true>), K, sizeof(T),
                       &fit);
  if (err != 0) return err;
  if (fit) {
    backward_kernel<T, true><<<unsigned(blocks), kThreads, size_t(3) * K * sizeof(T), st>>>(
        x, G, dx, n, basis, K, s, g, as, residual, part_a, part_u, part_g);
  } else {
    backward_kernel<T, false><<<unsigned(blocks), kThreads, 0, st>>>(
        x, G, dx, n, basis, K, s, g, as, residual, part_a, part_u, part_g);
  }
  err = int(cudaGetLastError());
  if (err != 0) return err;
  reduce_kernel<<<K, kThreads, 0, st>>>(part_a, part_u, part_g, t0, gd, basis, blocks, K, da,
                                        du);
  return int(cudaGetLastError());
}

}  // namespace

extern "C" {

int phiop_cuda_forward_f32(const float* x, float* y, int64_t n, int basis, int K, const float* a,
                           const float* s, const float* g, const float* offset, int residual,
                           void* stream) {
  return launch_forward<float>(x, y, n, basis, K, a, s, g, offset, residual, stream);
}

int phiop_cuda_forward_f64(const double* x, double* y, int64_t n, int basis, int K,
                           const double* a, const double* s, const double* g,
                           const double* offset, int residual, void* stream) {
  return launch_forward<double>(x, y, n, basis, K, a, s, g, offset, residual, stream);
}

int64_t phiop_cuda_backward_workspace(int64_t n, int K) {
  return 2 * backward_blocks(n) * K + backward_blocks(n);
}

int phiop_cuda_backward_f32(const float* x, const float* G, float* dx, int64_t n, int basis,
                            int K, const float* s, const float* g, const float* as, int residual,
                            const double* t0, const double* gd, double* workspace, double* da,
                            double* du, void* stream) {
  return launch_backward<float>(x, G, dx, n, basis, K, s, g, as, residual, t0, gd, workspace, da,
                                du, stream);
}

int phiop_cuda_backward_f64(const double* x, const double* G, double* dx, int64_t n, int basis,
                            int K, const double* s, const double* g, const double* as,
                            int residual, const double* t0, const double* gd, double* workspace,
                            double* da, double* du, void* stream) {
  return launch_backward<double>(x, G, dx, n, basis, K, s, g, as, residual, t0, gd, workspace,
                                 da, du, stream);
}

const char* phiop_cuda_error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

}  // extern "C"
