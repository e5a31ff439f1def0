// adamw_shim.cpp: the multi-tensor AdamW step (phiop_adamw, phiop_adamw_check).
//
// One call updates a list of parameters and their two moments in place: on the
// CPU one at::parallel_for over the chunks of all tensors, on a CUDA device one
// kernel launch (adamw_shim_cuda.cpp). The element arithmetic is
// cuda/adamw_device.cuh, shared by both and by the host emulation of the CUDA
// walk that the tests run. Every entry is checked before anything is written, so
// a refused list leaves all tensors as they were; refusals come back with the
// entry's index and a reason code (phiop.h) for the Go side to name.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/variable.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "adamw_shim.h"
#include "message.h"
#include "phiop.h"

namespace phiop {
namespace {

// Refusal is a rejected call: the entry's index (-1: the call itself) and code.
struct Refusal {
  int64_t index;
  int code;
  std::string msg;
};

const char* const kRoles[4] = {"param", "grad", "exp_avg", "exp_avg_sq"};

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// check_entry returns 0 when the native op takes the four tensors, otherwise a
// reason code and msg. Mismatches come before the refusals the caller may route
// elsewhere (PHIOP_ADAMW_UNSUPPORTED), so a bad list is never silently rerouted.
int check_entry(const at::Tensor* const t[4], std::string& msg) {
  for (int k = 0; k < 4; ++k) {
    if (t[k] == nullptr || !t[k]->defined()) {
      msg = cat(kRoles[k], " is undefined");
      return PHIOP_ADAMW_NIL;
    }
  }
  const at::Tensor& p = *t[0];
  for (int k = 1; k < 4; ++k) {
    if (t[k]->scalar_type() != p.scalar_type()) {
      msg = cat(kRoles[k], " dtype ", t[k]->scalar_type(), " differs from param dtype ",
                p.scalar_type());
      return PHIOP_ADAMW_DTYPE;
    }
    if (t[k]->device() != p.device()) {
      msg = cat(kRoles[k], " is on ", t[k]->device(), ", param on ", p.device());
      return PHIOP_ADAMW_DEVICE;
    }
    if (t[k]->sizes() != p.sizes()) {
      msg = cat(kRoles[k], " shape ", t[k]->sizes(), " differs from param shape ", p.sizes());
      return PHIOP_ADAMW_SHAPE;
    }
  }
  if (p.scalar_type() != at::kFloat && p.scalar_type() != at::kDouble) {
    msg = cat("dtype ", p.scalar_type(), " is not float32 or float64");
    return PHIOP_ADAMW_UNSUPPORTED;
  }
  if (!p.device().is_cpu() && !p.device().is_cuda()) {
    msg = cat("device ", p.device(), " is not cpu or cuda");
    return PHIOP_ADAMW_UNSUPPORTED;
  }
  for (int k = 0; k < 4; ++k) {
    if (t[k]->layout() != at::kStrided || !t[k]->is_contiguous()) {
      msg = cat(kRoles[k], " is not a contiguous strided tensor");
      return PHIOP_ADAMW_UNSUPPORTED;
    }
  }
  return PHIOP_ADAMW_OK;
}

bool finite_in(double x, double lo, bool lo_open, double hi, bool hi_open) {
  if (!std::isfinite(x)) return false;
  if (lo_open ? !(x > lo) : !(x >= lo)) return false;
  return hi_open ? x < hi : x <= hi;
}

// cpu_adamw runs the chunks in parallel, one lane per chunk.
template <typename T>
void cpu_adamw(const AdamWList& l) {
  const AdamWTables<T> t = pack_adamw<T>(l);
  const adamw_dev::Slot<T>* slots = t.slots.data();
  const adamw_dev::Chunk* chunks = t.chunks.data();
  at::parallel_for(0, static_cast<int64_t>(t.chunks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) adamw_dev::run_chunk<T>(slots, chunks[c], 0, 1);
  });
}

// emulated_cuda_adamw is adamw_kernel.cu on the host: every block's chunk walked
// by kThreads lanes, one after another (the lanes touch disjoint elements).
template <typename T>
void emulated_cuda_adamw(const AdamWList& l) {
  const AdamWTables<T> t = pack_adamw<T>(l);
  for (const adamw_dev::Chunk& c : t.chunks) {
    for (int lane = 0; lane < adamw_dev::kThreads; ++lane) {
      adamw_dev::run_chunk<T>(t.slots.data(), c, lane, adamw_dev::kThreads);
    }
  }
}

// build_list checks the call and every entry; it throws a Refusal.
AdamWList build_list(void** params, void** grads, void** exp_avgs, void** exp_avg_sqs,
                     const int64_t* steps, const double* lrs, int64_t n, double beta1,
                     double beta2, double eps, double weight_decay) {
  if (!finite_in(beta1, 0, false, 1, true) || !finite_in(beta2, 0, false, 1, true) ||
      !finite_in(eps, 0, true, HUGE_VAL, true) ||
      !finite_in(weight_decay, 0, false, HUGE_VAL, true) || n < 0) {
    throw Refusal{-1, PHIOP_ADAMW_HYPER,
                  cat("betas (", beta1, ", ", beta2, ") must lie in [0, 1), eps ", eps,
                      " be finite and > 0, weight decay ", weight_decay,
                      " finite and >= 0, n ", n, " >= 0")};
  }
  AdamWList l;
  l.beta1 = beta1;
  l.beta2 = beta2;
  l.eps = eps;
  l.weight_decay = weight_decay;
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor* t[4] = {
        static_cast<const at::Tensor*>(params[i]), static_cast<const at::Tensor*>(grads[i]),
        static_cast<const at::Tensor*>(exp_avgs[i]), static_cast<const at::Tensor*>(exp_avg_sqs[i])};
    std::string msg;
    const int code = check_entry(t, msg);
    if (code != PHIOP_ADAMW_OK) throw Refusal{i, code, msg};
    if (!finite_in(lrs[i], 0, false, HUGE_VAL, true) || steps[i] < 1) {
      throw Refusal{i, PHIOP_ADAMW_HYPER,
                    cat("learning rate ", lrs[i], " must be finite and >= 0, step ", steps[i],
                        " >= 1")};
    }
    if (i > 0 && t[0]->scalar_type() != l.p.front().scalar_type()) {
      throw Refusal{i, PHIOP_ADAMW_DTYPE,
                    cat("dtype ", t[0]->scalar_type(), " differs from entry 0's ",
                        l.p.front().scalar_type(), " (one call takes one dtype)")};
    }
    if (i > 0 && t[0]->device() != l.p.front().device()) {
      throw Refusal{i, PHIOP_ADAMW_DEVICE,
                    cat("device ", t[0]->device(), " differs from entry 0's ",
                        l.p.front().device(), " (one call takes one device)")};
    }
    l.p.push_back(*t[0]);
    l.g.push_back(*t[1]);
    l.m.push_back(*t[2]);
    l.v.push_back(*t[3]);
    l.steps.push_back(steps[i]);
    l.lrs.push_back(lrs[i]);
  }
  return l;
}

}  // namespace
}  // namespace phiop

