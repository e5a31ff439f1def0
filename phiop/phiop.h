/* phiop.h: the C interface between Go (cgo.go) and the C++ shim (phi_shim.cpp).
 *
 * Tensor handles are torch::Tensor* passed as void*, the same handles gotch
 * uses. Functions that can fail return NULL on success and otherwise an error
 * message allocated with malloc, which the caller frees.
 */
#ifndef PHIOP_PHIOP_H
#define PHIOP_PHIOP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* phiop_apply sets *out to a new torch::Tensor* holding phi(m), with a fused
 * autograd node when grad mode is on and an input requires grad. centred != 0
 * subtracts phi(0); residual != 0 adds m and implies centred (the Variant of
 * variant.go). */
char* phiop_apply(void* m, void* amplitude, void* bandwidth_raw, void* grid,
                  int basis, double scale, int centred, int residual, void** out);

/* phiop_lean_linear sets *out to x (W0 + cast(alpha phi(b a)))^T + bias as one
 * autograd node that recomputes b a and W_eff in backward instead of keeping
 * them (lean.go). bias may be NULL. */
char* phiop_lean_linear(void* x, void* w0, void* bias, void* b, void* a, void* amplitude,
                        void* bandwidth_raw, void* grid, int basis, double scale, int centred,
                        int residual, double alpha, void** out);

/* phiop_lean_delta sets *out to W0 + cast(alpha phi(b a)), or alpha phi(b a) when
 * w0 is NULL, as one autograd node that recomputes b a in backward instead of
 * keeping it (lean.go). With into not NULL the values are copied there and *out
 * uses into's memory. */
char* phiop_lean_delta(void* w0, void* b, void* a, void* amplitude, void* bandwidth_raw,
                       void* grid, void* into, int basis, double scale, int centred,
                       int residual, double alpha, void** out);

/* phiop_rms_norm sets *out to weight * cast(x32 rsqrt(mean(x32^2) + eps)) over x's
 * last dimension (x32: x in float32, or float64 for float64), as one autograd node
 * that keeps x and the per-row rsqrt for backward (fused.go). */
char* phiop_rms_norm(void* x, void* weight, double eps, void** out);

/* phiop_swiglu sets *out to silu(gate) * up as one autograd node that keeps gate
 * and up, not silu(gate), for backward (fused.go). */
char* phiop_swiglu(void* gate, void* up, void** out);

/* phiop_backward back-propagates from n outputs (torch::Tensor* each, recording
 * a graph) with the gradients grads[i] (same shape, dtype and device), as
 * torch::autograd::backward does with grad_tensors: gradients accumulate into
 * the leaves' .grad and the graph is freed. */
char* phiop_backward(void** outputs, void** grads, int64_t n);

/* phiop_set_grad makes grad (same shape, dtype and device) the .grad of leaf, a
 * tensor that requires grad and has no graph: later backward passes add into
 * grad's storage in place. */
char* phiop_set_grad(void* leaf, void* grad);

/* Reason codes of phiop_adamw and phiop_adamw_check (phiop/adamw.go). */
#define PHIOP_ADAMW_OK 0
#define PHIOP_ADAMW_NIL 1         /* a tensor is undefined */
#define PHIOP_ADAMW_SHAPE 2       /* an entry's tensors differ in shape */
#define PHIOP_ADAMW_DTYPE 3       /* dtypes differ (within an entry or from entry 0) */
#define PHIOP_ADAMW_DEVICE 4      /* devices differ (within an entry or from entry 0) */
#define PHIOP_ADAMW_UNSUPPORTED 5 /* not float32/float64, not cpu/cuda, not contiguous */
#define PHIOP_ADAMW_HYPER 6       /* a hyper-parameter, learning rate or step is invalid */
#define PHIOP_ADAMW_TORCH 7       /* libtorch or CUDA raised an error */

/* phiop_adamw takes one AdamW step over n entries (parameter, gradient and the
 * two moments, torch::Tensor* each; one dtype and device for all) in place:
 * entry i steps to steps[i] with learning rate lrs[i]. emulate != 0 runs CPU
 * tensors through the host emulation of the CUDA kernel (tests). On a refusal
 * nothing is written, *bad_index is the entry (-1: the call) and *bad_code the
 * reason. */
char* phiop_adamw(void** params, void** grads, void** exp_avgs, void** exp_avg_sqs,
                  const int64_t* steps, const double* lrs, int64_t n, double beta1,
                  double beta2, double eps, double weight_decay, int emulate,
                  int64_t* bad_index, int* bad_code);

/* phiop_adamw_check sets *code to the reason phiop_adamw would refuse one entry
 * (PHIOP_ADAMW_OK: none; then *group keys its dtype and device). */
char* phiop_adamw_check(void* param, void* grad, void* exp_avg, void* exp_avg_sq,
                        int64_t* group, int* code);

/* phiop_set_num_threads sets libtorch's intra-op thread count (n >= 1). */
char* phiop_set_num_threads(int n);

/* phiop_num_threads reports libtorch's intra-op thread count on this thread. */
int phiop_num_threads(void);

/* phiop_set_tabulate allows (on != 0, the default) or forbids the tabulated
 * float32 sinc path on the CPU (phi_table.h) and returns the previous setting. */
int phiop_set_tabulate(int on);

/* phiop_pass_counts reports the op's CPU forward and backward passes so far
 * (*all) and how many of them took the tabulated path (*tabulated). */
void phiop_pass_counts(int64_t* all, int64_t* tabulated);

/* phiop_has_cuda reports whether this build carries the CUDA kernels. */
int phiop_has_cuda(void);

/* phiop_cuda_available reports whether libtorch sees a usable CUDA device. */
int phiop_cuda_available(void);

/* phiop_torch_version is the libtorch version the package was compiled
 * against (a static string). */
const char* phiop_torch_version(void);

#ifdef __cplusplus
}
#endif

#endif /* PHIOP_PHIOP_H */
