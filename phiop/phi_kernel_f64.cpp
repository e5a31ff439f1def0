// phi_kernel_f64.cpp: float64 kernels. Same block structure and reduction
// order as the float32 ones, but libm's sin/cos/exp for accuracy: float64 is
// the reference precision the tests use against finite differences.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "phi_kernel.h"

namespace phiop {
namespace {

constexpr int kBlock = 256;
constexpr double kPi = 3.14159265358979323846;
constexpr int kTaylorTerms = 11;

// Taylor coefficients of D(z) = sinc'(t) / t in z = t^2:
//   d_n = (-1)^n pi^(2n) 2n / (2n+1)!,  n = 1..11  (truncation < 1e-16 for |t| < 1/2).
struct TaylorD {
  double c[kTaylorTerms];
  constexpr TaylorD() : c() {
    double pw = 1.0;    // pi^(2n)
    double fact = 1.0;  // (2n+1)!
    double sign = 1.0;
    for (int n = 1; n <= kTaylorTerms; ++n) {
      pw *= kPi * kPi;
      fact *= double(2 * n) * double(2 * n + 1);
      sign = -sign;
      c[n - 1] = sign * pw * double(2 * n) / fact;
    }
  }
};
constexpr TaylorD kTaylorD;

inline double poly_d(double z) {
  double p = kTaylorD.c[kTaylorTerms - 1];
  for (int i = kTaylorTerms - 2; i >= 0; --i) p = p * z + kTaylorD.c[i];
  return p;
}

// sinc via sinpi-style reduction: t = n + r, sin(pi t) = (-1)^n sin(pi r).
template <bool kGrad>
inline void sinc_f64(double t, double& f, double& fp) {
  if (std::isinf(t)) {  // the limit, as the float32 kernel gives (sin(inf) is NaN)
    f = 0.0;
    fp = 0.0;
    return;
  }
  const double n = std::nearbyint(t);
  const double r = t - n;
  const double sign = std::fmod(n, 2.0) != 0.0 ? -1.0 : 1.0;
  const double sr = std::sin(kPi * r);
  const bool small = std::fabs(t) < 0.5;
  if (small) {
    f = t == 0.0 ? 1.0 : sr / (kPi * t);
    fp = kGrad ? t * poly_d(t * t) : 0.0;
    return;
  }
  const double inv = 1.0 / (kPi * t);
  f = sign * sr * inv;
  fp = kGrad ? (sign * std::cos(kPi * r) - f) * kPi * inv : 0.0;
}

template <int kBasis, bool kGrad>
inline void eval_f64(double t, double& f, double& fp) {
  if constexpr (kBasis == kSinc) {
    sinc_f64<kGrad>(t, f, fp);
  } else if constexpr (kBasis == kGaussian) {
    f = std::exp(-t * t);
    fp = kGrad ? -2.0 * t * f : 0.0;
  } else {
    const double a = std::fabs(t);
    const double w = a < 2.0 ? 2.0 - a : 0.0;
    // a >= 1 is false for NaN, so NaN takes the inner piece and stays NaN.
    f = a >= 1.0 ? w * w * w / 6.0 : 2.0 / 3.0 - a * a * (1.0 - 0.5 * a);
    const double d = a >= 1.0 ? -0.5 * w * w : a * (1.5 * a - 2.0);
    fp = kGrad ? (t < 0.0 ? -d : d) : 0.0;
  }
}

template <int kBasis>
void forward_f64(const double* x, double* y, int64_t n, const Coeffs<double>& c) {
  for (int64_t i = 0; i < n; ++i) {
    const double xi = x[i];
    double acc = 0.0;
    for (int64_t k = 0; k < c.K; ++k) {
      double f, fp;
      eval_f64<kBasis, false>(c.s[k] * (xi - c.g[k]), f, fp);
      acc += c.a[k] * f;
    }
    // Centred: minus phi(0) (0 otherwise); residual: then plus x.
    y[i] = c.residual ? (acc - c.offset) + xi : acc - c.offset;
  }
}

// Per block and k, the sums run over elements in index order, then add into
// da/du (and Sum G into dg) in block order: a fixed order for a given chunk. y
// (when not null) gets phi, summed per element k by k as forward_f64 sums it.
template <int kBasis>
void backward_f64(const double* x, const double* G, double* dx, double* y, int64_t n,
                  const Coeffs<double>& c, double* da, double* du, double* dg) {
  double db[kBlock];
  double yb[kBlock];
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int m = static_cast<int>(std::min<int64_t>(kBlock, n - i0));
    std::fill(db, db + m, c.residual ? 1.0 : 0.0);  // the residual's identity
    std::fill(yb, yb + m, 0.0);
    if (dg != nullptr) {
      double sg = 0.0;
      for (int i = 0; i < m; ++i) sg += G[i0 + i];
      *dg += sg;
    }
    for (int64_t k = 0; k < c.K; ++k) {
      const double ask = c.as[k], sk = c.s[k], gk = c.g[k], ak = c.a[k];
      double sa = 0.0, su = 0.0;
      for (int i = 0; i < m; ++i) {
        const double u = x[i0 + i] - gk;
        const double gi = G[i0 + i];
        double f, fp;
        eval_f64<kBasis, true>(sk * u, f, fp);
        db[i] += ask * fp;
        sa += gi * f;
        su += gi * u * fp;
        yb[i] += ak * f;
      }
      da[k] += sa;
      du[k] += su;
    }
    if (dx != nullptr) {
      for (int i = 0; i < m; ++i) dx[i0 + i] = G[i0 + i] * db[i];
    }
    if (y != nullptr) {
      for (int i = 0; i < m; ++i) {
        const double xi = x[i0 + i];
        y[i0 + i] = c.residual ? (yb[i] - c.offset) + xi : yb[i] - c.offset;
      }
    }
  }
}

}  // namespace

void phi_forward(const double* x, double* y, int64_t n, const Coeffs<double>& c) {
  switch (c.basis) {
    case kSinc: return forward_f64<kSinc>(x, y, n, c);
    case kGaussian: return forward_f64<kGaussian>(x, y, n, c);
    default: return forward_f64<kBSpline>(x, y, n, c);
  }
}

void phi_backward(const double* x, const double* G, double* dx, double* y, int64_t n,
                  const Coeffs<double>& c, double* da, double* du, double* dg) {
  switch (c.basis) {
    case kSinc: return backward_f64<kSinc>(x, G, dx, y, n, c, da, du, dg);
    case kGaussian: return backward_f64<kGaussian>(x, G, dx, y, n, c, da, du, dg);
    default: return backward_f64<kBSpline>(x, G, dx, y, n, c, da, du, dg);
  }
}

void basis_at(int basis, double t, double* f, double* fp) {
  switch (basis) {
    case kSinc: return eval_f64<kSinc, true>(t, *f, *fp);
    case kGaussian: return eval_f64<kGaussian, true>(t, *f, *fp);
    default: return eval_f64<kBSpline, true>(t, *f, *fp);
  }
}

}  // namespace phiop
