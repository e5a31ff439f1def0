// lean_shim.cpp: an LR-LoRA layer as one autograd node that keeps no
// d_out x d_in tensor between forward and backward.
//
//   y = x W_eff^T + bias,   W_eff = W0 + cast(alpha phi_v(B A))
//
// Composed op by op (lrlora's default path), autograd saves M = B A for phi's
// backward and W_eff for the product's; here the node saves x, W0, B, A and the
// K-vectors, and backward recomputes M and W_eff before it runs the same
// gradient products: dW_eff = G^T x, phi's fused backward on (M, alpha dW_eff),
// dB = dM A^T, dA = B^T dM, and dx = G W_eff. phi(M) for W_eff comes out of
// phi's backward pass where the K-term kernels run (they evaluate every term
// anyway, and sum phi in forward's order: the same bits); the tabulated path
// and CUDA run phi's forward for it. The price is one B A and one W0 + dW per
// layer in backward, plus that forward where it runs.
//
// LeanDeltaFunction is the same idea for the merged weight alone (W_eff, or
// Delta W), what lrlora's merged path forms: it keeps B, A and the K-vectors
// instead of M, and backward recomputes B A.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <utility>

#include "phi_tensor.h"
#include "phiop.h"

namespace phiop {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The inputs of the node, in apply's order; needs_input_grad takes these.
enum Input : int { kX, kW0, kBias, kB, kA, kAmp, kBeta, kGrid, kInputs = 12 };

struct Delta {
  const at::Tensor &w0, &b, &a, &amp, &beta, &grid;
  int basis;
  double scale, alpha;
  Flags v;

  // m is B A.
  at::Tensor m() const { return b.mm(a); }

  // dw is alpha phi in B's dtype, phi = phi_v(m) (computed here when not given).
  at::Tensor dw(const at::Tensor& m, at::Tensor phi = at::Tensor()) const {
    at::Tensor d = phi.defined() ? std::move(phi) : phi_forward_tensor(m, amp, beta, grid, basis, scale, v);
    if (alpha != 1.0) d = d.mul(alpha);
    return d;
  }

  // weff is W0 + cast(alpha phi), as lrlora composes it.
  at::Tensor weff(const at::Tensor& m, at::Tensor phi = at::Tensor()) const {
    at::Tensor d = dw(m, std::move(phi));
    if (d.scalar_type() != w0.scalar_type()) d = d.to(w0.scalar_type());
    return w0.add(d);
  }

