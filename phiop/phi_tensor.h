// phi_tensor.h: the fused transfer function on whole tensors, whatever the device
// (phi_shim.cpp), for the autograd nodes that run it: PhiFunction (phi_shim.cpp)
// and the recomputing adapted layer (lean_shim.cpp). Torch headers; included by
// C++ files of this package only.
#ifndef PHIOP_PHI_TENSOR_H
#define PHIOP_PHI_TENSOR_H

#include <ATen/ATen.h>

#include <exception>

#include "message.h"
#include "phi_cpu.h"

namespace phiop {

// sync_num_threads re-applies the thread count of phiop_set_num_threads on the
// calling OS thread (OpenMP keeps it per thread).
void sync_num_threads();

// check_inputs validates M's dtype, the K-vectors, the basis and the scale.
void check_inputs(const at::Tensor& m, const at::Tensor& a, const at::Tensor& beta,
                  const at::Tensor& g, int basis, double scale);

// phi_forward_tensor returns phi_v(m) as a new contiguous tensor (CPU or CUDA).
at::Tensor phi_forward_tensor(const at::Tensor& m, const at::Tensor& a, const at::Tensor& beta,
                              const at::Tensor& g, int basis, double scale, Flags v);

// PhiGrads are the gradients of phi_v(m) for an upstream gradient G: dm (undefined
// unless asked for), da and dbeta.
struct PhiGrads {
  at::Tensor dm, da, dbeta;
};

// phi_backward_tensors runs the fused backward pass: one pass over m and G. With
// value not null it also sets *value to phi_v(m): from the same pass where the
// K-term kernels run (they evaluate every term anyway), else by phi_forward_tensor.
PhiGrads phi_backward_tensors(const at::Tensor& m, const at::Tensor& G, bool need_m,
                              at::Tensor* value, const at::Tensor& a, const at::Tensor& beta,
                              const at::Tensor& g, int basis, double scale, Flags v);

// guarded runs body and turns any C++ exception into the message a C entry point
// returns (nullptr: success).
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

}  // namespace phiop

#endif  // PHIOP_PHI_TENSOR_H
