// phi_shim_cuda.h: the CUDA half of the shim. Without PHIOP_WITH_CUDA (the
// `cuda` build tag sets it) both functions throw "built without CUDA support".
#ifndef PHIOP_PHI_SHIM_CUDA_H
#define PHIOP_PHI_SHIM_CUDA_H

#include <ATen/ATen.h>

namespace phiop {

#ifdef PHIOP_WITH_CUDA
constexpr bool kHasCuda = true;
#else
constexpr bool kHasCuda = false;
#endif

// cuda_forward writes phi(m) into y (both contiguous, same CUDA device); centred
// subtracts phi(0), residual adds m (phi_shim.cpp's Flags).
void cuda_forward(const at::Tensor& m, at::Tensor& y, const at::Tensor& a, const at::Tensor& beta,
                  const at::Tensor& g, int basis, double scale, bool centred, bool residual);

// cuda_backward writes dm (when not null), da and dbeta for upstream gradient G.
void cuda_backward(const at::Tensor& m, const at::Tensor& G, at::Tensor* dm, const at::Tensor& a,
                   const at::Tensor& beta, const at::Tensor& g, int basis, double scale,
                   bool centred, bool residual, at::Tensor& da, at::Tensor& dbeta);

}  // namespace phiop

#endif  // PHIOP_PHI_SHIM_CUDA_H
