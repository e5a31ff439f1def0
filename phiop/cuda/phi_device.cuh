// phi_device.cuh: device helpers of the CUDA kernels, included by phi_kernel.cu
// inside its anonymous namespace after kThreads: the basis functions f and f'
// (sinc, gaussian, cubic B-spline in float and double, with the CPU kernels' edge
// semantics), the staging of the K-vectors in shared memory, and the fixed-order
// block reduction.
#ifndef PHIOP_PHI_DEVICE_CUH
#define PHIOP_PHI_DEVICE_CUH

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

#endif  // PHIOP_PHI_DEVICE_CUH
