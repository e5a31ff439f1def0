// phi_table_cpu.cpp: the tabulated float32 sinc path (phi_table.h has the
// method and its error bounds).
//
// Per element the forward is one interval lookup and a cubic (4 table reads,
// 3 FMAs) instead of K sinc terms; the backward adds the cubic of phi' and one
// add of G's four moments into its interval. The K-term work moves to the nodes:
// (N + 1) K evaluations per table and (N + 3) K for the reductions, in double.
//
// The local coordinate u = (x - lo) / h is taken in double, so the interval and
// t carry no rounding beyond x's own; the cubics run in float32.
#pragma GCC optimize("no-trapping-math")

#include "phi_table.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TAB_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TAB_CLONES
#endif

namespace phiop {
namespace {

constexpr int kTabBlock = 1024;
constexpr double kPi = 3.14159265358979323846;

// The error target of every interpolation, relative to its scale.
constexpr double kTableEps = 0x1p-26;

// Cubic Lagrange on nodes -1, 0, 1, 2: max |(t+1) t (t-1) (t-2)| / 4! on [0, 1].
constexpr double kLagrange = (9.0 / 16.0) / 24.0;

// Cubic Hermite on nodes 0, 1: max t^2 (1-t)^2 / 4! on [0, 1].
constexpr double kHermite = 1.0 / 384.0;

// The cost model of plan_grid (measured single-threaded on this project's
// AVX-512 CI machine: K-term element-term 0.5-0.7 ns, tabulated element
// forward + backward ~6 ns, node-term ~20 ns per pass).
constexpr int64_t kElementCost = 12;
constexpr double kNodeCost = 100.0;

}  // namespace

void sinc_derivs(double t, double* f0, double* f1, double* f2) {
  const double x = kPi * t;
  if (std::fabs(x) < 1.0) {
    // sinc = sum_k c_k x^(2k), c_k = (-1)^k / (2k+1)!; 13 terms reach 1/25!.
    const double x2 = x * x;
    double c = 1.0, p = 1.0;  // c_k and x^(2k - 2)
    double s0 = 1.0, s1 = 0.0, s2 = 0.0;
    for (int k = 1; k <= 12; ++k) {
      const double k2 = 2.0 * k;
      c = -c / (k2 * (k2 + 1.0));
      s1 += c * k2 * p * x;           // d/dx x^(2k) = 2k x^(2k-1)
      s2 += c * k2 * (k2 - 1.0) * p;  // 2k (2k-1) x^(2k-2)
      p *= x2;
      s0 += c * p;
    }
    *f0 = s0;
    *f1 = kPi * s1;
    *f2 = kPi * kPi * s2;
    return;
  }
  double S, C;
  sincos(x, &S, &C);
  *f0 = S / x;
  *f1 = (x * C - S) / (x * t);
  *f2 = -kPi * S / t - 2.0 * C / (t * t) + 2.0 * S / (kPi * t * t * t);
}

TAB_CLONES Range range_of(const float* x, const float* G, int64_t n) {
  float lo = INFINITY, hi = -INFINITY;
  int bad = 0;
#pragma omp simd reduction(min : lo) reduction(max : hi) reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    bad |= !(std::fabs(v) <= FLT_MAX);
  }
  if (G != nullptr) {
#pragma omp simd reduction(| : bad)
    for (int64_t i = 0; i < n; ++i) bad |= !(std::fabs(G[i]) <= FLT_MAX);
  }
  return Range{lo, hi, bad == 0};
}

Range merge(const Range& a, const Range& b) {
  return Range{std::min(a.lo, b.lo), std::max(a.hi, b.hi), a.finite && b.finite};
}

