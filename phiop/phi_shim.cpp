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
#include "phi_cpu.h"
#include "phi_tensor.h"
#include "phiop.h"

namespace phiop {

// Thread count requested through phiop_set_num_threads; 0 until then. OpenMP
// keeps the count per OS thread, so calls made from another thread re-apply it.
std::atomic<int> g_num_threads{0};

void sync_num_threads() {
  const int want = g_num_threads.load();
  if (want > 0 && at::get_num_threads() != want) at::set_num_threads(want);
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
  g_cpu_passes.fetch_add(1);
  if (m.scalar_type() == at::kFloat) {
    if (basis != kSinc || !tabulated_forward(m, y, h, v)) forward_cpu<float>(m, y, h, basis, v);
  } else {
    forward_cpu<double>(m, y, h, basis, v);
  }
  return y;
}

PhiGrads phi_backward_tensors(const at::Tensor& m_in, const at::Tensor& G_in, bool need_m,
                              at::Tensor* value, const at::Tensor& a, const at::Tensor& beta,
                              const at::Tensor& g, int basis, double scale, Flags v) {
  const at::Tensor m = m_in.contiguous();
  const at::Tensor G = G_in.to(m.scalar_type()).contiguous();
  PhiGrads out;
  if (need_m) out.dm = at::empty_like(m, at::MemoryFormat::Contiguous);
  if (m.is_cuda()) {
    cuda_backward(m, G, need_m ? &out.dm : nullptr, a, beta, g, basis, scale, v.centred,
                  v.residual, out.da, out.dbeta);
    if (value != nullptr) *value = phi_forward_tensor(m, a, beta, g, basis, scale, v);
    return out;
  }
  const HostConsts h = host_consts(a, beta, g, scale);
  g_cpu_passes.fetch_add(1);
  std::vector<double> sa, su;
  double sg = 0.0;
  at::Tensor* dmp = need_m ? &out.dm : nullptr;
  // The K-term kernels write phi's value beside the gradients: its tensor is made
  // only when they run.
  auto value_out = [&]() -> at::Tensor* {
    if (value == nullptr) return nullptr;
    *value = at::empty_like(m, at::MemoryFormat::Contiguous);
    return value;
  };
  if (m.scalar_type() == at::kFloat) {
    if (basis == kSinc && tabulated_backward(m, G, dmp, h, v, sa, su, sg)) {
      if (value != nullptr) *value = phi_forward_tensor(m, a, beta, g, basis, scale, v);
    } else {
      backward_cpu<float>(m, G, dmp, value_out(), h, basis, v, sa, su, sg);
    }
  } else {
    backward_cpu<double>(m, G, dmp, value_out(), h, basis, v, sa, su, sg);
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
  out.da = da_h.to(a.scalar_type());
  out.dbeta = dbeta_h.to(beta.scalar_type());
  return out;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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
    PhiGrads d = phi_backward_tensors(m, grad_outputs[0], ctx->needs_input_grad(0), nullptr, a,
                                      beta, g, basis, scale, v);
    return {d.dm, d.da, d.dbeta, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

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

void phiop_pass_counts(int64_t* all, int64_t* tabulated) {
  *all = phiop::g_cpu_passes.load();
  *tabulated = phiop::g_tabulated.load();
}

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
