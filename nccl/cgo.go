package nccl

// This is the only file of the package that imports "C". It holds two
// things: dlopen/dlsym/dlclose, and one small C trampoline per wrapped
// function. A trampoline receives the function pointer that dlsym returned
// and calls through it with the real C signature, so the binary never links
// against libnccl or libcudart and nccl.h / cuda_runtime.h are not needed.
//
// Device pointers, streams and communicators cross the boundary as
// uintptr_t and are cast back to pointers in C: they are C-owned addresses
// that Go never dereferences.

/*
#cgo LDFLAGS: -ldl
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 // dlinfo
#endif
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// ncclUniqueId is an opaque 128-byte struct. ncclCommInitRank takes it by
// value, which on amd64 means the 128 bytes are copied onto the stack: a
// Go-side pointer would not do, hence this trampoline layer.
typedef struct { char internal[128]; } lrt_unique_id;

typedef int (*lrt_fn_int_p)(int *);
typedef int (*lrt_fn_ptr)(void *);
typedef int (*lrt_fn_ptr_intp)(void *, int *);
typedef int (*lrt_fn_void)(void);
typedef const char *(*lrt_fn_errstr)(int);
typedef const char *(*lrt_fn_laststr)(void *);

static void *lrt_dlopen(const char *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
// lrt_dlopen_loaded returns a handle only if the process has already loaded
// a library under that name (e.g. libtorch_cuda's libcudart), else NULL.
static void *lrt_dlopen_loaded(const char *soname) {
	return dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
}
// lrt_dlpath is the file a handle was loaded from ("" if unknown).
static const char *lrt_dlpath(void *h) {
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL || lm->l_name == NULL) return "";
	return lm->l_name;
}
static int lrt_dlclose(void *h) { return dlclose(h); }
static void *lrt_dlsym(void *h, const char *name) {
	dlerror();
	return dlsym(h, name);
}
static const char *lrt_dlerror(void) { return dlerror(); }

// ---- NCCL ----

static int lrt_call_int_p(void *fn, int *out) { return ((lrt_fn_int_p)fn)(out); }
static int lrt_call_ptr(void *fn, uintptr_t p) { return ((lrt_fn_ptr)fn)((void *)p); }
static int lrt_call_ptr_intp(void *fn, uintptr_t p, int *out) {
	return ((lrt_fn_ptr_intp)fn)((void *)p, out);
}
static int lrt_call_void(void *fn) { return ((lrt_fn_void)fn)(); }
static const char *lrt_call_errstr(void *fn, int code) { return ((lrt_fn_errstr)fn)(code); }
static const char *lrt_call_laststr(void *fn, uintptr_t comm) {
	return ((lrt_fn_laststr)fn)((void *)comm);
}

static int lrt_get_unique_id(void *fn, char *out) {
	lrt_unique_id id;
	memset(&id, 0, sizeof id);
	int r = ((int (*)(lrt_unique_id *))fn)(&id);
	memcpy(out, id.internal, sizeof id.internal);
	return r;
}

static int lrt_comm_init_rank(void *fn, uintptr_t *comm, int nranks, const char *idbytes, int rank) {
	lrt_unique_id id;
	memcpy(id.internal, idbytes, sizeof id.internal);
	void *c = NULL;
	int r = ((int (*)(void **, int, lrt_unique_id, int))fn)(&c, nranks, id, rank);
	*comm = (uintptr_t)c;
	return r;
}

// The leading fields of ncclConfig_t, the same in every NCCL since 2.14,
// where the struct appeared. NCCL copies min(size, its own sizeof) bytes
// over its NCCL_CONFIG_INITIALIZER defaults, so fields past blocking keep
// their "undefined" defaults exactly as the initializer would leave them.
typedef struct {
	size_t size;           // sizeof of the struct the caller filled
	unsigned int magic;    // NCCL_API_MAGIC
	unsigned int version;  // NCCL_VERSION_CODE of the layout
	int blocking;          // 0: non-blocking communicator
} lrt_config;

static void lrt_config_layout(size_t *size, size_t *magic, size_t *version, size_t *blocking) {
	*size = sizeof(lrt_config);
	*magic = offsetof(lrt_config, magic);
	*version = offsetof(lrt_config, version);
	*blocking = offsetof(lrt_config, blocking);
}

static int lrt_comm_init_rank_config(void *fn, uintptr_t *comm, int nranks, const char *idbytes,
                                     int rank, unsigned int version, int blocking) {
	lrt_unique_id id;
	memcpy(id.internal, idbytes, sizeof id.internal);
	lrt_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.size = sizeof cfg;
	cfg.magic = 0xcafebeef;
	cfg.version = version;
	cfg.blocking = blocking;
	void *c = NULL;
	int r = ((int (*)(void **, int, lrt_unique_id, int, lrt_config *))fn)(&c, nranks, id, rank, &cfg);
	*comm = (uintptr_t)c;
	return r;
}

static int lrt_all_reduce(void *fn, uintptr_t send, uintptr_t recv, size_t count, int dt, int op,
                          uintptr_t comm, uintptr_t stream) {
	return ((int (*)(const void *, void *, size_t, int, int, void *, void *))fn)(
		(const void *)send, (void *)recv, count, dt, op, (void *)comm, (void *)stream);
}

static int lrt_reduce(void *fn, uintptr_t send, uintptr_t recv, size_t count, int dt, int op,
                      int root, uintptr_t comm, uintptr_t stream) {
	return ((int (*)(const void *, void *, size_t, int, int, int, void *, void *))fn)(
		(const void *)send, (void *)recv, count, dt, op, root, (void *)comm, (void *)stream);
}

static int lrt_broadcast(void *fn, uintptr_t send, uintptr_t recv, size_t count, int dt, int root,
                         uintptr_t comm, uintptr_t stream) {
	return ((int (*)(const void *, void *, size_t, int, int, void *, void *))fn)(
		(const void *)send, (void *)recv, count, dt, root, (void *)comm, (void *)stream);
}

// ncclAllGather has no op argument; ncclReduceScatter has the same shape as
// ncclAllReduce (its count is the per-rank receive count).
static int lrt_all_gather(void *fn, uintptr_t send, uintptr_t recv, size_t count, int dt,
                          uintptr_t comm, uintptr_t stream) {
	return ((int (*)(const void *, void *, size_t, int, void *, void *))fn)(
		(const void *)send, (void *)recv, count, dt, (void *)comm, (void *)stream);
}

// ---- CUDA runtime ----

static int lrt_cuda_int(void *fn, int v) { return ((int (*)(int))fn)(v); }
static int lrt_cuda_malloc(void *fn, uintptr_t *out, size_t size) {
	void *p = NULL;
	int r = ((int (*)(void **, size_t))fn)(&p, size);
	*out = (uintptr_t)p;
	return r;
}
static int lrt_cuda_memcpy(void *fn, uintptr_t dst, uintptr_t src, size_t n, int kind) {
	return ((int (*)(void *, const void *, size_t, int))fn)((void *)dst, (const void *)src, n, kind);
}
// Host buffers are Go memory, so they arrive as real pointers, not uintptr_t.
static int lrt_cuda_memcpy_htod(void *fn, uintptr_t dst, const void *src, size_t n) {
	return ((int (*)(void *, const void *, size_t, int))fn)((void *)dst, src, n, 1);
}
static int lrt_cuda_memcpy_dtoh(void *fn, void *dst, uintptr_t src, size_t n) {
	return ((int (*)(void *, const void *, size_t, int))fn)(dst, (const void *)src, n, 2);
}
static int lrt_cuda_stream_create(void *fn, uintptr_t *out) {
	void *s = NULL;
	int r = ((int (*)(void **))fn)(&s);
	*out = (uintptr_t)s;
	return r;
}
// Events: cudaEventCreateWithFlags, cudaEventRecord(e, s), cudaStreamWaitEvent(s, e, flags).
static int lrt_cuda_event_create(void *fn, uintptr_t *out, unsigned int flags) {
	void *e = NULL;
	int r = ((int (*)(void **, unsigned int))fn)(&e, flags);
	*out = (uintptr_t)e;
	return r;
}
static int lrt_call_ptr_ptr(void *fn, uintptr_t a, uintptr_t b) { return ((int (*)(void *, void *))fn)((void *)a, (void *)b); }
static int lrt_call_ptr_ptr_uint(void *fn, uintptr_t a, uintptr_t b, unsigned int flags) {
	return ((int (*)(void *, void *, unsigned int))fn)((void *)a, (void *)b, flags);
}
*/
import "C"