Grid plan_grid(const Range& r, int64_t n, const double* a, const double* s, int64_t K,
               bool include_zero) {
  const Grid none{0.0, 0.0, 0};
  if (!r.finite || n <= 0 || !(r.lo <= r.hi)) return none;
  double lo = r.lo, hi = r.hi;
  if (include_zero) {
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
  }
  double sa = 0, sas = 0, sas4 = 0, sas5 = 0, smax = 0;
  for (int64_t k = 0; k < K; ++k) {
    const double ak = std::fabs(a[k]), sk = s[k], s4 = sk * sk * sk * sk;
    sa += ak;
    sas += ak * sk;
    sas4 += ak * s4;
    sas5 += ak * s4 * sk;
    smax = std::max(smax, sk);
  }
  if (!std::isfinite(sas5) || !std::isfinite(smax) || !(smax > 0)) return none;
  const double pi4 = kPi * kPi * kPi * kPi, s4 = smax * smax * smax * smax;
  // h^4 bounds: phi (|f''''| <= pi^4 / 5), phi' (|f^(5)| <= pi^5 / 6), da
  // (Lagrange on f), du (Lagrange on (x - g) f', |d^4/dt^4 t f'(t)| <= 2.8 pi^4).
  double h4 = kTableEps / (kLagrange * s4 * pi4 / 5.0);
  h4 = std::min(h4, 2.0 * kTableEps / (kLagrange * s4 * 2.8 * pi4));
  if (sas4 > 0) h4 = std::min(h4, kTableEps * sa / (kHermite * sas4 * pi4 / 5.0));
  if (sas5 > 0) h4 = std::min(h4, kTableEps * sas / (kHermite * sas5 * pi4 * kPi / 6.0));
  double h = std::sqrt(std::sqrt(h4));
  const double span = hi - lo;
  const double want = std::ceil(span / h);
  if (!(want <= double(kTableMaxIntervals))) return none;
  // M within one interval (B = 0 at initialisation, and the steps after it) keeps
  // the K-term kernels: phi_table.h says why.
  if (!(want >= 2)) return none;
  const int64_t N = static_cast<int64_t>(want);
  // Cost in units of one K-term element-term (~0.5 ns with AVX-512): the K-term
  // path K n; the table ~12 per element plus ~100 per node and term (three
  // passes over the nodes in double: forward table, backward table, reduction).
  if (double(K - kElementCost) * double(n) <= kNodeCost * double(K) * double(N + 3)) return none;
  h = span / double(N);  // span > 0 here; not larger than the bound's h
  return Grid{lo, h, N};
}

void build_table(const Grid& grid, const double* a, const double* s, const double* g,
                 int64_t K, bool derivative, Table* tab) {
  const int64_t N = grid.N;
  const double h = grid.h;
  std::vector<double> v(N + 1, 0.0), d(N + 1, 0.0);
  for (int64_t j = 0; j <= N; ++j) {
    const double c = grid.lo + double(j) * h;
    double vs = 0.0, ds = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      double f0, f1, f2;
      sinc_derivs(s[k] * (c - g[k]), &f0, &f1, &f2);
      if (derivative) {
        vs += a[k] * s[k] * f1;
        ds += a[k] * s[k] * s[k] * f2;
      } else {
        vs += a[k] * f0;
        ds += a[k] * s[k] * f1;
      }
    }
    v[j] = vs;
    d[j] = ds;
  }
  tab->grid = grid;
  tab->inv_h = 1.0 / h;
  tab->coef.resize(static_cast<size_t>(4 * N));
  for (int64_t j = 0; j < N; ++j) {
    const double p0 = v[j], p1 = v[j + 1], m0 = h * d[j], m1 = h * d[j + 1];
    float* c = &tab->coef[4 * j];
    c[0] = static_cast<float>(p0);
    c[1] = static_cast<float>(m0);
    c[2] = static_cast<float>(3.0 * (p1 - p0) - 2.0 * m0 - m1);
    c[3] = static_cast<float>(2.0 * (p0 - p1) + m0 + m1);
  }
}

