// phi_kernel.h: CPU kernels of the fused transfer function, on raw pointers.
//
//   phi(x) = sum_k a_k * f(s_k * (x - g_k)) - offset + [residual] * x,
//   s_k = c * softplus(beta_k)
//
// offset is phi(0) of the plain sum for the centred variants (0 otherwise):
// the shim computes it with phi_forward itself on a one-element zero, so a
// centred phi is exactly 0 wherever x is 0.
//
// No torch headers here: the shim (phi_shim.cpp) owns tensors, threads and
// the chunk-ordered reduction; these functions own the arithmetic of one
// contiguous range of elements.
#ifndef PHIOP_PHI_KERNEL_H
#define PHIOP_PHI_KERNEL_H

#include <cstdint>

namespace phiop {

// Basis numbering is shared with phi.go (Sinc = 0, Gaussian = 1, BSpline = 2).
enum Basis : int { kSinc = 0, kGaussian = 1, kBSpline = 2 };

// Elements per backward reduction chunk. Fixed (never derived from the thread
// count) so that the reduction order, and with it every bit of da and db, is
// the same however many threads run.
constexpr int64_t kChunk = 8192;

// Per-k constants of one call, in the kernel's element type.
template <typename T>
struct Coeffs {
  int basis;
  int64_t K;
  const T* a;   // amplitudes a_k
  const T* s;   // c * b_k
  const T* g;   // grid g_k
  const T* as;  // a_k * s_k (the dphi/dx weight)
  T offset;     // subtracted from every output (phi(0) when centred, else 0)
  bool residual;  // add x to every output (and G to every dx)
};

// phi_forward writes y[i] = phi(x[i]) for i in [0, n).
void phi_forward(const float* x, float* y, int64_t n, const Coeffs<float>& c);
void phi_forward(const double* x, double* y, int64_t n,
                 const Coeffs<double>& c);

// phi_backward handles one chunk [0, n) with n <= kChunk. With G the upstream
// gradient it writes dx[i] = G[i] * ([residual] + sum_k as_k f'(t_ik)) when dx
// is not null, y[i] = phi(x[i]) as phi_forward writes it (the same sum in the
// same order, offset subtracted, x added when residual) when y is not null, and
// adds
//   da[k] += sum_i G[i] * f(t_ik)
//   du[k] += sum_i G[i] * (x[i] - g_k) * f'(t_ik)
//   *dg   += sum_i G[i]                        (when dg is not null)
// (du times a_k * c is dL/db_k; dg is what the centred variants' phi(0) terms
// multiply). Sums run in a fixed order within the chunk.
void phi_backward(const float* x, const float* G, float* dx, float* y, int64_t n,
                  const Coeffs<float>& c, double* da, double* du, double* dg);
void phi_backward(const double* x, const double* G, double* dx, double* y, int64_t n,
                  const Coeffs<double>& c, double* da, double* du, double* dg);

// basis_at returns f(t) and f'(t) in double (the float64 kernel's arithmetic):
// the centred variants' per-k terms f(t0_k) and f'(t0_k), t0_k = -s_k g_k.
void basis_at(int basis, double t, double* f, double* fp);

}  // namespace phiop

#endif  // PHIOP_PHI_KERNEL_H
