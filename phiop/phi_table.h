// phi_table.h: the tabulated float32 path of the sinc transfer function.
//
// During one call phi is a fixed function of one real variable, so on a large
// M it is cheaper to evaluate phi on a grid once and interpolate than to sum
// its K terms at every element:
//
//   nodes     c_j = lo + j h,  j = -1 .. N + 1, spanning [lo, hi] of M
//   forward   phi(x)  ~ cubic Hermite on phi(c_j), phi'(c_j)
//   dphi/dx   phi'(x) ~ cubic Hermite on phi'(c_j), phi''(c_j)
//   da_k, du_k = sum_i G_i h_k(x_i) ~ sum_j W_j h_k(c_j), where W_j spreads each
//             G_i onto the four nodes around x_i with the cubic Lagrange
//             weights, and h_k(x) = f(s_k (x - g_k)) resp. (x - g_k) f'(...)
//
// Node values are summed over k in double. h is chosen from bounds on sinc's
// derivatives (|f^(n)| <= pi^n / (n + 1), |t f^(n)(t)| <= 2 pi^(n-1)) so that
// each interpolation error stays below 2^-26 of its natural scale (sum |a_k|,
// sum |a_k s_k|, sum |G_i|, sum |G_i| 2 / s_k): a quarter of float32's unit
// roundoff, below what the K-term float32 kernel's own rounding adds. Where
// that would need more than kTableMaxIntervals intervals, or the grid would
// not be cheap against the element count, or M (or G) holds a NaN or an
// infinity, the caller uses the K-term kernel (phi_kernel.h).
//
// So does an M that lies within one interval. From the default start (B = 0,
// a = 0, a grid symmetric about 0, equal b_k) the amplitudes stay symmetric,
// phi'(0) = sum_k a_k s_k f'(-s_k g_k) is 0 in exact arithmetic, and so is
// dL/dM at M = 0: B leaves 0 only through rounding, which the K-term float32
// sum supplies at ~1e-10 of the gradient's scale and the table, summing the
// nodes in double, does at ~1e-18. Tabulating from the first step measurably
// slowed that escape (a 64x64 layer's loss after 120 steps: 0.22 instead of
// 0.11), so the first steps keep the K-term kernel's bits.
//
// No torch headers here; the shim owns threads and the fixed-order sums.
#ifndef PHIOP_PHI_TABLE_H
#define PHIOP_PHI_TABLE_H

#include <cstdint>
#include <vector>

namespace phiop {

constexpr int64_t kTableMaxIntervals = int64_t(1) << 15;

// Range of one contiguous piece of M (and whether it, and G, are all finite).
struct Range {
  float lo, hi;
  bool finite;
};

// range_of scans x[0, n) (and G, when not null) for min, max and finiteness.
Range range_of(const float* x, const float* G, int64_t n);

// merge combines two ranges.
Range merge(const Range& a, const Range& b);

// Grid is the node spacing and count chosen for one call (N = 0: not worth it).
struct Grid {
  double lo, h;
  int64_t N;  // intervals; nodes j = -1 .. N + 1
};

// plan_grid picks the grid for M's range r, n elements and K sinc terms
// (a, s, g in double); include_zero widens the range to hold 0 (centred
// variants evaluate phi(0) through the same table).
Grid plan_grid(const Range& r, int64_t n, const double* a, const double* s, int64_t K,
               bool include_zero);

// Table holds, per interval, the four float32 coefficients of the cubic in
// the local coordinate t = (x - c_j) / h of phi (fwd) or phi' (bwd).
struct Table {
  Grid grid;
  double inv_h;
  std::vector<float> coef;  // 4 per interval: c0 + t (c1 + t (c2 + t c3))
};

// build_table fills tab for phi (derivative = false) or phi' (true).
void build_table(const Grid& grid, const double* a, const double* s, const double* g,
                 int64_t K, bool derivative, Table* tab);

// table_forward writes y[i] = (phi(x[i]) - offset) [+ x[i]] for i in [0, n).
void table_forward(const float* x, float* y, int64_t n, const Table& tab, float offset,
                   bool residual);

// table_backward writes dx[i] = G[i] ([residual] + phi'(x[i])) when dx is not
// null, adds the moments sum G, sum G t, sum G t^2, sum G t^3 of the elements
// of interval j (t their local coordinate) into H[4 j .. 4 j + 3] (4 N values),
// and sum G into *sg, all in element order.
void table_backward(const float* x, const float* G, float* dx, int64_t n, const Table& dtab,
                    bool residual, double* H, double* sg);

// spread_moments adds to W[0, N + 3) (W[j + 1] belongs to node j) each
// interval's G spread onto its four nodes j - 1 .. j + 2 with the cubic
// Lagrange weights: linear in the moments.
void spread_moments(const Grid& grid, const double* H, double* W);

// table_reduce turns the spread weights W (N + 3 values) into
// da[k] = sum_j W_j f(s_k (c_j - g_k)) and du[k] = sum_j W_j (c_j - g_k) f'(...).
void table_reduce(const Grid& grid, const double* W, const double* s, const double* g,
                  int64_t K, double* da, double* du);

// sinc_derivs returns sinc(t) = sin(pi t) / (pi t) and its first two
// derivatives in double (series for |pi t| < 1, closed forms beyond).
void sinc_derivs(double t, double* f0, double* f1, double* f2);

}  // namespace phiop

#endif  // PHIOP_PHI_TABLE_H
