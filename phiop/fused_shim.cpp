// fused_shim.cpp: a decoder block's RMSNorm and SwiGLU product as one autograd
// node each, keeping for backward only what their backward cannot recompute
// cheaply.
//
//   RMSNorm:  y = w * cast(x32 * inv),  inv = rsqrt(mean(x32^2) + eps),  x32 = upcast(x)
//   SwiGLU:   y = silu(g) * u
//
// Composed op by op, autograd keeps the normalised x32 * inv (the weight's
// product saves it) and silu(g) (the product with u saves it): one tensor of
// the hidden size per norm and one of the intermediate size per MLP, per token,
// for every block until its backward. These nodes keep x and inv (one value
// per row), and g and u, which the block holds anyway; backward recomputes the
// rest, a few elementwise passes. Forward runs the composed ops themselves, so
// the values are the same bits.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <utility>

#include "phi_tensor.h"
#include "phiop.h"

namespace phiop {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// upcast is the dtype a norm computes in: float64 for float64, float32 otherwise.
at::ScalarType upcast(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// rms_inv is rsqrt(mean(x32^2) + eps) over the last dimension, kept as size 1.
at::Tensor rms_inv(const at::Tensor& x32, double eps) {
  return x32.square().mean({-1}, true, x32.scalar_type()).add(eps).rsqrt();
}

class RMSNormFunction : public torch::autograd::Function<RMSNormFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            double eps) {
    const at::Tensor x32 = x.to(upcast(x.scalar_type()));
    at::Tensor inv = rms_inv(x32, eps);
    at::Tensor y = w.mul(x32.mul(inv).to(x.scalar_type()));
    ctx->save_for_backward({x, w, inv});
    return y;
  }

  // With n = x32 * inv and G the gradient of n (G = upcast(g * w)):
  //   dx32 = inv * (G - n * mean(G * n)),   dw = sum over rows of g * cast(n).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &inv = saved[2];
    const at::Tensor& g = grads[0];
    const at::Tensor x32 = x.to(upcast(x.scalar_type()));
    const at::Tensor n = x32.mul(inv);
    at::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      const at::Tensor G = g.mul(w).to(x.scalar_type()).to(x32.scalar_type());
      const at::Tensor dot = G.mul(n).mean({-1}, true);
      dx = G.sub(n.mul(dot)).mul_(inv).to(x.scalar_type());
    }
    if (ctx->needs_input_grad(1)) {
      at::Tensor gn = g.mul(n.to(x.scalar_type()));
      dw = gn.reshape({-1, gn.size(-1)}).sum(0).to(w.scalar_type());
    }
    return {dx, dw, at::Tensor()};
  }
};

class SwiGLUFunction : public torch::autograd::Function<SwiGLUFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, const at::Tensor& u) {
    ctx->save_for_backward({g, u});
    return at::silu(g).mul(u);
  }

  // The composed ops' own backward, silu(g) recomputed: du = dy * silu(g),
  // dg = silu_backward(dy * u, g).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &g = saved[0], &u = saved[1];
    const at::Tensor& dy = grads[0];
    at::Tensor dg, du;
    if (ctx->needs_input_grad(1)) du = dy.mul(at::silu(g));
    if (ctx->needs_input_grad(0)) dg = at::silu_backward(dy.mul(u), g);
    return {dg, du};
  }
};

}  // namespace
}  // namespace phiop

extern "C" {

char* phiop_rms_norm(void* x, void* weight, double eps, void** out) {
  return phiop::guarded([&] {
    *out = nullptr;
    const at::Tensor& xt = *static_cast<at::Tensor*>(x);
    const at::Tensor& w = *static_cast<at::Tensor*>(weight);
    TORCH_CHECK(at::isFloatingType(xt.scalar_type()), "phiop: rms norm: x must be a float tensor, got ",
                xt.scalar_type());
    TORCH_CHECK(w.dim() == 1 && xt.dim() >= 1 && xt.size(-1) == w.size(0), "phiop: rms norm: x ",
                xt.sizes(), " does not end in the weight's size ", w.sizes());
    TORCH_CHECK(w.device() == xt.device(), "phiop: rms norm: x and weight on different devices");
    TORCH_CHECK(std::isfinite(eps) && eps >= 0, "phiop: rms norm: eps must be finite and >= 0");
    phiop::sync_num_threads();
    *out = new at::Tensor(phiop::RMSNormFunction::apply(xt, w, eps));
  });
}

char* phiop_swiglu(void* gate, void* up, void** out) {
  return phiop::guarded([&] {
    *out = nullptr;
    const at::Tensor& g = *static_cast<at::Tensor*>(gate);
    const at::Tensor& u = *static_cast<at::Tensor*>(up);
    TORCH_CHECK(g.sizes() == u.sizes(), "phiop: swiglu: gate ", g.sizes(), " and up ", u.sizes(),
                " differ in shape");
    TORCH_CHECK(g.scalar_type() == u.scalar_type() && at::isFloatingType(g.scalar_type()),
                "phiop: swiglu: gate and up must share one float dtype");
    TORCH_CHECK(g.device() == u.device(), "phiop: swiglu: gate and up on different devices");
    phiop::sync_num_threads();
    *out = new at::Tensor(phiop::SwiGLUFunction::apply(g, u));
  });
}

}  // extern "C"