import (
	"unsafe"
)

// dlOpen opens path and returns its handle, or nil and the dlerror text.
func dlOpen(path string) (unsafe.Pointer, string) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	h := C.lrt_dlopen(cpath)
	if h == nil {
		return nil, C.GoString(C.lrt_dlerror())
	}
	return h, ""
}

// dlOpenLoaded returns a new handle on the library the process has already
// loaded under soname, and the file it came from; nil if none is loaded.
func dlOpenLoaded(soname string) (unsafe.Pointer, string) {
	cname := C.CString(soname)
	defer C.free(unsafe.Pointer(cname))
	h := C.lrt_dlopen_loaded(cname)
	if h == nil {
		C.lrt_dlerror() // clear it
		return nil, ""
	}
	path := C.GoString(C.lrt_dlpath(h))
	if path == "" {
		path = soname
	}
	return h, path
}

func dlClose(h unsafe.Pointer) { C.lrt_dlclose(h) }

// dlSym looks name up in h; nil means absent.
func dlSym(h unsafe.Pointer, name string) unsafe.Pointer {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	return C.lrt_dlsym(h, cname)
}

func cCallIntOut(fn unsafe.Pointer) (int, int32) {
	var v C.int
	r := C.lrt_call_int_p(fn, &v)
	return int(v), int32(r)
}

