// phi_kernel_cpu.cpp: the CPU arithmetic of the fused transfer function.
//
// Layout of the float32 kernels: elements are copied into blocks of kBlock
// (zero padded, so the tail needs no special case), and for each block the
// K loop is outside and the element loop inside. The element loop is
// branch-free (selects only) and marked `omp simd`, so GCC vectorises it for
// whichever clone runs (AVX-512, AVX2+FMA, or baseline SSE2; picked at load
// time). sin(pi t) and cos(pi t) are computed here rather than by libm: t is
// reduced to r = t - n, n = round(t), |r| <= 1/2, two polynomials in r^2 give
// sinc(r) and sinc'(r)/r and from them sin(pi r) and cos(pi r), and the
// parity of n gives the sign. float64 uses libm for accuracy.
//
// Memory: the K loop of one block is long (K terms per element) and touches
// only the block's scratch, so the hardware prefetcher sees the next block's
// lines of M, G and the output only in a burst at its start; at 4096² (64 MiB
// per tensor, far beyond the caches) those bursts were ~10% of the kernels'
// time. Each element loop k therefore prefetches its share of the next
// block's input lines (read) and output lines (write, so the stores that end
// the block do not stall on read-for-ownership misses). Values are unchanged.
//
// no-trapping-math: without it GCC will not if-convert the selects (it may
// not speculate an FP op that could trap), and the element loops stay scalar
// on AVX2/SSE2. cgo does not accept the flag, hence the pragma; nothing here
// relies on FP traps.
#pragma GCC optimize("no-trapping-math")

#include "phi_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PHI_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), flatten))
#else
#define PHI_CLONES __attribute__((flatten))
#endif
#define PHI_INLINE inline __attribute__((always_inline))

