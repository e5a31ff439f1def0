// phi_shim.cpp: the fused transfer-function op as a libtorch autograd
// Function, and the extern "C" entry points cgo calls.
//
// Forward saves M, a, beta and g only (O(numel) + O(K) memory, independent of K);
// backward recomputes the K terms. The variants (variant.go) are flags of the node:
// centred subtracts phi(0) (the kernel on a one-element zero), residual adds M; their
// gradients need Sum G, summed in the backward pass beside da and du. Every C++
// exception stops here and goes back to Go as an error message.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "message.h"
#include "phi_kernel.h"
#include "phi_shim_cuda.h"
#include "phi_table.h"
#include "phiop.h"

namespace phiop {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Thread count requested through phiop_set_num_threads; 0 until then. OpenMP
// keeps the count per OS thread, so calls made from another thread re-apply it.
std::atomic<int> g_num_threads{0};

void sync_num_threads() {
  const int want = g_num_threads.load();
  if (want > 0 && at::get_num_threads() != want) at::set_num_threads(want);
}

// softplus with libtorch's default threshold (x > 20 returns x), in double.
double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// HostConsts holds the K-vectors in double on the host.
struct HostConsts {
  std::vector<double> a, b, g, s, as, sig;
};

std::vector<double> to_host(const at::Tensor& t) {
  at::Tensor h = t.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* p = h.data_ptr<double>();
  return std::vector<double>(p, p + h.numel());
}

HostConsts host_consts(const at::Tensor& a, const at::Tensor& beta, const at::Tensor& g,
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

int64_t num_chunks(int64_t n) { return (n + kChunk - 1) / kChunk; }

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

// backward_cpu fills dx (when defined), the per-k sums da, du and (centred) sg = Sum G.
// Each chunk sums into its own slots, added in chunk order afterwards, so the result
// does not depend on how chunks were spread over threads.
template <typename T>
void backward_cpu(const at::Tensor& x, const at::Tensor& G, at::Tensor* dx, const HostConsts& h,
                  int basis, Flags v, std::vector<double>& da, std::vector<double>& du,
                  double& sg) {
  const TypedConsts<T> tc(h);
  const Coeffs<T> c = tc.coeffs(basis, T(0), v.residual);
  const int64_t K = c.K;
  const T* xp = x.data_ptr<T>();
  const T* gp = G.data_ptr<T>();
  T* dxp = dx != nullptr ? dx->data_ptr<T>() : nullptr;
  const int64_t n = x.numel();
  const int64_t chunks = num_chunks(n);
  std::vector<double> part_a(static_cast<size_t>(chunks * K), 0.0);
  std::vector<double> part_u(static_cast<size_t>(chunks * K), 0.0);
  std::vector<double> part_g(static_cast<size_t>(chunks), 0.0);
  for_each_chunk(chunks, [&](int64_t chunk) {
    const int64_t off = chunk * kChunk;
    phi_backward(xp + off, gp + off, dxp != nullptr ? dxp + off : nullptr,
                 std::min(kChunk, n - off), c, &part_a[chunk * K], &part_u[chunk * K],
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
// many forward and backward calls took it (tests and benchmarks read both).
std::atomic<int> g_tabulate{1};
std::atomic<int64_t> g_tabulated{0};

// range_parallel scans x (and G) chunk by chunk on libtorch's threads.
Range range_parallel(const float* x, const float* G, int64_t n) {
  const int64_t chunks = num_chunks(n);
  std::vector<Range> part(static_cast<size_t>(chunks));
  for_each_chunk(chunks, [&](int64_t chunk) {
    const int64_t off = chunk * kChunk;
    part[chunk] = range_of(x + off, G != nullptr ? G + off : nullptr, std::min(kChunk, n - off));
  });
  Range r = part[0];
  for (int64_t c = 1; c < chunks; ++c) r = merge(r, part[c]);
  return r;
}

// tabulated_forward computes a float32 sinc forward through a table when
// plan_grid finds one worth building; false leaves y to the K-term kernel.
bool tabulated_forward(const at::Tensor& x, at::Tensor& y, const HostConsts& h, Flags v) {
  const int64_t n = x.numel(), K = static_cast<int64_t>(h.a.size());
  if (g_tabulate.load() == 0 || n == 0) return false;
  const float* xp = x.data_ptr<float>();
  const Grid grid = plan_grid(range_parallel(xp, nullptr, n), n, h.a.data(), h.s.data(), K,
                              v.centred);
  if (grid.N == 0) return false;
  Table tab;
  build_table(grid, h.a.data(), h.s.data(), h.g.data(), K, false, &tab);
  float offset = 0.0f;
  if (v.centred) {  // phi(0) through the same table and instructions: phi is 0 at x = 0
    const float zero = 0.0f;
    table_forward(&zero, &offset, 1, tab, 0.0f, false);
  }
  float* yp = y.data_ptr<float>();
  for_each_chunk(num_chunks(n), [&](int64_t chunk) {
    const int64_t off = chunk * kChunk;
    table_forward(xp + off, yp + off, std::min(kChunk, n - off), tab, offset, v.residual);
  });
  g_tabulated.fetch_add(1);
  return true;
}

// Segments of the tabulated backward's spread: at most kSpreadSegments, each a
// whole number of chunks, fixed by n alone, and summed in segment order, so the
// result does not depend on the thread count.
constexpr int64_t kSpreadSegments = 64;

// tabulated_backward is backward_cpu<float> for sinc through a table (false:
// not worth it, nothing written).
bool tabulated_backward(const at::Tensor& x, const at::Tensor& G, at::Tensor* dx,
                        const HostConsts& h, Flags v, std::vector<double>& da,
                        std::vector<double>& du, double& sg) {
  const int64_t n = x.numel(), K = static_cast<int64_t>(h.a.size());
  if (g_tabulate.load() == 0 || n == 0) return false;
  const float* xp = x.data_ptr<float>();
  const float* gp = G.data_ptr<float>();
  const Grid grid = plan_grid(range_parallel(xp, gp, n), n, h.a.data(), h.s.data(), K, false);
  if (grid.N == 0) return false;
  Table dtab;
  build_table(grid, h.a.data(), h.s.data(), h.g.data(), K, true, &dtab);
  const int64_t chunks = num_chunks(n);
  const int64_t per = (chunks + kSpreadSegments - 1) / kSpreadSegments;
  const int64_t segments = (chunks + per - 1) / per;
  const int64_t width = 4 * grid.N;  // moments per segment
  std::vector<double> H(static_cast<size_t>(segments * width), 0.0);
  std::vector<double> sums(static_cast<size_t>(segments), 0.0);
  float* dxp = dx != nullptr ? dx->data_ptr<float>() : nullptr;
  for_each_chunk(segments, [&](int64_t seg) {
    const int64_t off = seg * per * kChunk;
    table_backward(xp + off, gp + off, dxp != nullptr ? dxp + off : nullptr,
                   std::min(per * kChunk, n - off), dtab, v.residual, &H[seg * width],
                   &sums[seg]);
  });
  for (int64_t seg = 1; seg < segments; ++seg) {
    for (int64_t j = 0; j < width; ++j) H[j] += H[seg * width + j];
  }
  sg = 0.0;
  for (int64_t seg = 0; seg < segments; ++seg) sg += sums[seg];
  std::vector<double> W(static_cast<size_t>(grid.N + 3), 0.0);
  spread_moments(grid, H.data(), W.data());
  da.assign(K, 0.0);
  du.assign(K, 0.0);
  table_reduce(grid, W.data(), h.s.data(), h.g.data(), K, da.data(), du.data());
  g_tabulated.fetch_add(1);
  return true;
}

void check_inputs(const at::Tensor& m, const at::Tensor& a, const at::Tensor& beta,
                  const at::Tensor& g, int basis, double scale) {
  TORCH_CHECK(basis >= kSinc && basis <= kBSpline, "phiop: unknown basis ", basis);
  TORCH_CHECK(std::isfinite(scale) && scale > 0, "phiop: scale must be finite and > 0");
  TORCH_CHECK(m.scalar_type() == at::kFloat || m.scalar_type() == at::kDouble,
              "phiop: M must be float32 or float64, got ", m.scalar_type());
  for (const at::Tensor* t : {&a, &beta, &g}) {
    TORCH_CHECK(t->dim() == 1 && t->numel() == a.numel(),
                "phiop: amplitude, bandwidth_raw and grid must be 1-D of one length K");
    TORCH_CHECK(t->scalar_type() == m.scalar_type(), "phiop: K-vectors must have M's dtype");
    TORCH_CHECK(t->device() == m.device(), "phiop: K-vectors must be on M's device");
  }
  TORCH_CHECK(a.numel() >= 1, "phiop: K must be >= 1");
}

at::Tensor phi_forward_tensor(const at::Tensor& m_in, const at::Tensor& a, const at::Tensor& beta,
                              const at::Tensor& g, int basis, double scale, Flags v) {
  const at::Tensor m = m_in.contiguous();
  at::Tensor y = at::empty_like(m, at::MemoryFormat::Contiguous);
  if (m.is_cuda()) {
    cuda_forward(m, y, a, beta, g, basis, scale, v.centred, v.residual);
    return y;
  }
  TORCH_CHECK(m.is_cpu(), "phiop: unsupported device ", m.device());
  const HostConsts h = host_consts(a, beta, g, scale);
  if (m.scalar_type() == at::kFloat) {
    if (basis != kSinc || !tabulated_forward(m, y, h, v)) forward_cpu<float>(m, y, h, basis, v);
  } else {
    forward_cpu<double>(m, y, h, basis, v);
  }
  return y;
}

class PhiFunction : public torch::autograd::Function<PhiFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& m, const at::Tensor& a,
                            const at::Tensor& beta, const at::Tensor& g, int64_t basis,
                            double scale, int64_t flags) {
    ctx->save_for_backward({m, a, beta, g});
    ctx->saved_data["basis"] = basis;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["flags"] = flags;
    return phi_forward_tensor(m, a, beta, g, static_cast<int>(basis), scale, Flags::of(flags));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    sync_num_threads();
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor m = saved[0].contiguous();
    const at::Tensor& a = saved[1];
    const at::Tensor& beta = saved[2];
    const at::Tensor& g = saved[3];
    const int basis = static_cast<int>(ctx->saved_data["basis"].toInt());
    const double scale = ctx->saved_data["scale"].toDouble();
    const Flags v = Flags::of(ctx->saved_data["flags"].toInt());
    if (!grad_outputs[0].defined()) {
      return variable_list(7);  // no gradients
    }
    const at::Tensor G = grad_outputs[0].to(m.scalar_type()).contiguous();
    const bool need_m = ctx->needs_input_grad(0);

    at::Tensor dm = need_m ? at::empty_like(m, at::MemoryFormat::Contiguous) : at::Tensor();
    at::Tensor da, dbeta;
    if (m.is_cuda()) {
      cuda_backward(m, G, need_m ? &dm : nullptr, a, beta, g, basis, scale, v.centred,
                    v.residual, da, dbeta);
    } else {
      const HostConsts h = host_consts(a, beta, g, scale);
      std::vector<double> sa, su;
      double sg = 0.0;
      if (m.scalar_type() == at::kFloat) {
        at::Tensor* dmp = need_m ? &dm : nullptr;
        if (basis != kSinc || !tabulated_backward(m, G, dmp, h, v, sa, su, sg)) {
          backward_cpu<float>(m, G, dmp, h, basis, v, sa, su, sg);
        }
      } else {
        backward_cpu<double>(m, G, need_m ? &dm : nullptr, h, basis, v, sa, su, sg);
      }
      if (v.centred) {
        // -phi(0) = -sum_k a_k f(t0_k), t0_k = -s_k g_k: its da_k is -f(t0_k) Sum G and
        // its db_k is a_k c g_k f'(t0_k) Sum G (f, f' in double).
        for (size_t k = 0; k < sa.size(); ++k) {
          double f0, fp0;
          basis_at(basis, -h.s[k] * h.g[k], &f0, &fp0);
          sa[k] -= f0 * sg;
          su[k] += h.g[k] * fp0 * sg;
        }
      }
      const int64_t K = a.numel();
      at::Tensor da_h = at::empty({K}, at::kDouble);
      at::Tensor dbeta_h = at::empty({K}, at::kDouble);
      double* da_p = da_h.data_ptr<double>();
      double* dbeta_p = dbeta_h.data_ptr<double>();
      for (int64_t k = 0; k < K; ++k) {
        da_p[k] = sa[k];  // dL/da_k = sum G f(t)
        // dL/dbeta_k = dL/db_k sigmoid(beta_k),  dL/db_k = a_k c sum G (x - g_k) f'(t)
        dbeta_p[k] = h.a[k] * scale * su[k] * h.sig[k];
      }
      da = da_h.to(a.scalar_type());
      dbeta = dbeta_h.to(beta.scalar_type());
    }
    return {dm, da, dbeta, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

template <typename F>
char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const c10::Error& e) {
    return copy_message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return copy_message(e.what());
  } catch (...) {
    return copy_message("phiop: unknown C++ exception");
  }
}

}  // namespace
}  // namespace phiop

extern "C" {

char* phiop_apply(void* m, void* amplitude, void* bandwidth_raw, void* grid, int basis,
                  double scale, int centred, int residual, void** out) {
  return phiop::guarded([&] {
    *out = nullptr;
    const at::Tensor& mt = *static_cast<at::Tensor*>(m);
    const at::Tensor& at_a = *static_cast<at::Tensor*>(amplitude);
    const at::Tensor& at_beta = *static_cast<at::Tensor*>(bandwidth_raw);
    const at::Tensor& at_g = *static_cast<at::Tensor*>(grid);
    phiop::check_inputs(mt, at_a, at_beta, at_g, basis, scale);
    phiop::sync_num_threads();
    const phiop::Flags v{centred != 0 || residual != 0, residual != 0};
    at::Tensor y = phiop::PhiFunction::apply(mt, at_a, at_beta, at_g,
                                             static_cast<int64_t>(basis), scale,
                                             v.bits());
    *out = new at::Tensor(std::move(y));
  });
}

char* phiop_set_num_threads(int n) {
  return phiop::guarded([&] {
    TORCH_CHECK(n >= 1, "phiop: thread count must be >= 1, got ", n);
    at::set_num_threads(n);
    phiop::g_num_threads.store(n);
  });
}

int phiop_num_threads(void) {
  try {
    phiop::sync_num_threads();
    return at::get_num_threads();
  } catch (...) {
    return 1;
  }
}

int phiop_set_tabulate(int on) { return phiop::g_tabulate.exchange(on != 0 ? 1 : 0); }

int64_t phiop_tabulated_calls(void) { return phiop::g_tabulated.load(); }

int phiop_has_cuda(void) { return phiop::kHasCuda ? 1 : 0; }

int phiop_cuda_available(void) {
  try {
    return at::hasCUDA() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

const char* phiop_torch_version(void) { return TORCH_VERSION; }

}  // extern "C"
