// extern "C" shim around Gloo (Debian's libgloo-dev): a TCP device, a
// rendezvous context connected through a Store that calls back into Go, and
// the collectives lrtrain uses. Every Gloo exception is caught here and
// turned into an lrt_status; nothing C++ crosses into Go.
#include "gloo_shim.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>
#include <gloo/types.h>

struct lrt_gloo {
  std::shared_ptr<gloo::transport::Device> dev;
  std::shared_ptr<gloo::rendezvous::Context> ctx;
  // scratch: the reduce-scatter's receive and running-sum buffers, kept between
  // calls (a group runs one collective at a time) so that each call does not
  // fault in fresh pages.
  std::vector<char> scratch;
};

namespace {

// Slot prefix of the reduce-scatter below; Gloo's own ops use 0x01..0x08.
constexpr uint8_t kReduceScatterSlotPrefix = 0x21;

using Millis = std::chrono::milliseconds;
using ReduceFn = void (*)(void*, const void*, const void*, size_t);

// GoStore forwards Gloo's rendezvous to the Go Store behind handle_.
class GoStore : public gloo::rendezvous::Store {
 public:
  explicit GoStore(uintptr_t handle) : handle_(handle) {}

  void set(const std::string& key, const std::vector<char>& data) override {
    int rc = lrtStoreSet(handle_, const_cast<char*>(key.data()), key.size(),
                         const_cast<char*>(data.data()), data.size());
    if (rc != 0) {
      throw gloo::IoException("store: set " + key + " failed");
    }
  }

  std::vector<char> get(const std::string& key) override {
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      return it->second;
    }
    char* val = nullptr;
    size_t len = 0;
    int rc = lrtStoreGet(handle_, const_cast<char*>(key.data()), key.size(),
                         &val, &len);
    if (rc != 0) {
      throw gloo::IoException("store: get " + key + " failed");
    }
    std::vector<char> out(val, val + len);
    std::free(val);
    cache_[key] = out;
    return out;
  }

  void wait(const std::vector<std::string>& keys) override {
    for (const auto& k : keys) {
      get(k);
    }
  }

  void wait(const std::vector<std::string>& keys, const Millis&) override {
    wait(keys);  // the Go side applies the timeout
  }

 private:
  uintptr_t handle_;
  std::map<std::string, std::vector<char>> cache_;
};

void setStatus(lrt_status* st, int code, const char* msg) {
  st->code = code;
  std::snprintf(st->msg, sizeof st->msg, "%s", msg);
}

bool mentionsTimeout(const char* msg) {
  return std::strstr(msg, "Timed out") != nullptr ||
         std::strstr(msg, "timeout") != nullptr;
}

// guard runs f and turns any exception into a status code.
template <typename F>
int guard(lrt_status* st, F f) {
  try {
    f();
    setStatus(st, LRT_OK, "");
  } catch (const gloo::IoException& e) {
    setStatus(st, mentionsTimeout(e.what()) ? LRT_ERR_TIMEOUT : LRT_ERR_IO,
              e.what());
  } catch (const gloo::EnforceNotMet& e) {
    setStatus(st, LRT_ERR_INVALID, e.what());
  } catch (const std::exception& e) {
    setStatus(st, LRT_ERR_OTHER, e.what());
  } catch (...) {
    setStatus(st, LRT_ERR_OTHER, "unknown C++ exception");
  }
  return st->code;
}

template <typename T>
ReduceFn reduceFn(int op) {
  switch (op) {
    case LRT_MAX:
      return &gloo::max<T>;
    case LRT_MIN:
      return &gloo::min<T>;
    default:  // LRT_SUM, LRT_AVG
      return &gloo::sum<T>;
  }
}

template <typename T>
void divideBy(T* buf, size_t n, int size) {
  const T d = static_cast<T>(size);
  for (size_t i = 0; i < n; i++) {
    buf[i] /= d;
  }
}

template <typename T>
void allreduce(lrt_gloo* g, void* buf, size_t n, int op, Millis timeout) {
  gloo::AllreduceOptions opts(g->ctx);
  opts.setOutput(static_cast<T*>(buf), n);
  opts.setReduceFunction(reduceFn<T>(op));
  opts.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
  opts.setTimeout(timeout);
  gloo::allreduce(opts);
  if (op == LRT_AVG) {
    divideBy(static_cast<T*>(buf), n, g->ctx->size);
  }
}