  // fresh_weff is weff(m()) with two d_out x d_in tensors at most at any time instead
  // of three: M is freed once phi(M) is formed, and alpha and W0 are applied in phi's
  // own buffer. The same bits: x * alpha is the same product in place or not, and
  // W0 + d = d + W0.
  at::Tensor fresh_weff() const {
    at::Tensor d = phi_forward_tensor(m(), amp, beta, grid, basis, scale, v);
    if (alpha != 1.0) d.mul_(alpha);
    if (d.scalar_type() != w0.scalar_type()) d = d.to(w0.scalar_type());
    return d.add_(w0);
  }
};

// dphi is phi's upstream gradient for dW_eff (or dDelta W) G: G in B's dtype, times
// alpha (the cast's and alpha's product backward, in that order).
at::Tensor dphi(at::Tensor G, const at::Tensor& b, double alpha) {
  if (G.scalar_type() != b.scalar_type()) G = G.to(b.scalar_type());
  if (alpha != 1.0) G = G.mul(alpha);
  return G;
}

class LeanLinearFunction : public torch::autograd::Function<LeanLinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w0,
                            const at::Tensor& bias, const at::Tensor& b, const at::Tensor& a,
                            const at::Tensor& amp, const at::Tensor& beta, const at::Tensor& grid,
                            int64_t basis, double scale, int64_t flags, double alpha) {
    // W0 is held as a plain reference, not a saved variable: a sharded backbone
    // releases a block's weights after forward (set_ onto a placeholder, which bumps
    // their version) and points the same tensors at regathered values before backward
    // (model.SetRegather). The bias is not needed in backward.
    ctx->save_for_backward({x, b, a, amp, beta, grid});
    ctx->saved_data["w0"] = w0;
    ctx->saved_data["basis"] = basis;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["flags"] = flags;
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["bias"] = bias.numel() > 0;
    const Delta d{w0, b, a, amp, beta, grid, static_cast<int>(basis), scale, alpha,
                  Flags::of(flags)};
    at::Tensor weff = d.fresh_weff();
    return bias.numel() > 0 ? at::linear(x, weff, bias) : at::linear(x, weff);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    sync_num_threads();
    variable_list grads(kInputs);
    const at::Tensor& G = grad_outputs[0];
    if (!G.defined()) return grads;
    const variable_list s = ctx->get_saved_variables();
    const at::Tensor w0 = ctx->saved_data["w0"].toTensor();
    const at::Tensor &x = s[0], &b = s[1], &a = s[2];
    const Delta d{w0, b, a, s[3], s[4], s[5],
                  static_cast<int>(ctx->saved_data["basis"].toInt()),
                  ctx->saved_data["scale"].toDouble(), ctx->saved_data["alpha"].toDouble(),
                  Flags::of(ctx->saved_data["flags"].toInt())};
    const int64_t dout = w0.size(0), din = w0.size(1);
    const bool need_dm = ctx->needs_input_grad(kB) || ctx->needs_input_grad(kA);
    const bool need_phi = need_dm || ctx->needs_input_grad(kAmp) || ctx->needs_input_grad(kBeta);
    const bool need_x = ctx->needs_input_grad(kX);
    at::Tensor m = d.m();
    const at::Tensor G2 = G.reshape({-1, dout});
    if (ctx->needs_input_grad(kBias) && ctx->saved_data["bias"].toBool()) {
      grads[kBias] = G2.sum(0);
    }
    at::Tensor phi;  // phi_v(M) from phi's backward pass, for W_eff
    if (need_phi) {
      // dW_eff in W0's dtype.
      at::Tensor gphi = dphi(G2.t().mm(x.reshape({-1, din})), b, d.alpha);
      PhiGrads pg = phi_backward_tensors(m, gphi, need_dm, need_x ? &phi : nullptr, d.amp,
                                         d.beta, d.grid, d.basis, d.scale, d.v);
      gphi = at::Tensor();
      if (ctx->needs_input_grad(kB)) grads[kB] = pg.dm.mm(a.t());
      if (ctx->needs_input_grad(kA)) grads[kA] = b.t().mm(pg.dm);
      if (ctx->needs_input_grad(kAmp)) grads[kAmp] = std::move(pg.da);
      if (ctx->needs_input_grad(kBeta)) grads[kBeta] = std::move(pg.dbeta);
    }
    if (need_x) {
      // W_eff lives only for this product.
      grads[kX] = G.matmul(d.weff(m, std::move(phi)));
    }
    return grads;
  }
};

// The merged weight alone: W_eff = W0 + cast(alpha phi_v(B A)), or without W0
// Delta W = alpha phi_v(B A) in B's dtype, as one node that saves B, A and the
// K-vectors and recomputes M = B A in backward (one rank-r product) instead of
// keeping it. It is lrlora's merged weight in training, per pass and as held for a
// whole optimizer step (lrlora.HoldDelta): composed op by op, phi's node would keep
// M, a d_out x d_in tensor, beside W_eff (and, held, its gradient).
//
// With into (a contiguous tensor of the weight's elements, dtype and device; empty
// for none) the weight is copied there and the node's output is a tensor over into's
// memory (it keeps into's storage alive): data-parallel ranks that exchange the
// weights hold them in one flat buffer, and the node's own copy would be a second.
enum DeltaInput : int { kDW0, kDB, kDA, kDAmp, kDBeta, kDGrid, kDInto, kDeltaInputs = 11 };

