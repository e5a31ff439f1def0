// phi_kernel.cu: CUDA kernels of the fused transfer function (raw pointers,
// no torch headers). Built into libphiop_cuda.a by `make -C phiop cuda` and
// linked only under the `cuda` build tag.
//
//   phi(x) = sum_k a_k f(s_k (x - g_k)),   s_k = c softplus(beta_k)
//
// Backward is deterministic: every block owns a fixed tile of elements, sums
// its per-k contributions through a fixed shuffle tree into its own slot of
// the workspace, and a second kernel adds the slots in block order.
#include <cuda_runtime.h>
#include <stdint.h>

#include "phi_kernel_cuda.h"

namespace {

constexpr int kThreads = 256;
constexpr int kPerThread = 8;
constexpr int64_t kTile = int64_t(kThreads) * kPerThread;  // elements per backward block
constexpr int kSinc = 0, kGaussian = 1;                    // 2: cubic B-spline
constexpr int kTaylorTerms = 11;

// Taylor coefficients of D(z) = sinc'(t) / t in z = t^2: (-1)^n pi^(2n) 2n / (2n+1)!,
// n = 1..11 (truncation below 1e-16 for |t| < 1/2); a float copy for float kernels.
#define PHIOP_TAYLOR_D \
    -3.2898681336964528, 3.246969701133414, -1.144510944732505, \
    0.20918278254123832, -0.023460810354558225, 0.001781145516372851, \
    -9.7662231263189277e-05, 4.0499478466192413e-06, -1.3148481279991983e-07, \
    3.4330769499642842e-09, -7.3658937770969394e-11
__constant__ double kTaylorD[kTaylorTerms] = {PHIOP_TAYLOR_D};
__constant__ float kTaylorDf[kTaylorTerms] = {PHIOP_TAYLOR_D};

__device__ __forceinline__ float taylor_d(int i, float) { return kTaylorDf[i]; }
__device__ __forceinline__ double taylor_d(int i, double) { return kTaylorD[i]; }

__device__ __forceinline__ void sincospi_(float t, float* s, float* c) { sincospif(t, s, c); }
__device__ __forceinline__ void sincospi_(double t, double* s, double* c) { sincospi(t, s, c); }
__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }

template <typename T>
__device__ __forceinline__ void eval(int basis, T t, T& f, T& fp) {
  const T pi = T(3.14159265358979323846);
  if (basis == kSinc) {
    const T a = fabs(t);
    T s, c;
    sincospi_(t, &s, &c);
    if (a < T(0.5)) {
      T d = taylor_d(kTaylorTerms - 1, t);
      const T z = t * t;
      for (int i = kTaylorTerms - 2; i >= 0; --i) d = d * z + taylor_d(i, t);
      f = t == T(0) ? T(1) : s / (pi * t);
      fp = t * d;
    } else {
      f = s / (pi * t);
      fp = (c - f) / t;
    }
  } else if (basis == kGaussian) {
    f = exp_(-t * t);
    fp = T(-2) * t * f;
  } else {
    const T a = fabs(t);
    const T w = a < T(2) ? T(2) - a : T(0);
    f = a < T(1) ? T(2.0 / 3.0) - a * a * (T(1) - T(0.5) * a) : w * w * w / T(6);
    const T d = a < T(1) ? a * (T(1.5) * a - T(2)) : T(-0.5) * w * w;
    fp = t < T(0) ? -d : d;
  }
}

// Dynamic shared memory holds the K-vectors; alignment for double.
template <typename T>
__device__ T* shared_consts() {
  extern __shared__ double shared_raw[];
  return reinterpret_cast<T*>(shared_raw);
}

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, int basis,
                               int K, const T* __restrict__ a, const T* __restrict__ s,
                               const T* __restrict__ g) {
  T* sh = shared_consts<T>();
  for (int k = threadIdx.x; k < K; k += blockDim.x) {
    sh[k] = a[k];
    sh[K + k] = s[k];
    sh[2 * K + k] = g[k];
  }
  __syncthreads();
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T xi = x[i];
    T acc = T(0);
    for (int k = 0; k < K; ++k) {
      T f, fp;
      eval<T>(basis, sh[K + k] * (xi - sh[2 * K + k]), f, fp);
      acc += sh[k] * f;
    }
    y[i] = acc;
  }
}