// reduceScatter is a ring: in step s rank r sends its running sum of block
// r-1-s to rank r+1 and folds block r-2-s, received from rank r-1, into its
// own contribution. After size-1 steps rank r holds the full block r.
//
// Each step moves its block in segments of kSegmentBytes, all posted at once:
// messages of one slot between two ranks arrive in the order they were sent,
// so segment k is folded while the later ones are still on the wire. (One
// message per block was 5x slower on loopback than Gloo's chunked all-reduce
// of twice the data: BENCHMARKS.md.) The running sums alternate between two
// buffers, so that a step never writes a buffer whose segments the previous
// step may still be sending; every send is waited for before the next step.
constexpr size_t kSegmentBytes = size_t(1) << 20;

template <typename T>
void reduceScatter(lrt_gloo* g, const T* send, T* recv, size_t n, int op,
                   Millis timeout) {
  auto& ctx = g->ctx;
  const int size = ctx->size, rank = ctx->rank;
  const size_t bytes = n * sizeof(T);
  if (size == 1) {
    std::memcpy(recv, send, bytes);
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto block = [&](int b) { return ((b % size) + size) % size; };
  const auto slot = gloo::Slot::build(kReduceScatterSlotPrefix, 0);
  const ReduceFn reduce = reduceFn<T>(op);
  const size_t seg = std::max<size_t>(kSegmentBytes / sizeof(T), 1);
  const size_t segments = (n + seg - 1) / seg;

  const int accs = std::min(size - 2, 2);
  const size_t stride = (bytes + 63) / 64 * 64;
  if (g->scratch.size() < stride * (1 + accs)) {
    g->scratch.resize(stride * (1 + accs));
  }
  T* in = reinterpret_cast<T*>(g->scratch.data());
  T* acc[2] = {reinterpret_cast<T*>(g->scratch.data() + stride),
               reinterpret_cast<T*>(g->scratch.data() + 2 * stride)};
  auto inBuf = ctx->createUnboundBuffer(in, bytes);
  std::unique_ptr<gloo::transport::UnboundBuffer> accBuf[2];
  for (int i = 0; i < accs; i++) {
    accBuf[i] = ctx->createUnboundBuffer(acc[i], bytes);
  }
  auto ownBuf = ctx->createUnboundBuffer(
      const_cast<T*>(send + block(rank - 1) * n), bytes);
  const int right = (rank + 1) % size, left = (rank + size - 1) % size;
  for (int s = 0; s < size - 1; s++) {
    auto* out = s == 0 ? ownBuf.get() : accBuf[(s - 1) % 2].get();
    T* dst = s == size - 2 ? recv : acc[s % 2];
    const T* mine = send + block(rank - 2 - s) * n;
    for (size_t k = 0; k < segments; k++) {
      const size_t off = k * seg, len = std::min(seg, n - off);
      inBuf->recv(left, slot, off * sizeof(T), len * sizeof(T));
      out->send(right, slot, off * sizeof(T), len * sizeof(T));
    }
    for (size_t k = 0; k < segments; k++) {
      const size_t off = k * seg, len = std::min(seg, n - off);
      inBuf->waitRecv(deadline);
      reduce(dst + off, in + off, mine + off, len);
    }
    for (size_t k = 0; k < segments; k++) {
      out->waitSend(deadline);
    }
  }
  if (op == LRT_AVG) {
    divideBy(recv, n, size);
  }
}

// createDevice starts the device's event-loop thread with SIGPIPE blocked.
// Gloo writes to its sockets from that thread without MSG_NOSIGNAL; a write
// to a dead peer would raise SIGPIPE on a thread Go does not know, and Go
// answers that by killing the process. Blocked, the write just fails with
// EPIPE and Gloo reports the peer as lost. (Threads inherit the mask.)
std::shared_ptr<gloo::transport::Device> createDevice(
    const gloo::transport::tcp::attr& attr) {
  sigset_t pipe, old;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, &old);
  try {
    auto dev = gloo::transport::tcp::CreateDevice(attr);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return dev;
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
}

}  // namespace