namespace phiop {
namespace {

constexpr int kBlock = 1024;

// round_magic rounds to the nearest integer (ties to even) for |v| < 2^22 by
// adding and subtracting 1.5 * 2^23; it vectorises on every ISA, unlike rintf.
PHI_INLINE float round_magic(float v) {
  const float magic = 12582912.0f;
  return (v + magic) - magic;
}

// Polynomials in z = r^2 on z in [0, 1/4] (|r| <= 1/2): Chebyshev interpolants
// printed by gen_coeffs.py (in this directory), max abs error in the comment.
//   S(z) = sin(pi r) / (pi r)                            (4.3e-9)
//   D(z) = sinc'(r) / r = (cos(pi r) - sinc(r)) / r^2    (3.3e-9)
PHI_INLINE float poly_s(float z) {
  return (((2.471864459e-02f * z - 1.904417527e-01f) * z + 8.117148427e-01f) * z -
          1.644933206e+00f) * z + 9.999999957e-01f;
}
PHI_INLINE float poly_d(float z) {
  return (((-2.237204877e-02f * z + 2.089463095e-01f) * z - 1.144489899e+00f) * z +
          3.246969044e+00f) * z - 3.289868130e+00f;
}

PHI_INLINE unsigned bits_of(float v) {
  unsigned u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}
PHI_INLINE float from_bits(unsigned u) {
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

// sinc(t) and, when kGrad, sinc'(t). sinc is even, so the reduction runs on
// a = |t|: a = n + r with n = round(a), |r| <= 1/2; the parity of n sits in
// the lowest mantissa bit of a + 1.5*2^23 and becomes the sign of sin and cos.
//   sinc(t)  = (-1)^n S(z) (r + tau) q,     z = r^2,  q = 1 / (a + tau)
//   sinc'(t) = sign(t) X q,   X = cos(pi t) - sinc(t) = t sinc'(t)
// The tiny tau makes t = 0 safe (r = a when n = 0, so (r + tau) q = 1 to
// rounding) and changes no other value; the one reciprocal q serves sinc and
// sinc'.
// cos(pi r) = S(z) + z D(z) exactly (definition of D), so no cosine
// polynomial is needed; for |t| < 1/2 (n = 0), X = z D(z) directly, which
// avoids the cancellation in cos - sinc.
template <bool kGrad>
PHI_INLINE void sinc_f32(float t, float& f, float& fp) {
  const float tau = 1e-30f;
  const float lim = 4194304.0f;  // 2^22 keeps the magic rounding exact
  const float at = std::fabs(t);
  const float a = at > lim ? lim : at;  // NaN stays NaN
  const float shifted = a + 12582912.0f;
  const float r = a - (shifted - 12582912.0f);
  const unsigned parity = bits_of(shifted) << 31;
  const float z = r * r;
  const float q = 1.0f / (a + tau);
  const float s = poly_s(z);
  f = from_bits(bits_of(s * (r + tau) * q) ^ parity);
  if (kGrad) {
    const float zd = z * poly_d(z);
    const float cospi = from_bits(bits_of(s + zd) ^ parity);
    const float x = a < 0.5f ? zd : cospi - f;
    fp = from_bits(bits_of(x * q) ^ (bits_of(t) & 0x80000000u));
  } else {
    fp = 0.0f;
  }
}

// exp(z) for z <= 0 (0 below -87 where exp underflows towards denormals;
// NaN stays NaN).
PHI_INLINE float exp_nonpos_f32(float z) {
  const float zc = z < -87.0f ? -87.0f : z;
  const float k = round_magic(zc * 1.44269504088896341f);
  float r = zc - k * 0.693359375f;  // ln2 split: high part exact in k * hi
  r = r + k * 2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int ki = static_cast<int>(k);
  const unsigned bits = static_cast<unsigned>(ki + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return z < -87.0f ? 0.0f : p * scale;
}

template <bool kGrad>
PHI_INLINE void gauss_f32(float t, float& f, float& fp) {
  f = exp_nonpos_f32(-t * t);
  fp = kGrad ? -2.0f * t * f : 0.0f;
}

// Cubic B-spline with support [-2, 2], piecewise in a = |t|:
//   a < 1:      2/3 - a^2 + a^3/2          B' = sign(t) (-2a + 3a^2/2)
//   1 <= a < 2: (2 - a)^3 / 6              B' = -sign(t) (2 - a)^2 / 2
template <typename T, bool kGrad>
PHI_INLINE void bspline(T t, T& f, T& fp) {
  const T a = std::fabs(t);
  const T w = a < T(2) ? T(2) - a : T(0);
  const T inner = T(2.0 / 3.0) - a * a * (T(1) - T(0.5) * a);
  const T outer = w * w * w * T(1.0 / 6.0);
  f = a >= T(1) ? outer : inner;  // written so that NaN picks inner: NaN stays NaN
  if (kGrad) {
    const T dinner = a * (T(1.5) * a - T(2));
    const T douter = T(-0.5) * w * w;
    const T d = a >= T(1) ? douter : dinner;
    fp = t < T(0) ? -d : d;
  } else {
    fp = T(0);
  }
}

template <int kBasis, bool kGrad>
PHI_INLINE void eval_f32(float t, float& f, float& fp) {
  if constexpr (kBasis == kSinc) {
    sinc_f32<kGrad>(t, f, fp);
  } else if constexpr (kBasis == kGaussian) {
    gauss_f32<kGrad>(t, f, fp);
  } else {
    bspline<float, kGrad>(t, f, fp);
  }
}

// load_block copies m <= kBlock values and zero-pads the rest of the block.
template <typename T>
PHI_INLINE void load_block(T* dst, const T* src, int m) {
  for (int i = 0; i < m; ++i) dst[i] = src[i];
  for (int i = m; i < kBlock; ++i) dst[i] = T(0);
}

// store_block writes m outputs: the plain sum as it is, or (centred/residual)
// sum - offset [+ x], in that order (so a = 0 with residual gives x exactly).
template <typename T>
PHI_INLINE void store_block(T* y, const T* yb, const T* xb, int m, const Coeffs<T>& c) {
  if (c.residual) {
    for (int i = 0; i < m; ++i) y[i] = (yb[i] - c.offset) + xb[i];
  } else if (c.offset != T(0)) {
    for (int i = 0; i < m; ++i) y[i] = yb[i] - c.offset;
  } else {
    std::memcpy(y, yb, sizeof(T) * m);
  }
}

// prefetch_next touches, for element loop k of K, its share of the cache lines
// of the next block: every input line (read) and every output line (write).
template <typename T>
PHI_INLINE void prefetch_next(const T* in0, const T* in1, const T* out, int64_t left,
                              int64_t k, int64_t K) {
  constexpr int64_t kLine = 64 / sizeof(T);
  const int64_t lines = (std::min<int64_t>(left, kBlock) + kLine - 1) / kLine;
  const int64_t per = (lines + K - 1) / K;
  for (int64_t j = k * per; j < std::min(lines, (k + 1) * per); ++j) {
    __builtin_prefetch(in0 + j * kLine, 0, 3);
    if (in1 != nullptr) __builtin_prefetch(in1 + j * kLine, 0, 3);
    if (out != nullptr) __builtin_prefetch(out + j * kLine, 1, 3);
  }
}

template <int kBasis>
PHI_INLINE void forward_f32(const float* x, float* y, int64_t n, const Coeffs<float>& c) {
  alignas(64) float xb[kBlock];
  alignas(64) float yb[kBlock];
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int m = static_cast<int>(std::min<int64_t>(kBlock, n - i0));
    load_block(xb, x + i0, m);
    for (int i = 0; i < kBlock; ++i) yb[i] = 0.0f;
    for (int64_t k = 0; k < c.K; ++k) {
      const float ak = c.a[k], sk = c.s[k], gk = c.g[k];
      if (i0 + kBlock < n)
        prefetch_next<float>(x + i0 + kBlock, nullptr, y + i0 + kBlock, n - i0 - kBlock, k, c.K);
#pragma omp simd
      for (int i = 0; i < kBlock; ++i) {
        float f, fp;
        eval_f32<kBasis, false>(sk * (xb[i] - gk), f, fp);
        yb[i] += ak * f;
      }
    }
    store_block(y + i0, yb, xb, m, c);
  }
}

// Within a block the per-k sums are float (omp simd splits them into vector
// lanes, in an order fixed by the compiled code); across blocks they are double.
// Sum G (dg) is taken on the block already loaded for the K loop: no pass of its
// own over M. The residual's identity starts phi' at 1. kValue also sums phi's
// value per element, k by k as forward_f32 does, from the f the loop evaluates anyway.
template <int kBasis, bool kValue>
PHI_INLINE void backward_f32(const float* x, const float* G, float* dx, float* y, int64_t n,
                             const Coeffs<float>& c, double* da, double* du, double* dg) {
  alignas(64) float xb[kBlock];
  alignas(64) float gb[kBlock];
  alignas(64) float db[kBlock];
  alignas(64) float yb[kValue ? kBlock : 1];
  const float d0 = c.residual ? 1.0f : 0.0f;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int m = static_cast<int>(std::min<int64_t>(kBlock, n - i0));
    load_block(xb, x + i0, m);
    load_block(gb, G + i0, m);
    for (int i = 0; i < kBlock; ++i) db[i] = d0;
    if constexpr (kValue) {
      for (int i = 0; i < kBlock; ++i) yb[i] = 0.0f;
    }
    if (dg != nullptr) {
      float sg = 0.0f;
#pragma omp simd reduction(+ : sg)
      for (int i = 0; i < kBlock; ++i) sg += gb[i];
      *dg += sg;
    }
    for (int64_t k = 0; k < c.K; ++k) {
      const float ask = c.as[k], sk = c.s[k], gk = c.g[k], ak = c.a[k];
      float sa = 0.0f, su = 0.0f;
      if (i0 + kBlock < n)
        prefetch_next<float>(x + i0 + kBlock, G + i0 + kBlock,
                             dx != nullptr ? dx + i0 + kBlock : nullptr, n - i0 - kBlock, k, c.K);
#pragma omp simd reduction(+ : sa, su)
      for (int i = 0; i < kBlock; ++i) {
        const float u = xb[i] - gk;
        float f, fp;
        eval_f32<kBasis, true>(sk * u, f, fp);
        db[i] += ask * fp;
        sa += gb[i] * f;
        su += gb[i] * u * fp;
        if constexpr (kValue) yb[i] += ak * f;
      }
      da[k] += sa;
      du[k] += su;
    }
    if (dx != nullptr) {
      for (int i = 0; i < m; ++i) dx[i0 + i] = gb[i] * db[i];
    }
    if constexpr (kValue) store_block(y + i0, yb, xb, m, c);
  }
}

PHI_CLONES void fwd_f32_sinc(const float* x, float* y, int64_t n, const Coeffs<float>& c) {
  forward_f32<kSinc>(x, y, n, c);
}
PHI_CLONES void fwd_f32_gauss(const float* x, float* y, int64_t n, const Coeffs<float>& c) {
  forward_f32<kGaussian>(x, y, n, c);
}
PHI_CLONES void fwd_f32_bspline(const float* x, float* y, int64_t n, const Coeffs<float>& c) {
  forward_f32<kBSpline>(x, y, n, c);
}
PHI_CLONES void bwd_f32_sinc(const float* x, const float* G, float* dx, int64_t n,
                             const Coeffs<float>& c, double* da, double* du, double* dg) {
  backward_f32<kSinc, false>(x, G, dx, nullptr, n, c, da, du, dg);
}
PHI_CLONES void bwd_f32_gauss(const float* x, const float* G, float* dx, int64_t n,
                              const Coeffs<float>& c, double* da, double* du, double* dg) {
  backward_f32<kGaussian, false>(x, G, dx, nullptr, n, c, da, du, dg);
}
PHI_CLONES void bwd_f32_bspline(const float* x, const float* G, float* dx, int64_t n,
                                const Coeffs<float>& c, double* da, double* du, double* dg) {
  backward_f32<kBSpline, false>(x, G, dx, nullptr, n, c, da, du, dg);
}
PHI_CLONES void bwdv_f32_sinc(const float* x, const float* G, float* dx, float* y, int64_t n,
                              const Coeffs<float>& c, double* da, double* du, double* dg) {
  backward_f32<kSinc, true>(x, G, dx, y, n, c, da, du, dg);
}
PHI_CLONES void bwdv_f32_gauss(const float* x, const float* G, float* dx, float* y, int64_t n,
                               const Coeffs<float>& c, double* da, double* du, double* dg) {
  backward_f32<kGaussian, true>(x, G, dx, y, n, c, da, du, dg);
}
PHI_CLONES void bwdv_f32_bspline(const float* x, const float* G, float* dx, float* y, int64_t n,
                                 const Coeffs<float>& c, double* da, double* du, double* dg) {
  backward_f32<kBSpline, true>(x, G, dx, y, n, c, da, du, dg);
}

}  // namespace

void phi_forward(const float* x, float* y, int64_t n, const Coeffs<float>& c) {
  switch (c.basis) {
    case kSinc: return fwd_f32_sinc(x, y, n, c);
    case kGaussian: return fwd_f32_gauss(x, y, n, c);
    default: return fwd_f32_bspline(x, y, n, c);
  }
}

void phi_backward(const float* x, const float* G, float* dx, float* y, int64_t n,
                  const Coeffs<float>& c, double* da, double* du, double* dg) {
  if (y != nullptr) {
    switch (c.basis) {
      case kSinc: return bwdv_f32_sinc(x, G, dx, y, n, c, da, du, dg);
      case kGaussian: return bwdv_f32_gauss(x, G, dx, y, n, c, da, du, dg);
      default: return bwdv_f32_bspline(x, G, dx, y, n, c, da, du, dg);
    }
  }
  switch (c.basis) {
    case kSinc: return bwd_f32_sinc(x, G, dx, n, c, da, du, dg);
    case kGaussian: return bwd_f32_gauss(x, G, dx, n, c, da, du, dg);
    default: return bwd_f32_bspline(x, G, dx, n, c, da, du, dg);
  }
}

}  // namespace phiop
