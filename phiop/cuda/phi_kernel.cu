// phi_kernel.cu: CUDA kernels of the fused transfer function (raw pointers,
// no torch headers). Built into libphiop_cuda.a by `make -C phiop cuda` and
// linked only under the `cuda` build tag.
//
//   phi(x) = sum_k a_k f(s_k (x - g_k)),   s_k = c softplus(beta_k)
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

__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }

// Edge semantics copy the CPU kernels of the same dtype (phi_kernel_cpu.cpp for
// float, phi_kernel_f64.cpp for double), so a NaN, an infinity or a huge M
// gives the same NaN, infinity or finite value on either device:
//   - NaN stays NaN in f and f' for every basis;
//   - sinc, float: |t| beyond 2^22 (±inf included) is evaluated at 2^22, as the
//     CPU's range reduction does: f = 0, f' = ±2^-22;
//   - sinc, double: ±inf gives the limit f = 0, f' = 0;
//   - gaussian: f(±inf) = 0 and f'(±inf) = -2·t·f = NaN, on both devices;
//   - bspline: the piece is picked with a >= 1, false for NaN, so NaN takes the
//     inner piece and stays NaN (a < 1 would send it to the zero outer piece).
constexpr float kSincClampF = 4194304.0f;  // 2^22

__device__ __forceinline__ void sinc_eval(float t, float& f, float& fp) {
  const float pi = 3.14159265358979323846f;
  const float at = fabsf(t);
  const float a = at > kSincClampF ? kSincClampF : at;  // NaN stays NaN
  float s, c;
  sincospif(a, &s, &c);
  float fa;  // |f'| at a, signed below (sinc is even, f' odd)
  if (a < 0.5f) {
    float d = kTaylorDf[kTaylorTerms - 1];
    const float z = a * a;
    for (int i = kTaylorTerms - 2; i >= 0; --i) d = d * z + kTaylorDf[i];
    f = a == 0.0f ? 1.0f : s / (pi * a);
    fa = a * d;
  } else {
    f = s / (pi * a);
    fa = (c - f) / a;
  }
  fp = t < 0.0f ? -fa : fa;
}

__device__ __forceinline__ void sinc_eval(double t, double& f, double& fp) {
  const double pi = 3.14159265358979323846;
  if (isinf(t)) {
    f = 0.0;
    fp = 0.0;
    return;
  }
  double s, c;
  sincospi(t, &s, &c);
  if (fabs(t) < 0.5) {
    double d = kTaylorD[kTaylorTerms - 1];
    const double z = t * t;
    for (int i = kTaylorTerms - 2; i >= 0; --i) d = d * z + kTaylorD[i];
    f = t == 0.0 ? 1.0 : s / (pi * t);
    fp = t * d;
  } else {
    // As the CPU: through 1/(pi t), which is 0 where pi t overflows (f' = 0 there too).
    const double inv = 1.0 / (pi * t);
    f = s * inv;
    fp = (c - f) * pi * inv;
  }
}

template <typename T>
__device__ __forceinline__ void eval(int basis, T t, T& f, T& fp) {
  if (basis == kSinc) {
    sinc_eval(t, f, fp);
  } else if (basis == kGaussian) {
    f = exp_(-t * t);
    fp = T(-2) * t * f;
  } else {
    const T a = fabs(t);
    const T w = a < T(2) ? T(2) - a : T(0);
    f = a >= T(1) ? w * w * w / T(6) : T(2.0 / 3.0) - a * a * (T(1) - T(0.5) * a);
    const T d = a >= T(1) ? T(-0.5) * w * w : a * (T(1.5) * a - T(2));
    fp = t < T(0) ? -d : d;
  }
}

// The K-vectors (three of them) are staged in dynamic shared memory when they
// fit the kernel's limit (48 KiB less its static shared memory unless raised):
// float64 K > 2047 does not. Larger K reads them from global memory through
// the read-only cache instead; the arithmetic and its order are the same, so
// both paths give the same bits.
template <typename T>
__device__ T* shared_consts() {
  extern __shared__ double shared_raw[];  // double: alignment for either T
  return reinterpret_cast<T*>(shared_raw);
}

