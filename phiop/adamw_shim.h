// adamw_shim.h: the multi-tensor AdamW between the C entry points
// (adamw_shim.cpp) and the CUDA half (adamw_shim_cuda.cpp): the validated tensor
// list, and the packing of that list into the Slot/Chunk tables that the CPU
// loop, the CUDA kernel and its host emulation all walk (cuda/adamw_device.cuh).
#ifndef PHIOP_ADAMW_SHIM_H
#define PHIOP_ADAMW_SHIM_H

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cuda/adamw_device.cuh"

namespace phiop {

// AdamWList is one call's tensors (same dtype and device, contiguous, each
// entry's four tensors of one shape) and hyper-parameters, already checked.
struct AdamWList {
  std::vector<at::Tensor> p, g, m, v;
  std::vector<int64_t> steps;  // the step each entry takes, >= 1
  std::vector<double> lrs;     // each entry's learning rate, finite and >= 0
  double beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
};

// AdamWTables is a list packed for the walk: one Slot per entry and chunks of at
// most adamw_dev::kChunk elements covering each slot once, in list order.
template <typename T>
struct AdamWTables {
  std::vector<adamw_dev::Slot<T>> slots;
  std::vector<adamw_dev::Chunk> chunks;
};

// pack_adamw derives each entry's coefficients in double and rounds them once to
// T, as libtorch rounds the optimizer's scalar arguments for a T tensor:
// decay = 1 − lr·λ, w = 1 − β, eps = ε·√bc2, inv = 1/(stepSize·√bc2) with
// stepSize = lr/bc1, bc1 = 1 − β1ᵗ, bc2 = 1 − β2ᵗ.
template <typename T>
AdamWTables<T> pack_adamw(const AdamWList& l) {
  AdamWTables<T> out;
  const size_t n = l.p.size();
  out.slots.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    adamw_dev::Slot<T> s;
    s.p = l.p[i].data_ptr<T>();
    s.g = l.g[i].data_ptr<T>();
    s.m = l.m[i].data_ptr<T>();
    s.v = l.v[i].data_ptr<T>();
    s.n = l.p[i].numel();
    const double t = static_cast<double>(l.steps[i]);
    const double lr = l.lrs[i];
    const double bc1 = 1.0 - std::pow(l.beta1, t);
    const double bc2_sqrt = std::sqrt(1.0 - std::pow(l.beta2, t));
    const double step_size = lr / bc1;
    s.decay = static_cast<T>(1.0 - lr * l.weight_decay);
    s.w1 = static_cast<T>(1.0 - l.beta1);
    s.w2 = static_cast<T>(1.0 - l.beta2);
    s.eps = static_cast<T>(l.eps * bc2_sqrt);
    s.update = step_size != 0.0 ? 1 : 0;
    s.inv = s.update != 0 ? static_cast<T>(1.0 / (step_size * bc2_sqrt)) : T(0);
    out.slots.push_back(s);
    for (int64_t b = 0; b < s.n; b += adamw_dev::kChunk) {
      out.chunks.push_back({static_cast<int64_t>(i), b, std::min(s.n, b + adamw_dev::kChunk)});
    }
  }
  return out;
}

// cuda_adamw runs the list (all on one CUDA device) through adamw_kernel.cu:
// one host-to-device copy of the tables and one launch on the current stream.
// Without PHIOP_WITH_CUDA it throws "built without CUDA support".
void cuda_adamw(const AdamWList& l);

}  // namespace phiop

#endif  // PHIOP_ADAMW_SHIM_H
