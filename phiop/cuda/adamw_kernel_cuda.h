/* adamw_kernel_cuda.h: C entry points of cuda/adamw_kernel.cu (raw device
 * pointers, no torch types). Each returns 0 or a cudaError_t value; stream is a
 * cudaStream_t passed as void*.
 *
 * slots points at the tensor list in device memory (adamw_dev::Slot<float> or
 * Slot<double>, adamw_device.cuh) and chunks at nchunks adamw_dev::Chunk
 * entries covering every element of every slot once. One launch updates every
 * parameter and both moments of the list in place. */
#ifndef PHIOP_ADAMW_KERNEL_CUDA_H
#define PHIOP_ADAMW_KERNEL_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int phiop_cuda_adamw_f32(const void* slots, const void* chunks, int64_t nchunks, void* stream);
int phiop_cuda_adamw_f64(const void* slots, const void* chunks, int64_t nchunks, void* stream);

#ifdef __cplusplus
}
#endif

#endif /* PHIOP_ADAMW_KERNEL_CUDA_H */