// KVec reads one K-vector from shared memory (kStaged) or global memory.
template <typename T, bool kStaged>
struct KVec {
  const T* p;
  __device__ __forceinline__ T operator[](int k) const {
    if constexpr (kStaged) {
      return p[k];
    } else {
      return __ldg(p + k);
    }
  }
};

// stage copies v0, v1, v2 into shared memory when kStaged and returns the
// three readers; every thread of the block must call it (it synchronises).
template <typename T, bool kStaged>
__device__ __forceinline__ void stage(int K, const T* v0, const T* v1, const T* v2,
                                      KVec<T, kStaged>& r0, KVec<T, kStaged>& r1,
                                      KVec<T, kStaged>& r2) {
  if (kStaged) {
    T* sh = shared_consts<T>();
    for (int k = threadIdx.x; k < K; k += blockDim.x) {
      sh[k] = v0[k];
      sh[K + k] = v1[k];
      sh[2 * K + k] = v2[k];
    }
    __syncthreads();
    r0.p = sh;
    r1.p = sh + K;
    r2.p = sh + 2 * K;
  } else {
    r0.p = v0;
    r1.p = v1;
    r2.p = v2;
  }
}

template <typename T, bool kStaged>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, int basis,
                               int K, const T* __restrict__ a, const T* __restrict__ s,
                               const T* __restrict__ g) {
  KVec<T, kStaged> ca, cs, cg;
  stage<T, kStaged>(K, a, s, g, ca, cs, cg);
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T xi = x[i];
    T acc = T(0);
    for (int k = 0; k < K; ++k) {
      T f, fp;
      eval<T>(basis, cs[k] * (xi - cg[k]), f, fp);
      acc += ca[k] * f;
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

template <typename T, bool kStaged>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* __restrict__ x, const T* __restrict__ G, T* __restrict__ dx,
                    int64_t n, int basis, int K, const T* __restrict__ s,
                    const T* __restrict__ g, const T* __restrict__ as,
                    double* __restrict__ part_a, double* __restrict__ part_u) {
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
    dr[j] = T(0);
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
                   const T* g, void* stream) {
  if (n == 0) return 0;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t want = (n + kThreads - 1) / kThreads;
  const int blocks = int(want < 65535 * 8 ? want : 65535 * 8);
  bool fit = false;
  const int err = consts_fit(reinterpret_cast<const void*>(&forward_kernel<T, true>), K,
                             sizeof(T), &fit);
  if (err != 0) return err;
  if (fit) {
    forward_kernel<T, true><<<blocks, kThreads, size_t(3) * K * sizeof(T), st>>>(x, y, n, basis,
                                                                                 K, a, s, g);
  } else {
    forward_kernel<T, false><<<blocks, kThreads, 0, st>>>(x, y, n, basis, K, a, s, g);
  }
  return int(cudaGetLastError());
}

template <typename T>
int launch_backward(const T* x, const T* G, T* dx, int64_t n, int basis, int K, const T* s,
                    const T* g, const T* as, double* workspace, double* da, double* du,
                    void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t blocks = backward_blocks(n);
  if (blocks == 0) {
    cudaError_t err = cudaMemsetAsync(da, 0, sizeof(double) * K, st);
    if (err == cudaSuccess) err = cudaMemsetAsync(du, 0, sizeof(double) * K, st);
    return int(err);
  }
  double* part_a = workspace;
  double* part_u = workspace + blocks * K;
  bool fit = false;
  int err = consts_fit(reinterpret_cast<const void*>(&backward_kernel<T, true>), K, sizeof(T),
                       &fit);
  if (err != 0) return err;
  if (fit) {
    backward_kernel<T, true><<<unsigned(blocks), kThreads, size_t(3) * K * sizeof(T), st>>>(
        x, G, dx, n, basis, K, s, g, as, part_a, part_u);
  } else {
    backward_kernel<T, false><<<unsigned(blocks), kThreads, 0, st>>>(x, G, dx, n, basis, K, s, g,
                                                                      as, part_a, part_u);
  }
  err = int(cudaGetLastError());
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
