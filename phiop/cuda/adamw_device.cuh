// adamw_device.cuh: the element update and the tensor-list walk of the
// multi-tensor AdamW (no torch headers). One source for three users:
//
//   - the CPU op (adamw_shim.cpp): at::parallel_for over the chunks, one lane each;
//   - the CUDA kernel (adamw_kernel.cu): block b takes chunks b, b + gridDim.x, ...,
//     its threads striding through each chunk;
//   - the host emulation of that kernel (adamw_shim.cpp, phiop_adamw_emulated):
//     the kernel's blocks and lanes run one after another on the CPU, so the
//     tests check the device walk over the list on a machine without a GPU.
//
// The update of one element, with per-tensor coefficients (AdamCoeffs below) in
// the parameter's dtype T, is the optimizer's (optim/adamw.go) operation for
// operation:
//
//   p ← p·decay                                 decay = 1 − lr·λ
//   m ← lerp(m, g, w1)                          w1 = 1 − β1
//   v ← lerp(v, g², w2)                         w2 = 1 − β2
//   p ← p − m / ((√v + eps)·inv)                eps = ε·√bc2, inv = 1/(stepSize·√bc2)
//
// with stepSize = lr/bc1, bc1 = 1 − β1ᵗ, bc2 = 1 − β2ᵗ: the same value as
// p − stepSize·m/(√v/√bc2 + ε). lerp is libtorch's (a + w(b − a) for w < 0.5,
// b − (b − a)(1 − w) otherwise). A zero learning rate moves the moments only.
#ifndef PHIOP_ADAMW_DEVICE_CUH
#define PHIOP_ADAMW_DEVICE_CUH

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define PHIOP_HD __host__ __device__ __forceinline__
#else
#define PHIOP_HD inline
#endif

namespace adamw_dev {

// Elements per chunk: the unit of work of one CPU task or one CUDA block.
constexpr int64_t kChunk = 16384;
// Threads per block of the CUDA kernel (and lanes of its emulation).
constexpr int kThreads = 256;

// Slot is one tensor of the list: raw pointers to contiguous data of numel n and
// the tensor's coefficients, rounded once from double to T.
template <typename T>
struct Slot {
  T* p;
  const T* g;
  T* m;
  T* v;
  int64_t n;
  T decay, w1, w2, eps, inv;
  int32_t update;  // 0 for a zero learning rate: p only decays (by 1)
};

// Chunk is elements [begin, end) of slot `slot`.
struct Chunk {
  int64_t slot;
  int64_t begin;
  int64_t end;
};

PHIOP_HD float root(float x) { return sqrtf(x); }
PHIOP_HD double root(double x) { return sqrt(x); }

// lerp is libtorch's scalar-weight lerp, branch for branch.
template <typename T>
PHIOP_HD T lerp(T a, T b, T w) {
  return w < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

// update_element applies the step to element i of s.
template <typename T>
PHIOP_HD void update_element(const Slot<T>& s, int64_t i) {
  const T g = s.g[i];
  const T m = lerp(s.m[i], g, s.w1);
  const T v = lerp(s.v[i], g * g, s.w2);
  T p = s.p[i] * s.decay;
  if (s.update != 0) p = p - m / ((root(v) + s.eps) * s.inv);
  s.m[i] = m;
  s.v[i] = v;
  s.p[i] = p;
}

// run_chunk is lane `lane` of `lanes` walking chunk c: elements begin + lane,
// begin + lane + lanes, ... The lanes of a chunk touch disjoint elements.
template <typename T>
PHIOP_HD void run_chunk(const Slot<T>* slots, const Chunk& c, int64_t lane, int64_t lanes) {
  const Slot<T>& s = slots[c.slot];
  for (int64_t i = c.begin + lane; i < c.end; i += lanes) update_element(s, i);
}

}  // namespace adamw_dev

#endif  // PHIOP_ADAMW_DEVICE_CUH
