// phi_cpu.h: the CPU side of the fused op, shared by the autograd shim
// (phi_shim.cpp) and the tabulated path (phi_tabulated.cpp): the K-vectors on
// the host, the chunked parallel loop, and the K-term forward and backward over
// a tensor. Torch headers; included by C++ files of this package only.
#ifndef PHIOP_PHI_CPU_H
#define PHIOP_PHI_CPU_H

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <vector>

#include "phi_kernel.h"

namespace phiop {

// softplus with libtorch's default threshold (x > 20 returns x), in double.
inline double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// HostConsts holds the K-vectors in double on the host.
struct HostConsts {
  std::vector<double> a, b, g, s, as, sig;
};

inline std::vector<double> to_host(const at::Tensor& t) {
  at::Tensor h = t.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* p = h.data_ptr<double>();
  return std::vector<double>(p, p + h.numel());
}

inline HostConsts host_consts(const at::Tensor& a, const at::Tensor& beta, const at::Tensor& g,
                       double scale) {
  HostConsts c;
  c.a = to_host(a);
  c.g = to_host(g);
  const std::vector<double> beta_h = to_host(beta);
  const size_t K = c.a.size();
  c.b.resize(K);
  c.s.resize(K);
  c.as.resize(K);
  c.sig.resize(K);
  for (size_t k = 0; k < K; ++k) {
    c.b[k] = softplus(beta_h[k]);
    c.s[k] = scale * c.b[k];
    c.as[k] = c.a[k] * c.s[k];
    c.sig[k] = sigmoid(beta_h[k]);
  }
  return c;
}

// TypedConsts holds the K-vectors in the kernel's element type.
template <typename T>
struct TypedConsts {
  std::vector<T> a, s, g, as;
  TypedConsts(const HostConsts& h)
      : a(h.a.begin(), h.a.end()),
        s(h.s.begin(), h.s.end()),
        g(h.g.begin(), h.g.end()),
        as(h.as.begin(), h.as.end()) {}
  Coeffs<T> coeffs(int basis, T offset = T(0), bool residual = false) const {
    return Coeffs<T>{basis, static_cast<int64_t>(a.size()), a.data(), s.data(), g.data(),
                     as.data(), offset, residual};
  }
};

inline int64_t num_chunks(int64_t n) { return (n + kChunk - 1) / kChunk; }

// for_each_chunk runs fn(chunk) for chunk in [0, chunks) on libtorch's
// intra-op threads. Threads take chunks from a shared counter rather than a
// fixed range each, so a core slowed by other work does not hold up the rest.
// Every chunk writes only its own outputs: results do not depend on which
// thread ran it.
template <typename F>
void for_each_chunk(int64_t chunks, const F& fn) {
  const int64_t workers = std::min<int64_t>(chunks, at::get_num_threads());
  if (workers <= 1) {
    for (int64_t chunk = 0; chunk < chunks; ++chunk) fn(chunk);
    return;
  }
  std::atomic<int64_t> next{0};
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    for (int64_t chunk = next.fetch_add(1); chunk < chunks; chunk = next.fetch_add(1)) fn(chunk);
  });
}

// Variant flags of one call (the Variant of variant.go); through the autograd
// context as one int, bit 0 centred and bit 1 residual.
struct Flags {
  bool centred, residual;
  int64_t bits() const { return (centred ? 1 : 0) | (residual ? 2 : 0); }
  static Flags of(int64_t b) { return Flags{(b & 1) != 0, (b & 2) != 0}; }
};

// forward_cpu writes phi(x) into y. Centred: phi(0) is the same kernel on a one-element
// zero (the instructions of any element of x), so an x entry of 0 gives exactly 0.
template <typename T>
void forward_cpu(const at::Tensor& x, at::Tensor& y, const HostConsts& h, int basis, Flags v) {
  const TypedConsts<T> tc(h);
  T offset = T(0);
  if (v.centred) {
    const T zero = T(0);
    phi_forward(&zero, &offset, 1, tc.coeffs(basis));
  }
  const Coeffs<T> c = tc.coeffs(basis, offset, v.residual);
  const T* xp = x.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  const int64_t n = x.numel();
  for_each_chunk(num_chunks(n), [&](int64_t chunk) {
    const int64_t off = chunk * kChunk;
    phi_forward(xp + off, yp + off, std::min(kChunk, n - off), c);
  });
}

// backward_cpu fills dx (when defined), y = phi(x) as forward_cpu writes it (when
// defined: the same pass evaluates every term anyway), the per-k sums da, du and
// (centred) sg = Sum G. Each chunk sums into its own slots, added in chunk order
// afterwards, so the result does not depend on how chunks were spread over threads.
template <typename T>
void backward_cpu(const at::Tensor& x, const at::Tensor& G, at::Tensor* dx, at::Tensor* y,
                  const HostConsts& h, int basis, Flags v, std::vector<double>& da,
                  std::vector<double>& du, double& sg) {
  const TypedConsts<T> tc(h);
  T offset = T(0);  // only y uses it, as forward_cpu computes it
  if (y != nullptr && v.centred) {
    const T zero = T(0);
    phi_forward(&zero, &offset, 1, tc.coeffs(basis));
  }
  const Coeffs<T> c = tc.coeffs(basis, offset, v.residual);
  const int64_t K = c.K;
  const T* xp = x.data_ptr<T>();
  const T* gp = G.data_ptr<T>();
  T* dxp = dx != nullptr ? dx->data_ptr<T>() : nullptr;
  T* yp = y != nullptr ? y->data_ptr<T>() : nullptr;
  const int64_t n = x.numel();
  const int64_t chunks = num_chunks(n);
  std::vector<double> part_a(static_cast<size_t>(chunks * K), 0.0);
  std::vector<double> part_u(static_cast<size_t>(chunks * K), 0.0);
  std::vector<double> part_g(static_cast<size_t>(chunks), 0.0);
  for_each_chunk(chunks, [&](int64_t chunk) {
    const int64_t off = chunk * kChunk;
    phi_backward(xp + off, gp + off, dxp != nullptr ? dxp + off : nullptr,
                 yp != nullptr ? yp + off : nullptr, std::min(kChunk, n - off), c, &part_a[chunk * K], &part_u[chunk * K],
                 v.centred ? &part_g[chunk] : nullptr);
  });
  da.assign(K, 0.0);
  du.assign(K, 0.0);
  sg = 0.0;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    sg += part_g[chunk];
    for (int64_t k = 0; k < K; ++k) {
      da[k] += part_a[chunk * K + k];
      du[k] += part_u[chunk * K + k];
    }
  }
}

// Whether float32 sinc calls may take the tabulated path (phi_table.h), and how
// many forward and backward calls took it (phiop_set_tabulate, phiop_pass_counts).
extern std::atomic<int> g_tabulate;
extern std::atomic<int64_t> g_tabulated;
// CPU forward and backward passes of the op, whichever path they took.
extern std::atomic<int64_t> g_cpu_passes;

// tabulated_forward computes a float32 sinc forward through a table when
// plan_grid finds one worth building; false leaves y to forward_cpu.
bool tabulated_forward(const at::Tensor& x, at::Tensor& y, const HostConsts& h, Flags v);

// tabulated_backward is backward_cpu<float> for sinc through a table (false:
// not worth it, nothing written).
bool tabulated_backward(const at::Tensor& x, const at::Tensor& G, at::Tensor* dx,
                        const HostConsts& h, Flags v, std::vector<double>& da,
                        std::vector<double>& du, double& sg);

}  // namespace phiop

#endif  // PHIOP_PHI_CPU_H
