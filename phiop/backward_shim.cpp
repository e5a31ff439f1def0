// backward_shim.cpp: back-propagation from several outputs with given gradients
// (torch::autograd::backward with grad_tensors), which gotch does not expose.
// lrlora uses it to run the merged ΔW's backward once per optimizer step with the
// gradient its micro-batches accumulated.
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

}  // extern "C"