extern "C" {

char* phiop_adamw(void** params, void** grads, void** exp_avgs, void** exp_avg_sqs,
                  const int64_t* steps, const double* lrs, int64_t n, double beta1, double beta2,
                  double eps, double weight_decay, int emulate, int64_t* bad_index,
                  int* bad_code) {
  *bad_index = -1;
  *bad_code = PHIOP_ADAMW_OK;
  try {
    const phiop::AdamWList l = phiop::build_list(params, grads, exp_avgs, exp_avg_sqs, steps,
                                                 lrs, n, beta1, beta2, eps, weight_decay);
    if (l.p.empty()) return nullptr;
    const bool f32 = l.p.front().scalar_type() == at::kFloat;
    if (l.p.front().is_cuda()) {
      TORCH_CHECK(emulate == 0, "phiop: the CUDA emulation takes CPU tensors");
      phiop::cuda_adamw(l);
    } else if (emulate != 0) {
      f32 ? phiop::emulated_cuda_adamw<float>(l) : phiop::emulated_cuda_adamw<double>(l);
    } else {
      // phiop_num_threads re-applies phiop_set_num_threads' count on this OS thread.
      (void)phiop_num_threads();
      f32 ? phiop::cpu_adamw<float>(l) : phiop::cpu_adamw<double>(l);
    }
    // The writes bypass libtorch's ops: bump the version counters as an in-place
    // op would, so autograd still notices a stepped tensor saved for backward.
    for (size_t i = 0; i < l.p.size(); ++i) {
      torch::autograd::impl::bump_version(l.p[i]);
      torch::autograd::impl::bump_version(l.m[i]);
      torch::autograd::impl::bump_version(l.v[i]);
    }
    return nullptr;
  } catch (const phiop::Refusal& r) {
    *bad_index = r.index;
    *bad_code = r.code;
    return phiop::copy_message(r.msg);
  } catch (const c10::Error& e) {
    *bad_code = PHIOP_ADAMW_TORCH;
    return phiop::copy_message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *bad_code = PHIOP_ADAMW_TORCH;
    return phiop::copy_message(e.what());
  } catch (...) {
    *bad_code = PHIOP_ADAMW_TORCH;
    return phiop::copy_message("phiop: unknown C++ exception");
  }
}

char* phiop_adamw_check(void* param, void* grad, void* exp_avg, void* exp_avg_sq,
                        int64_t* group, int* code) {
  *group = 0;
  try {
    const at::Tensor* t[4] = {
        static_cast<const at::Tensor*>(param), static_cast<const at::Tensor*>(grad),
        static_cast<const at::Tensor*>(exp_avg), static_cast<const at::Tensor*>(exp_avg_sq)};
    std::string msg;
    *code = phiop::check_entry(t, msg);
    if (*code != PHIOP_ADAMW_OK) return phiop::copy_message(msg);
    const at::Device d = t[0]->device();
    *group = (static_cast<int64_t>(d.type()) << 32) | (static_cast<int64_t>(d.index() + 1) << 8) |
             static_cast<int64_t>(t[0]->scalar_type());
    return nullptr;
  } catch (const std::exception& e) {
    *code = PHIOP_ADAMW_TORCH;
    return phiop::copy_message(e.what());
  }
}

}  // extern "C"