// block_sum adds v over the block in a fixed order (shuffle tree, then warp
// sums in warp order); the result is valid in thread 0.
__device__ double block_sum(double v, double* scratch) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0) {
    for (int w = 0; w < kThreads / 32; ++w) total += scratch[w];
  }
  __syncthreads();
  return total;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* __restrict__ x, const T* __restrict__ G, T* __restrict__ dx,
                    int64_t n, int basis, int K, const T* __restrict__ s,
                    const T* __restrict__ g, const T* __restrict__ as,
                    double* __restrict__ part_a, double* __restrict__ part_u) {
  T* sh = shared_consts<T>();
  for (int k = threadIdx.x; k < K; k += blockDim.x) {
    sh[k] = s[k];
    sh[K + k] = g[k];
    sh[2 * K + k] = as[k];
  }
  __shared__ double scratch_a[kThreads / 32];
  __shared__ double scratch_u[kThreads / 32];
  __syncthreads();

  const int64_t base = int64_t(blockIdx.x) * kTile + threadIdx.x;
  T xr[kPerThread], gr[kPerThread], dr[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t i = base + int64_t(j) * kThreads;
    const bool in = i < n;
    xr[j] = in ? x[i] : T(0);
    gr[j] = in ? G[i] : T(0);  // padding contributes G = 0
    dr[j] = T(0);
  }
  for (int k = 0; k < K; ++k) {
    const T sk = sh[k], gk = sh[K + k], ask = sh[2 * K + k];
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
// fixed stride, then a fixed tree combines the threads.
__global__ void __launch_bounds__(kThreads)
    reduce_kernel(const double* __restrict__ part_a, const double* __restrict__ part_u,
                  int64_t blocks, int K, double* __restrict__ da, double* __restrict__ du) {
  __shared__ double scratch_a[kThreads / 32];
  __shared__ double scratch_u[kThreads / 32];
  const int k = blockIdx.x;
  double sa = 0.0, su = 0.0;
  for (int64_t b = threadIdx.x; b < blocks; b += kThreads) {
    sa += part_a[b * K + k];
    su += part_u[b * K + k];
  }
  const double ta = block_sum(sa, scratch_a);
  const double tu = block_sum(su, scratch_u);
  if (threadIdx.x == 0) {
    da[k] = ta;
    du[k] = tu;
  }
}

int64_t backward_blocks(int64_t n) { return (n + kTile - 1) / kTile; }

template <typename T>
int launch_forward(const T* x, T* y, int64_t n, int basis, int K, const T* a, const T* s,
                   const T* g, void* stream) {
  if (n == 0) return 0;
  const int64_t want = (n + kThreads - 1) / kThreads;
  const int blocks = int(want < 65535 * 8 ? want : 65535 * 8);
  const size_t shared = size_t(3) * K * sizeof(T);
  forward_kernel<T><<<blocks, kThreads, shared, static_cast<cudaStream_t>(stream)>>>(
      x, y, n, basis, K, a, s, g);
  return int(cudaGetLastError());
}

template <typename T>
int launch_backward(const T* x, const T* G, T* dx, int64_t n, int basis, int K, const T* s,
                    const T* g, const T* as, double* workspace, double* da, double* du,
                    void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t blocks = backward_blocks(n);
  if (blocks == 0) {
    cudaMemsetAsync(da, 0, sizeof(double) * K, st);
    cudaMemsetAsync(du, 0, sizeof(double) * K, st);
    return int(cudaGetLastError());
  }
  double* part_a = workspace;
  double* part_u = workspace + blocks * K;
  const size_t shared = size_t(3) * K * sizeof(T);
  backward_kernel<T><<<unsigned(blocks), kThreads, shared, st>>>(x, G, dx, n, basis, K, s, g, as,
                                                                   part_a, part_u);
  int err = int(cudaGetLastError());
  if (err != 0) return err;
  reduce_kernel<<<K, kThreads, 0, st>>>(part_a, part_u, blocks, K, da, du);
  return int(cudaGetLastError());
}

}  // namespace

extern "C" {

int phiop_cuda_forward_f32(const float* x, float* y, int64_t n, int basis, int K, const float* a,
                           const float* s, const float* g, void* stream) {
  return launch_forward<float>(x, y, n, basis, K, a, s, g, stream);
}

int phiop_cuda_forward_f64(const double* x, double* y, int64_t n, int basis, int K,
                           const double* a, const double* s, const double* g, void* stream) {
  return launch_forward<double>(x, y, n, basis, K, a, s, g, stream);
}

int64_t phiop_cuda_backward_workspace(int64_t n, int K) { return 2 * backward_blocks(n) * K; }

int phiop_cuda_backward_f32(const float* x, const float* G, float* dx, int64_t n, int basis,
                            int K, const float* s, const float* g, const float* as,
                            double* workspace, double* da, double* du, void* stream) {
  return launch_backward<float>(x, G, dx, n, basis, K, s, g, as, workspace, da, du, stream);
}

int phiop_cuda_backward_f64(const double* x, const double* G, double* dx, int64_t n, int basis,
                            int K, const double* s, const double* g, const double* as,
                            double* workspace, double* da, double* du, void* stream) {
  return launch_backward<double>(x, G, dx, n, basis, K, s, g, as, workspace, da, du, stream);
}

const char* phiop_cuda_error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

}  // extern "C"