extern "C" {

int lrt_gloo_new(int rank, int size, const char* hostname, const char* iface,
                 int64_t timeout_ms, uintptr_t store, lrt_gloo** out,
                 lrt_status* st) {
  *out = nullptr;
  return guard(st, [&] {
    gloo::transport::tcp::attr attr;
    attr.hostname = hostname;
    attr.iface = iface;
    std::unique_ptr<lrt_gloo> g(new lrt_gloo);
    g->dev = createDevice(attr);
    g->ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
    // Gloo waits up to 5x the context's timeout for a pair to connect;
    // every collective below passes its own timeout.
    g->ctx->setTimeout(Millis(std::max<int64_t>(timeout_ms / 5, 1)));
    GoStore s(store);
    g->ctx->connectFullMesh(s, g->dev);
    *out = g.release();
  });
}

int lrt_gloo_allreduce(lrt_gloo* g, void* buf, size_t n, int dtype, int op,
                       int64_t timeout_ms, lrt_status* st) {
  return guard(st, [&] {
    if (dtype == LRT_F64) {
      allreduce<double>(g, buf, n, op, Millis(timeout_ms));
    } else {
      allreduce<float>(g, buf, n, op, Millis(timeout_ms));
    }
  });
}

int lrt_gloo_allgather(lrt_gloo* g, void* send, void* recv, size_t n,
                       int dtype, int64_t timeout_ms, lrt_status* st) {
  return guard(st, [&] {
    gloo::AllgatherOptions opts(g->ctx);
    const size_t total = n * g->ctx->size;
    // send already in place (this rank's block of recv): Gloo gathers in
    // place when given no input, instead of copying the block onto itself.
    const size_t esize = dtype == LRT_F64 ? 8 : dtype == LRT_U8 ? 1 : 4;
    const bool inPlace =
        static_cast<char*>(send) == static_cast<char*>(recv) + g->ctx->rank * n * esize;
    if (dtype == LRT_F64) {
      if (!inPlace) opts.setInput(static_cast<double*>(send), n);
      opts.setOutput(static_cast<double*>(recv), total);
    } else if (dtype == LRT_U8) {
      if (!inPlace) opts.setInput(static_cast<uint8_t*>(send), n);
      opts.setOutput(static_cast<uint8_t*>(recv), total);
    } else {
      if (!inPlace) opts.setInput(static_cast<float*>(send), n);
      opts.setOutput(static_cast<float*>(recv), total);
    }
    opts.setTimeout(Millis(timeout_ms));
    gloo::allgather(opts);
  });
}

int lrt_gloo_broadcast(lrt_gloo* g, void* buf, size_t n, int dtype, int root,
                       int64_t timeout_ms, lrt_status* st) {
  return guard(st, [&] {
    gloo::BroadcastOptions opts(g->ctx);
    if (dtype == LRT_U8) {
      opts.setOutput(static_cast<uint8_t*>(buf), n);
    } else if (dtype == LRT_F64) {
      opts.setOutput(static_cast<double*>(buf), n);
    } else {
      opts.setOutput(static_cast<float*>(buf), n);
    }
    opts.setRoot(root);
    opts.setTimeout(Millis(timeout_ms));
    gloo::broadcast(opts);
  });
}

int lrt_gloo_reduce_scatter(lrt_gloo* g, void* send, void* recv, size_t n,
                            int dtype, int op, int64_t timeout_ms,
                            lrt_status* st) {
  return guard(st, [&] {
    if (dtype == LRT_F64) {
      reduceScatter<double>(g, static_cast<const double*>(send),
                            static_cast<double*>(recv), n, op,
                            Millis(timeout_ms));
    } else {
      reduceScatter<float>(g, static_cast<const float*>(send),
                           static_cast<float*>(recv), n, op,
                           Millis(timeout_ms));
    }
  });
}

int lrt_gloo_barrier(lrt_gloo* g, int64_t timeout_ms, lrt_status* st) {
  return guard(st, [&] {
    gloo::BarrierOptions opts(g->ctx);
    opts.setTimeout(Millis(timeout_ms));
    gloo::barrier(opts);
  });
}

void lrt_gloo_abort(lrt_gloo* g) {
  // Debian's Gloo headers lack what tcp/pair.h includes, so the pairs'
  // signalExceptionExternal is out of reach. A receive that times out at
  // once takes the same path through public API: the TCP context fails
  // every pending operation on every pair and closes the sockets (peers see
  // a reset); later operations throw. Repeated calls are harmless.
  char dummy = 0;
  try {
    auto buf = g->ctx->createUnboundBuffer(&dummy, 1);
    buf->waitRecv(Millis(0));
  } catch (...) {
  }
}

void lrt_gloo_free(lrt_gloo* g) { delete g; }

}  // extern "C"
