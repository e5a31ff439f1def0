// backward_shim.cpp: back-propagation from several outputs with given gradients
// (torch::autograd::backward with grad_tensors), which gotch does not expose.
// lrlora uses it to run the merged ΔW's backward once per optimizer step with the
// gradient its micro-batches accumulated. phiop_set_grad points a leaf's .grad at a
// tensor of the caller's (a slot of a buffer that a collective then reads).
#include <torch/csrc/autograd/autograd.h>

#include <vector>

#include "phi_tensor.h"
#include "phiop.h"

extern "C" {

char* phiop_backward(void** outputs, void** grads, int64_t n) {
  return phiop::guarded([&] {
    TORCH_CHECK(n >= 0, "phiop: backward: negative count ", n);
    std::vector<at::Tensor> outs, gs;
    outs.reserve(n);
    gs.reserve(n);
    for (int64_t i = 0; i < n; ++i) {
      TORCH_CHECK(outputs[i] != nullptr && grads[i] != nullptr, "phiop: backward: entry ", i,
                  " is null");
      const at::Tensor& o = *static_cast<at::Tensor*>(outputs[i]);
      const at::Tensor& g = *static_cast<at::Tensor*>(grads[i]);
      TORCH_CHECK(o.defined() && g.defined(), "phiop: backward: entry ", i, " is undefined");
      TORCH_CHECK(o.requires_grad(), "phiop: backward: output ", i, " records no graph");
      TORCH_CHECK(o.sizes() == g.sizes(), "phiop: backward: entry ", i, ": output ", o.sizes(),
                  " but gradient ", g.sizes());
      TORCH_CHECK(o.scalar_type() == g.scalar_type() && o.device() == g.device(),
                  "phiop: backward: entry ", i, ": gradient ", g.scalar_type(), " on ",
                  g.device(), " for an output ", o.scalar_type(), " on ", o.device());
      outs.push_back(o);
      gs.push_back(g);
    }
    if (outs.empty()) return;
    phiop::sync_num_threads();
    torch::autograd::backward(outs, gs);
  });
}

char* phiop_set_grad(void* leaf, void* grad) {
  return phiop::guarded([&] {
    TORCH_CHECK(leaf != nullptr && grad != nullptr, "phiop: set grad: null tensor");
    at::Tensor& t = *static_cast<at::Tensor*>(leaf);
    const at::Tensor& g = *static_cast<at::Tensor*>(grad);
    TORCH_CHECK(t.defined() && g.defined(), "phiop: set grad: undefined tensor");
    TORCH_CHECK(t.is_leaf() && t.requires_grad(), "phiop: set grad: not a leaf that requires grad");
    TORCH_CHECK(t.sizes() == g.sizes() && t.scalar_type() == g.scalar_type() &&
                    t.device() == g.device(),
                "phiop: set grad: gradient ", g.sizes(), " ", g.scalar_type(), " on ", g.device(),
                " for a leaf ", t.sizes(), " ", t.scalar_type(), " on ", t.device());
    TORCH_CHECK(!g.requires_grad(), "phiop: set grad: the gradient records a graph");
    t.mutable_grad() = g;
  });
}

}  // extern "C"