class LeanDeltaFunction : public torch::autograd::Function<LeanDeltaFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& w0, const at::Tensor& b,
                            const at::Tensor& a, const at::Tensor& amp, const at::Tensor& beta,
                            const at::Tensor& grid, const at::Tensor& into, int64_t basis,
                            double scale, int64_t flags, double alpha) {
    ctx->save_for_backward({b, a, amp, beta, grid});
    ctx->saved_data["basis"] = basis;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["flags"] = flags;
    ctx->saved_data["alpha"] = alpha;
    const Delta d{w0, b, a, amp, beta, grid, static_cast<int>(basis), scale, alpha,
                  Flags::of(flags)};
    at::Tensor out = w0.numel() > 0 ? d.fresh_weff() : d.dw(d.m());
    if (into.numel() == 0) return out;
    TORCH_CHECK(into.is_contiguous() && into.numel() == out.numel() &&
                    into.scalar_type() == out.scalar_type() && into.device() == out.device(),
                "phiop: lean delta: into has ", into.numel(), " elements of ", into.scalar_type(),
                " on ", into.device(), ", want ", out.numel(), " of ", out.scalar_type(), " on ",
                out.device(), ", contiguous");
    into.view(out.sizes()).copy_(out);
    at::Tensor keep = into;  // the storage stays alive while the output uses it
    return at::from_blob(into.data_ptr(), out.sizes(), [keep](void*) {}, out.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    sync_num_threads();
    variable_list grads(kDeltaInputs);
    const at::Tensor& G = grad_outputs[0];
    const bool need_dm = ctx->needs_input_grad(kDB) || ctx->needs_input_grad(kDA);
    if (!G.defined() || !(need_dm || ctx->needs_input_grad(kDAmp) || ctx->needs_input_grad(kDBeta))) {
      return grads;
    }
    const variable_list s = ctx->get_saved_variables();
    const at::Tensor &b = s[0], &a = s[1];
    PhiGrads pg = phi_backward_tensors(b.mm(a), dphi(G, b, ctx->saved_data["alpha"].toDouble()),
                                       need_dm, nullptr, s[2], s[3], s[4],
                                       static_cast<int>(ctx->saved_data["basis"].toInt()),
                                       ctx->saved_data["scale"].toDouble(),
                                       Flags::of(ctx->saved_data["flags"].toInt()));
    if (ctx->needs_input_grad(kDB)) grads[kDB] = pg.dm.mm(a.t());
    if (ctx->needs_input_grad(kDA)) grads[kDA] = b.t().mm(pg.dm);
    if (ctx->needs_input_grad(kDAmp)) grads[kDAmp] = std::move(pg.da);
    if (ctx->needs_input_grad(kDBeta)) grads[kDBeta] = std::move(pg.dbeta);
    return grads;
  }
};

}  // namespace
}  // namespace phiop

