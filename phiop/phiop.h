/* phiop.h: the C interface between Go (cgo.go) and the C++ shim (phi_shim.cpp).
 *
 * Tensor handles are torch::Tensor* passed as void*, the same handles gotch
 * uses. Functions that can fail return NULL on success and otherwise an error
 * message allocated with malloc, which the caller frees.
 */
#ifndef PHIOP_PHIOP_H
#define PHIOP_PHIOP_H

#ifdef __cplusplus
extern "C" {
#endif

/* phiop_apply sets *out to a new torch::Tensor* holding phi(m), with a fused
 * autograd node when grad mode is on and an input requires grad. centred != 0
 * subtracts phi(0); residual != 0 adds m and implies centred (the Variant of
 * variant.go). */
char* phiop_apply(void* m, void* amplitude, void* bandwidth_raw, void* grid,
                  int basis, double scale, int centred, int residual, void** out);

/* phiop_set_num_threads sets libtorch's intra-op thread count (n >= 1). */
char* phiop_set_num_threads(int n);

/* phiop_num_threads reports libtorch's intra-op thread count on this thread. */
int phiop_num_threads(void);

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
