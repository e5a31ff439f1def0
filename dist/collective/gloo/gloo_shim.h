// C interface of the Gloo shim (gloo_shim.cc). Go calls the lrt_gloo_*
// functions through cgo.go; the shim calls back into Go (lrtStoreSet,
// lrtStoreGet, exported by cgo.go) while it connects, to reach the Store.
#ifndef LRT_GLOO_SHIM_H
#define LRT_GLOO_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Status codes: what kind of failure a call ended with.
enum {
  LRT_OK = 0,
  LRT_ERR_TIMEOUT = 1,  // a wait ran past its timeout
  LRT_ERR_IO = 2,       // a connection failed (peer died, reset, aborted)
  LRT_ERR_INVALID = 3,  // Gloo rejected the arguments (an enforce failed)
  LRT_ERR_OTHER = 4     // anything else (bad hostname, out of memory, ...)
};

// Element types. LRT_U8 (bytes) is only broadcast and all-gathered.
enum { LRT_F32 = 0, LRT_F64 = 1, LRT_U8 = 2 };

// Reductions.
enum { LRT_SUM = 0, LRT_AVG = 1, LRT_MAX = 2, LRT_MIN = 3 };

typedef struct {
  int code;
  char msg[768];
} lrt_status;

typedef struct lrt_gloo lrt_gloo;

// lrt_gloo_new creates a TCP device bound to hostname or iface (one may be
// empty; both empty: the machine's hostname) and connects a full mesh of
// size ranks, exchanging addresses through the Go store behind handle store.
int lrt_gloo_new(int rank, int size, const char* hostname, const char* iface,
                 int64_t timeout_ms, uintptr_t store, lrt_gloo** out,
                 lrt_status* st);

// Collectives. Counts are in elements; every call blocks until done, failed
// or timed out (timeout_ms bounds the whole call).
int lrt_gloo_allreduce(lrt_gloo* g, void* buf, size_t n, int dtype, int op,
                       int64_t timeout_ms, lrt_status* st);
int lrt_gloo_allgather(lrt_gloo* g, void* send, void* recv, size_t n,
                       int dtype, int64_t timeout_ms, lrt_status* st);
int lrt_gloo_broadcast(lrt_gloo* g, void* buf, size_t n, int dtype, int root,
                       int64_t timeout_ms, lrt_status* st);
int lrt_gloo_reduce_scatter(lrt_gloo* g, void* send, void* recv, size_t n,
                            int dtype, int op, int64_t timeout_ms,
                            lrt_status* st);
int lrt_gloo_barrier(lrt_gloo* g, int64_t timeout_ms, lrt_status* st);

// lrt_gloo_abort fails every connection of g: a call in flight returns an
// error at once, later calls fail, and the peers see their connections
// reset. Safe to call from any thread, more than once.
void lrt_gloo_abort(lrt_gloo* g);

// lrt_gloo_free closes the connections and frees g. No call may be in
// flight.
void lrt_gloo_free(lrt_gloo* g);

// Implemented in Go (cgo.go). They return 0 on success; on failure the Go
// side keeps the error. lrtStoreGet waits until key is set and returns a
// malloc'ed copy of the value that the caller frees.
int lrtStoreSet(uintptr_t h, char* key, size_t keyLen, char* val,
                size_t valLen);
int lrtStoreGet(uintptr_t h, char* key, size_t keyLen, char** val,
                size_t* valLen);

#ifdef __cplusplus
}
#endif

#endif  // LRT_GLOO_SHIM_H