extern "C" {

char* phiop_lean_linear(void* x, void* w0, void* bias, void* b, void* a, void* amplitude,
                        void* bandwidth_raw, void* grid, int basis, double scale, int centred,
                        int residual, double alpha, void** out) {
  return phiop::guarded([&] {
    *out = nullptr;
    const at::Tensor& xt = *static_cast<at::Tensor*>(x);
    const at::Tensor& w = *static_cast<at::Tensor*>(w0);
    // No bias travels as an empty tensor: the node's inputs must all be defined.
    const at::Tensor bt =
        bias != nullptr ? *static_cast<at::Tensor*>(bias) : at::empty({0}, w.options());
    const at::Tensor& bm = *static_cast<at::Tensor*>(b);
    const at::Tensor& am = *static_cast<at::Tensor*>(a);
    const at::Tensor& amp = *static_cast<at::Tensor*>(amplitude);
    const at::Tensor& beta = *static_cast<at::Tensor*>(bandwidth_raw);
    const at::Tensor& g = *static_cast<at::Tensor*>(grid);
    phiop::check_inputs(bm, amp, beta, g, basis, scale);
    TORCH_CHECK(w.dim() == 2 && bm.dim() == 2 && am.dim() == 2,
                "phiop: lean linear: W0, B and A must be 2-D");
    TORCH_CHECK(bm.size(0) == w.size(0) && am.size(1) == w.size(1) && bm.size(1) == am.size(0),
                "phiop: lean linear: B ", bm.sizes(), " · A ", am.sizes(), " does not match W0 ",
                w.sizes());
    TORCH_CHECK(am.scalar_type() == bm.scalar_type() && am.device() == bm.device(),
                "phiop: lean linear: A and B must share dtype and device");
    TORCH_CHECK(w.device() == bm.device(), "phiop: lean linear: W0 and B on different devices");
    TORCH_CHECK(!w.requires_grad(), "phiop: lean linear: W0 must be frozen (requires_grad false)");
    TORCH_CHECK(xt.dim() >= 1 && xt.size(-1) == w.size(1), "phiop: lean linear: x ", xt.sizes(),
                " does not end in d_in = ", w.size(1));
    TORCH_CHECK(std::isfinite(alpha), "phiop: lean linear: alpha must be finite");
    phiop::sync_num_threads();
    const phiop::Flags v{centred != 0 || residual != 0, residual != 0};
    at::Tensor y = phiop::LeanLinearFunction::apply(xt, w, bt, bm, am, amp, beta, g,
                                                    static_cast<int64_t>(basis), scale,
                                                    v.bits(), alpha);
    *out = new at::Tensor(std::move(y));
  });
}

char* phiop_lean_delta(void* w0, void* b, void* a, void* amplitude, void* bandwidth_raw,
                       void* grid, void* into, int basis, double scale, int centred,
                       int residual, double alpha, void** out) {
  return phiop::guarded([&] {
    *out = nullptr;
    const at::Tensor& bm = *static_cast<at::Tensor*>(b);
    const at::Tensor& am = *static_cast<at::Tensor*>(a);
    // No W0 travels as an empty tensor: the node's inputs must all be defined.
    const at::Tensor w =
        w0 != nullptr ? *static_cast<at::Tensor*>(w0) : at::empty({0}, bm.options());
    const at::Tensor& amp = *static_cast<at::Tensor*>(amplitude);
    const at::Tensor& beta = *static_cast<at::Tensor*>(bandwidth_raw);
    const at::Tensor& g = *static_cast<at::Tensor*>(grid);
    const at::Tensor it =
        into != nullptr ? *static_cast<at::Tensor*>(into) : at::empty({0}, bm.options());
    phiop::check_inputs(bm, amp, beta, g, basis, scale);
    TORCH_CHECK(bm.dim() == 2 && am.dim() == 2 && bm.size(1) == am.size(0),
                "phiop: lean delta: B ", bm.sizes(), " · A ", am.sizes(), " is not a product");
    TORCH_CHECK(am.scalar_type() == bm.scalar_type() && am.device() == bm.device(),
                "phiop: lean delta: A and B must share dtype and device");
    if (w0 != nullptr) {
      TORCH_CHECK(w.dim() == 2 && w.size(0) == bm.size(0) && w.size(1) == am.size(1),
                  "phiop: lean delta: B ", bm.sizes(), " · A ", am.sizes(), " does not match W0 ",
                  w.sizes());
      TORCH_CHECK(w.device() == bm.device(), "phiop: lean delta: W0 and B on different devices");
      TORCH_CHECK(!w.requires_grad(), "phiop: lean delta: W0 must be frozen (requires_grad false)");
    }
    TORCH_CHECK(std::isfinite(alpha), "phiop: lean delta: alpha must be finite");
    phiop::sync_num_threads();
    const phiop::Flags v{centred != 0 || residual != 0, residual != 0};
    TORCH_CHECK(into == nullptr || !it.requires_grad(), "phiop: lean delta: into must not require grad");
    at::Tensor d = phiop::LeanDeltaFunction::apply(w, bm, am, amp, beta, g, it,
                                                   static_cast<int64_t>(basis), scale, v.bits(),
                                                   alpha);
    *out = new at::Tensor(std::move(d));
  });
}

}  // extern "C"
