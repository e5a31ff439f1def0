/* phi_kernel_cuda.h: C entry points of cuda/phi_kernel.cu (raw device
 * pointers, no torch types). Each returns 0 or a cudaError_t value; stream is
 * a cudaStream_t passed as void*. */
#ifndef PHIOP_PHI_KERNEL_CUDA_H
#define PHIOP_PHI_KERNEL_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[i] = sum_k a[k] f(s[k] (x[i] - g[k])) - offset[0] + [residual] x[i] for i < n;
 * offset is a device pointer to one value (phi(0) of the plain sum, written by a
 * forward call on a one-element zero) or NULL for none. */
int phiop_cuda_forward_f32(const float* x, float* y, int64_t n, int basis, int K,
                           const float* a, const float* s, const float* g, const float* offset,
                           int residual, void* stream);
int phiop_cuda_forward_f64(const double* x, double* y, int64_t n, int basis, int K,
                           const double* a, const double* s, const double* g,
                           const double* offset, int residual, void* stream);

/* Number of doubles of workspace phiop_cuda_backward_* needs. */
int64_t phiop_cuda_backward_workspace(int64_t n, int K);

/* dx[i] = G[i] ([residual] + sum_k as[k] f'(t_ik)) (dx may be NULL),
 * da[k] = sum_i G[i] f(t_ik), du[k] = sum_i G[i] (x[i] - g[k]) f'(t_ik); da and du
 * are device doubles. Centred (t0 and gd, device double K-vectors t0_k = -s_k g_k
 * and g_k, not NULL): da[k] -= f(t0_k) sum_i G[i], du[k] += g_k f'(t0_k) sum_i G[i].
 * Reductions use a fixed tree and block count: results are deterministic. */
int phiop_cuda_backward_f32(const float* x, const float* G, float* dx, int64_t n, int basis,
                            int K, const float* s, const float* g, const float* as, int residual,
                            const double* t0, const double* gd, double* workspace, double* da,
                            double* du, void* stream);
int phiop_cuda_backward_f64(const double* x, const double* G, double* dx, int64_t n, int basis,
                            int K, const double* s, const double* g, const double* as,
                            int residual, const double* t0, const double* gd, double* workspace,
                            double* da, double* du, void* stream);

const char* phiop_cuda_error_string(int code);

#ifdef __cplusplus
}
#endif

#endif /* PHIOP_PHI_KERNEL_CUDA_H */
