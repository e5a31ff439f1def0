// phi_shim_cuda.cpp: CUDA tensors -> the raw-pointer kernels of
// cuda/phi_kernel.cu. Compiled in every build; the body exists only with
// PHIOP_WITH_CUDA (build tag `cuda`, see cuda.go and the Makefile).
#include "phi_shim_cuda.h"

#ifdef PHIOP_WITH_CUDA
#include <cstdint>

#include <c10/core/GradMode.h> // c10::NoGradGuard: libtorch 2.11 no longer brings at::NoGradGuard in here
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda/phi_kernel_cuda.h"
#endif

namespace phiop {

#ifndef PHIOP_WITH_CUDA

void cuda_forward(const at::Tensor&, at::Tensor&, const at::Tensor&, const at::Tensor&,
                  const at::Tensor&, int, double, bool, bool) {
  TORCH_CHECK(false, "phiop: built without CUDA support");
}

void cuda_backward(const at::Tensor&, const at::Tensor&, at::Tensor*, const at::Tensor&,
                   const at::Tensor&, const at::Tensor&, int, double, bool, bool, at::Tensor&,
                   at::Tensor&) {
  TORCH_CHECK(false, "phiop: built without CUDA support");
}

#else

namespace {

// The K-vectors stay on the device: s = c softplus(beta), as = a s. They are
// derived in double and rounded once to M's dtype, as the CPU path does
// (host_consts in phi_shim.cpp), so that float32 t = s (x - g) is the same float
// on both devices: for large |x| one ulp of s would move sin(pi t) by O(1).
struct DeviceConsts {
  at::Tensor a, g, s, as;
  at::Tensor s_d;  // s in double, for the centred variants' t0 = -s g
};

DeviceConsts device_consts(const at::Tensor& a, const at::Tensor& beta, const at::Tensor& g,
                           double scale) {
  c10::NoGradGuard no_grad;
  const at::ScalarType dtype = a.scalar_type();
  const at::Tensor a_d = a.detach().to(at::kDouble);
  const at::Tensor s_d = at::softplus(beta.detach().to(at::kDouble)) * scale;
  DeviceConsts c;
  c.a = a.detach().contiguous();
  c.g = g.detach().contiguous();
  c.s = s_d.to(dtype).contiguous();
  c.as = (a_d * s_d).to(dtype).contiguous();
  c.s_d = s_d;
  return c;
}

void* current_stream() {
  return static_cast<void*>(c10::cuda::getCurrentCUDAStream().stream());
}

// The kernels take K as an int; they stage the K-vectors in shared memory when
// they fit and read them from global memory otherwise, so any K works.
void check_k(int64_t K) {
  TORCH_CHECK(K <= INT32_MAX, "phiop: K = ", K, " is too large for the CUDA kernels (max ",
              INT32_MAX, ")");
}

void check(int code, const char* what) {
  TORCH_CHECK(code == 0, "phiop: CUDA ", what, " failed: ", phiop_cuda_error_string(code));
}

// forward_launch runs the forward kernel of x's dtype: y = phi(x) - *offset
// (offset a one-element device tensor, or undefined for none) [+ x].
void forward_launch(const at::Tensor& x, at::Tensor& y, const DeviceConsts& c, int basis,
                    const at::Tensor& offset, bool residual) {
  const int K = static_cast<int>(c.a.numel());
  const int res = residual ? 1 : 0;
  if (x.scalar_type() == at::kFloat) {
    check(phiop_cuda_forward_f32(x.data_ptr<float>(), y.data_ptr<float>(), x.numel(), basis, K,
                                 c.a.data_ptr<float>(), c.s.data_ptr<float>(),
                                 c.g.data_ptr<float>(),
                                 offset.defined() ? offset.data_ptr<float>() : nullptr, res,
                                 current_stream()),
          "forward");
  } else {
    check(phiop_cuda_forward_f64(x.data_ptr<double>(), y.data_ptr<double>(), x.numel(), basis, K,
                                 c.a.data_ptr<double>(), c.s.data_ptr<double>(),
                                 c.g.data_ptr<double>(),
                                 offset.defined() ? offset.data_ptr<double>() : nullptr, res,
                                 current_stream()),
          "forward");
  }
}

}  // namespace

void cuda_forward(const at::Tensor& m, at::Tensor& y, const at::Tensor& a, const at::Tensor& beta,
                  const at::Tensor& g, int basis, double scale, bool centred, bool residual) {
  const c10::cuda::CUDAGuard guard(m.device());
  check_k(a.numel());
  const DeviceConsts c = device_consts(a, beta, g, scale);
  at::Tensor phi0;  // undefined: no offset
  if (centred) {
    // phi(0) by the same kernel on a one-element zero, left on the device for the
    // main launch (same stream, so ordered): a zero entry of m gives exactly 0.
    const at::Tensor zero = at::zeros({1}, m.options());
    phi0 = at::empty({1}, m.options());
    forward_launch(zero, phi0, c, basis, at::Tensor(), false);
  }
  forward_launch(m, y, c, basis, phi0, residual);
}

void cuda_backward(const at::Tensor& m, const at::Tensor& G, at::Tensor* dm, const at::Tensor& a,
                   const at::Tensor& beta, const at::Tensor& g, int basis, double scale,
                   bool centred, bool residual, at::Tensor& da, at::Tensor& dbeta) {
  const c10::cuda::CUDAGuard guard(m.device());
  check_k(a.numel());
  const DeviceConsts c = device_consts(a, beta, g, scale);
  const int K = static_cast<int>(a.numel());
  const auto dopts = m.options().dtype(at::kDouble);
  at::Tensor work = at::empty({phiop_cuda_backward_workspace(m.numel(), K)}, dopts);
  at::Tensor sa = at::empty({K}, dopts);
  at::Tensor su = at::empty({K}, dopts);
  // Centred: t0_k = -s_k g_k and g_k in double, where the reduce kernel evaluates f, f'.
  at::Tensor t0, gd;
  if (centred) {
    c10::NoGradGuard no_grad;
    gd = g.detach().to(at::kDouble).contiguous();
    t0 = (-(c.s_d * gd)).contiguous();
  }
  const double* t0p = centred ? t0.data_ptr<double>() : nullptr;
  const double* gdp = centred ? gd.data_ptr<double>() : nullptr;
  const int res = residual ? 1 : 0;
  if (m.scalar_type() == at::kFloat) {
    check(phiop_cuda_backward_f32(m.data_ptr<float>(), G.data_ptr<float>(),
                                  dm != nullptr ? dm->data_ptr<float>() : nullptr, m.numel(),
                                  basis, K, c.s.data_ptr<float>(), c.g.data_ptr<float>(),
                                  c.as.data_ptr<float>(), res, t0p, gdp, work.data_ptr<double>(),
                                  sa.data_ptr<double>(), su.data_ptr<double>(), current_stream()),
          "backward");
  } else {
    check(phiop_cuda_backward_f64(m.data_ptr<double>(), G.data_ptr<double>(),
                                  dm != nullptr ? dm->data_ptr<double>() : nullptr, m.numel(),
                                  basis, K, c.s.data_ptr<double>(), c.g.data_ptr<double>(),
                                  c.as.data_ptr<double>(), res, t0p, gdp, work.data_ptr<double>(),
                                  sa.data_ptr<double>(), su.data_ptr<double>(), current_stream()),
          "backward");
  }
  c10::NoGradGuard no_grad;
  const at::Tensor beta_d = beta.detach().to(at::kDouble);
  da = sa.to(a.scalar_type());
  // dL/dbeta_k = a_k c sum G (x - g_k) f'(t) * sigmoid(beta_k)
  dbeta = (a.detach().to(at::kDouble) * scale * su * at::sigmoid(beta_d)).to(beta.scalar_type());
}

#endif  // PHIOP_WITH_CUDA

}  // namespace phiop
