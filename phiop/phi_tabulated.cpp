// phi_tabulated.cpp: the tabulated float32 sinc path over a tensor (phi_table.h
// has the method): the range scan, the tables and the spread run on libtorch's
// threads chunk by chunk, the sums in a fixed order.
#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "phi_cpu.h"
#include "phi_table.h"

namespace phiop {

std::atomic<int> g_tabulate{1};
std::atomic<int64_t> g_tabulated{0};
std::atomic<int64_t> g_cpu_passes{0};

namespace {

// range_parallel scans x (and G) chunk by chunk on libtorch's threads.
Range range_parallel(const float* x, const float* G, int64_t n) {
  const int64_t chunks = num_chunks(n);
  std::vector<Range> part(static_cast<size_t>(chunks));
  for_each_chunk(chunks, [&](int64_t chunk) {
    const int64_t off = chunk * kChunk;
    part[chunk] = range_of(x + off, G != nullptr ? G + off : nullptr, std::min(kChunk, n - off));
  });
  Range r = part[0];
  for (int64_t c = 1; c < chunks; ++c) r = merge(r, part[c]);
  return r;
}

// Segments of the tabulated backward's spread: at most kSpreadSegments, and
// together at most kSpreadDoubles moments (32 MiB at the largest grid), each a
// whole number of chunks, fixed by n and N alone, and summed in segment order,
// so the result does not depend on the thread count.
constexpr int64_t kSpreadSegments = 64;
constexpr int64_t kSpreadDoubles = int64_t(1) << 22;

}  // namespace

bool tabulated_forward(const at::Tensor& x, at::Tensor& y, const HostConsts& h, Flags v) {
  const int64_t n = x.numel(), K = static_cast<int64_t>(h.a.size());
  if (g_tabulate.load() == 0 || n == 0) return false;
  const float* xp = x.data_ptr<float>();
  const Grid grid = plan_grid(range_parallel(xp, nullptr, n), n, h.a.data(), h.s.data(), K,
                              v.centred);
  if (grid.N == 0) return false;
  Table tab;
  build_table(grid, h.a.data(), h.s.data(), h.g.data(), K, false, &tab);
  float offset = 0.0f;
  if (v.centred) {  // phi(0) through the same table and instructions: phi is 0 at x = 0
    const float zero = 0.0f;
    table_forward(&zero, &offset, 1, tab, 0.0f, false);
  }
  float* yp = y.data_ptr<float>();
  for_each_chunk(num_chunks(n), [&](int64_t chunk) {
    const int64_t off = chunk * kChunk;
    table_forward(xp + off, yp + off, std::min(kChunk, n - off), tab, offset, v.residual);
  });
  g_tabulated.fetch_add(1);
  return true;
}

bool tabulated_backward(const at::Tensor& x, const at::Tensor& G, at::Tensor* dx,
                        const HostConsts& h, Flags v, std::vector<double>& da,
                        std::vector<double>& du, double& sg) {
  const int64_t n = x.numel(), K = static_cast<int64_t>(h.a.size());
  if (g_tabulate.load() == 0 || n == 0) return false;
  const float* xp = x.data_ptr<float>();
  const float* gp = G.data_ptr<float>();
  const Grid grid = plan_grid(range_parallel(xp, gp, n), n, h.a.data(), h.s.data(), K, false);
  if (grid.N == 0) return false;
  Table dtab;
  build_table(grid, h.a.data(), h.s.data(), h.g.data(), K, true, &dtab);
  const int64_t chunks = num_chunks(n);
  const int64_t most = std::max<int64_t>(
      1, std::min<int64_t>(kSpreadSegments, kSpreadDoubles / (4 * grid.N)));
  const int64_t per = (chunks + most - 1) / most;
  const int64_t segments = (chunks + per - 1) / per;
  const int64_t width = 4 * grid.N;  // moments per segment
  std::vector<double> H(static_cast<size_t>(segments * width), 0.0);
  std::vector<double> sums(static_cast<size_t>(segments), 0.0);
  float* dxp = dx != nullptr ? dx->data_ptr<float>() : nullptr;
  for_each_chunk(segments, [&](int64_t seg) {
    const int64_t off = seg * per * kChunk;
    table_backward(xp + off, gp + off, dxp != nullptr ? dxp + off : nullptr,
                   std::min(per * kChunk, n - off), dtab, v.residual, &H[seg * width],
                   &sums[seg]);
  });
  for (int64_t seg = 1; seg < segments; ++seg) {
    for (int64_t j = 0; j < width; ++j) H[j] += H[seg * width + j];
  }
  sg = 0.0;
  for (int64_t seg = 0; seg < segments; ++seg) sg += sums[seg];
  std::vector<double> W(static_cast<size_t>(grid.N + 3), 0.0);
  spread_moments(grid, H.data(), W.data());
  da.resize(K);  // table_reduce writes every entry
  du.resize(K);
  table_reduce(grid, W.data(), h.s.data(), h.g.data(), K, da.data(), du.data());
  g_tabulated.fetch_add(1);
  return true;
}

}  // namespace phiop