func cCallPtr(fn unsafe.Pointer, p uintptr) int32 {
	return int32(C.lrt_call_ptr(fn, C.uintptr_t(p)))
}

func cCallPtrIntOut(fn unsafe.Pointer, p uintptr) (int, int32) {
	var v C.int
	r := C.lrt_call_ptr_intp(fn, C.uintptr_t(p), &v)
	return int(v), int32(r)
}

func cCallVoid(fn unsafe.Pointer) int32 { return int32(C.lrt_call_void(fn)) }

// cErrString calls a `const char *f(int)` such as ncclGetErrorString or
// cudaGetErrorString.
func cErrString(fn unsafe.Pointer, code int32) string {
	s := C.lrt_call_errstr(fn, C.int(code))
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

func cLastError(fn unsafe.Pointer, comm uintptr) string {
	s := C.lrt_call_laststr(fn, C.uintptr_t(comm))
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

func cGetUniqueID(fn unsafe.Pointer) (UniqueID, int32) {
	var id UniqueID
	r := C.lrt_get_unique_id(fn, (*C.char)(unsafe.Pointer(&id[0])))
	return id, int32(r)
}

func cCommInitRank(fn unsafe.Pointer, nranks int, id UniqueID, rank int) (uintptr, int32) {
	var comm C.uintptr_t
	r := C.lrt_comm_init_rank(fn, &comm, C.int(nranks), (*C.char)(unsafe.Pointer(&id[0])), C.int(rank))
	return uintptr(comm), int32(r)
}

// cConfigLayout reports sizeof(lrt_config) and the offsets of magic,
// version and blocking, for the layout test.
func cConfigLayout() (size, magic, version, blocking int) {
	var s, m, v, b C.size_t
	C.lrt_config_layout(&s, &m, &v, &b)
	return int(s), int(m), int(v), int(b)
}

func cCommInitRankConfig(fn unsafe.Pointer, nranks int, id UniqueID, rank int, version int, blocking bool) (uintptr, int32) {
	var comm C.uintptr_t
	b := C.int(1)
	if !blocking {
		b = 0
	}
	r := C.lrt_comm_init_rank_config(fn, &comm, C.int(nranks), (*C.char)(unsafe.Pointer(&id[0])), C.int(rank),
		C.uint(version), b)
	return uintptr(comm), int32(r)
}

func cAllReduce(fn unsafe.Pointer, send, recv uintptr, count int, dt, op int32, comm, stream uintptr) int32 {
	return int32(C.lrt_all_reduce(fn, C.uintptr_t(send), C.uintptr_t(recv), C.size_t(count),
		C.int(dt), C.int(op), C.uintptr_t(comm), C.uintptr_t(stream)))
}

func cReduce(fn unsafe.Pointer, send, recv uintptr, count int, dt, op int32, root int, comm, stream uintptr) int32 {
	return int32(C.lrt_reduce(fn, C.uintptr_t(send), C.uintptr_t(recv), C.size_t(count),
		C.int(dt), C.int(op), C.int(root), C.uintptr_t(comm), C.uintptr_t(stream)))
}

func cBroadcast(fn unsafe.Pointer, send, recv uintptr, count int, dt int32, root int, comm, stream uintptr) int32 {
	return int32(C.lrt_broadcast(fn, C.uintptr_t(send), C.uintptr_t(recv), C.size_t(count),
		C.int(dt), C.int(root), C.uintptr_t(comm), C.uintptr_t(stream)))
}

func cAllGather(fn unsafe.Pointer, send, recv uintptr, count int, dt int32, comm, stream uintptr) int32 {
	return int32(C.lrt_all_gather(fn, C.uintptr_t(send), C.uintptr_t(recv), C.size_t(count),
		C.int(dt), C.uintptr_t(comm), C.uintptr_t(stream)))
}

func cCudaInt(fn unsafe.Pointer, v int) int32 { return int32(C.lrt_cuda_int(fn, C.int(v))) }

func cCudaMalloc(fn unsafe.Pointer, size int) (uintptr, int32) {
	var p C.uintptr_t
	r := C.lrt_cuda_malloc(fn, &p, C.size_t(size))
	return uintptr(p), int32(r)
}

func cCudaMemcpyDtoD(fn unsafe.Pointer, dst, src uintptr, n int) int32 {
	return int32(C.lrt_cuda_memcpy(fn, C.uintptr_t(dst), C.uintptr_t(src), C.size_t(n), 3))
}

func cCudaMemcpyHtoD(fn unsafe.Pointer, dst uintptr, src []byte) int32 {
	return int32(C.lrt_cuda_memcpy_htod(fn, C.uintptr_t(dst), unsafe.Pointer(&src[0]), C.size_t(len(src))))
}

func cCudaMemcpyDtoH(fn unsafe.Pointer, dst []byte, src uintptr) int32 {
	return int32(C.lrt_cuda_memcpy_dtoh(fn, unsafe.Pointer(&dst[0]), C.uintptr_t(src), C.size_t(len(dst))))
}

func cCudaStreamCreate(fn unsafe.Pointer) (uintptr, int32) {
	var s C.uintptr_t
	r := C.lrt_cuda_stream_create(fn, &s)
	return uintptr(s), int32(r)
}

func cCudaEventCreate(fn unsafe.Pointer, flags uint32) (uintptr, int32) {
	var e C.uintptr_t
	r := C.lrt_cuda_event_create(fn, &e, C.uint(flags))
	return uintptr(e), int32(r)
}

func cCallPtrPtr(fn unsafe.Pointer, a, b uintptr) int32 {
	return int32(C.lrt_call_ptr_ptr(fn, C.uintptr_t(a), C.uintptr_t(b)))
}
func cCallPtrPtrUint(fn unsafe.Pointer, a, b uintptr, flags uint32) int32 {
	return int32(C.lrt_call_ptr_ptr_uint(fn, C.uintptr_t(a), C.uintptr_t(b), C.uint(flags)))
}