TAB_CLONES void table_forward(const float* x, float* y, int64_t n, const Table& tab,
                              float offset, bool residual) {
  const double lo = tab.grid.lo, ih = tab.inv_h;
  const int last = static_cast<int>(tab.grid.N - 1);
  const float* cf = tab.coef.data();
  const float keep = residual ? 1.0f : 0.0f;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const double u = (double(x[i]) - lo) * ih;
    int j = static_cast<int>(u);
    j = j > last ? last : (j < 0 ? 0 : j);
    const float t = static_cast<float>(u - double(j));
    const int c = 4 * j;  // indexed (not through a pointer) so that GCC gathers
    const float v = cf[c] + t * (cf[c + 1] + t * (cf[c + 2] + t * cf[c + 3]));
    y[i] = (v - offset) + keep * x[i];
  }
}

// Moments of one interval: sum G, sum G t, sum G t^2, sum G t^3 of its elements.
typedef double Moments __attribute__((vector_size(32), aligned(8)));

TAB_CLONES void table_backward(const float* x, const float* G, float* dx, int64_t n,
                               const Table& dtab, bool residual, double* H, double* sg) {
  const double lo = dtab.grid.lo, ih = dtab.inv_h;
  const int last = static_cast<int>(dtab.grid.N - 1);
  const float* cf = dtab.coef.data();
  const float d0 = residual ? 1.0f : 0.0f;
  alignas(64) int jb[kTabBlock];
  alignas(64) double mb[kTabBlock][4];
  alignas(64) float scratch[kTabBlock];
  Moments* moments = reinterpret_cast<Moments*>(H);
  double sum = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += kTabBlock) {
    const int m = static_cast<int>(std::min<int64_t>(kTabBlock, n - i0));
    const float* xs = x + i0;
    const float* gs = G + i0;
    float* ds = dx != nullptr ? dx + i0 : scratch;  // one loop either way
#pragma omp simd
    for (int i = 0; i < m; ++i) {
      const double u = (double(xs[i]) - lo) * ih;
      int j = static_cast<int>(u);
      j = j > last ? last : (j < 0 ? 0 : j);
      const double t = u - double(j);
      const double g = double(gs[i]);
      jb[i] = j;
      mb[i][0] = g;
      mb[i][1] = g * t;
      mb[i][2] = g * t * t;
      mb[i][3] = g * t * t * t;
      const float tf = static_cast<float>(t);
      const int c = 4 * j;
      ds[i] = gs[i] * (d0 + (cf[c] + tf * (cf[c + 1] + tf * (cf[c + 2] + tf * cf[c + 3]))));
    }
    for (int i = 0; i < m; ++i) {
      Moments v;
      __builtin_memcpy(&v, mb[i], sizeof v);
      moments[jb[i]] += v;
      sum += mb[i][0];
    }
  }
  *sg += sum;
}

void spread_moments(const Grid& grid, const double* H, double* W) {
  // Lagrange weights of nodes j-1 .. j+2 as polynomials in t (coefficients of
  // 1, t, t^2, t^3): sum_i G_i w_m(t_i) = sum_p L[m][p] H_p.
  static const double L[4][4] = {{0.0, -1.0 / 3.0, 0.5, -1.0 / 6.0},
                                 {1.0, -0.5, -1.0, 0.5},
                                 {0.0, 1.0, 0.5, -0.5},
                                 {0.0, -1.0 / 6.0, 0.0, 1.0 / 6.0}};
  for (int64_t j = 0; j < grid.N; ++j) {
    const double* h = H + 4 * j;
    for (int m = 0; m < 4; ++m) {
      W[j + m] += L[m][0] * h[0] + L[m][1] * h[1] + L[m][2] * h[2] + L[m][3] * h[3];
    }
  }
}

void table_reduce(const Grid& grid, const double* W, const double* s, const double* g,
                  int64_t K, double* da, double* du) {
  for (int64_t k = 0; k < K; ++k) {
    double sa = 0.0, su = 0.0;
    for (int64_t j = -1; j <= grid.N + 1; ++j) {
      const double w = W[j + 1];
      if (w == 0.0) continue;
      const double u = grid.lo + double(j) * grid.h - g[k];
      double f0, f1, f2;
      sinc_derivs(s[k] * u, &f0, &f1, &f2);
      sa += w * f0;
      su += w * u * f1;
    }
    da[k] = sa;
    du[k] = su;
  }
}

}  // namespace phiop
