/* A stand-in for libcudart.so on machines without a GPU, for tests only.
 *
 * "Device" memory is host memory from malloc, copies are memmove, and the
 * current device is per thread as in CUDA. A stream reports "not ready" for
 * its first FAKE_CUDA_NOT_READY queries (default 2), so that waiting code
 * really polls; FAKE_CUDA_STREAM_HANG=1 makes every stream hang forever.
 *
 * Events (cudaEventCreateWithFlags, Record, Query, Destroy and
 * cudaStreamWaitEvent) only check their arguments and, like
 * cudaStreamSynchronize, append one line per call to FAKE_NCCL_LOG (the file
 * the fake libnccl logs to), so that tests see the order of records, waits
 * and collectives. A recorded event answers "not ready" for its first
 * FAKE_CUDA_NOT_READY queries after each record; a destroyed event is kept
 * (leaked) and marked dead, so that later use is reported, not undefined.
 *
 * Knobs (environment, read at call time):
 *   FAKE_CUDA_DEVICES      device count (default 1)
 *   FAKE_CUDA_NOT_READY    queries answered "not ready" per stream (default 2)
 *   FAKE_CUDA_STREAM_HANG  1: streams and events never finish
 *   FAKE_NCCL_LOG          file to append event and synchronise lines to
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	SUCCESS = 0,
	INVALID_VALUE = 1,
	MEMORY_ALLOCATION = 2,
	INVALID_MEMCPY_DIRECTION = 21,
	INVALID_DEVICE = 101,
	INVALID_HANDLE = 400,
	NOT_READY = 600,
};

enum { EVENT_LIVE = 0x45564e54, EVENT_DEAD = 0x44454144 };

struct fake_event {
	unsigned int magic;
	int recorded; /* times recorded */
	int queries;  /* since the last record */
};

struct fake_stream {
	int queries;
};

static __thread int current_device;

static int env_int(const char *name, int def) {
	const char *v = getenv(name);
	return (v && *v) ? atoi(v) : def;
}

__attribute__((format(printf, 1, 2)))
static void note(const char *fmt, ...) {
	const char *path = getenv("FAKE_NCCL_LOG");
	if (path == NULL || *path == 0) return;
	FILE *f = fopen(path, "a");
	if (f == NULL) return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

static unsigned long u(const void *p) { return (unsigned long)(uintptr_t)p; }

const char *cudaGetErrorString(int e) {
	switch (e) {
	case SUCCESS: return "fake cuda: success";
	case INVALID_VALUE: return "fake cuda: invalid value";
	case MEMORY_ALLOCATION: return "fake cuda: out of memory";
	case INVALID_MEMCPY_DIRECTION: return "fake cuda: bad copy direction";
	case INVALID_DEVICE: return "fake cuda: no such device";
	case INVALID_HANDLE: return "fake cuda: invalid resource handle";
	case NOT_READY: return "fake cuda: not ready";
	}
	return "fake cuda: unknown error";
}

int cudaGetDeviceCount(int *n) {
	if (n == NULL) return INVALID_VALUE;
	*n = env_int("FAKE_CUDA_DEVICES", 1);
	return SUCCESS;
}

int cudaSetDevice(int d) {
	if (d < 0 || d >= env_int("FAKE_CUDA_DEVICES", 1)) return INVALID_DEVICE;
	current_device = d;
	return SUCCESS;
}

int cudaGetDevice(int *d) {
	if (d == NULL) return INVALID_VALUE;
	*d = current_device;
	return SUCCESS;
}

int cudaMalloc(void **p, size_t n) {
	if (p == NULL) return INVALID_VALUE;
	*p = malloc(n ? n : 1);
	return *p ? SUCCESS : MEMORY_ALLOCATION;
}

int cudaFree(void *p) {
	free(p);
	return SUCCESS;
}

int cudaMemcpy(void *dst, const void *src, size_t n, int kind) {
	if (kind < 0 || kind > 4) return INVALID_MEMCPY_DIRECTION;
	if (n > 0 && (dst == NULL || src == NULL)) return INVALID_VALUE;
	memmove(dst, src, n);
	return SUCCESS;
}

int cudaStreamCreate(struct fake_stream **s) {
	if (s == NULL) return INVALID_VALUE;
	*s = calloc(1, sizeof **s);
	return *s ? SUCCESS : MEMORY_ALLOCATION;
}

int cudaStreamDestroy(struct fake_stream *s) {
	free(s);
	return SUCCESS;
}

int cudaStreamSynchronize(struct fake_stream *s) {
	note("cudaStreamSynchronize stream=0x%lx", u(s)); /* a real hung stream would block here forever */
	return SUCCESS;
}

int cudaStreamQuery(struct fake_stream *s) {
	if (env_int("FAKE_CUDA_STREAM_HANG", 0)) return NOT_READY;
	if (s == NULL) return SUCCESS; /* the default stream has nothing queued */
	if (s->queries++ < env_int("FAKE_CUDA_NOT_READY", 2)) return NOT_READY;
	return SUCCESS;
}

int cudaEventCreateWithFlags(struct fake_event **e, unsigned int flags) {
	if (e == NULL || flags > 0x0f) return INVALID_VALUE;
	*e = calloc(1, sizeof **e);
	if (*e == NULL) return MEMORY_ALLOCATION;
	(*e)->magic = EVENT_LIVE;
	note("cudaEventCreateWithFlags event=0x%lx flags=%u", u(*e), flags);
	return SUCCESS;
}

int cudaEventDestroy(struct fake_event *e) {
	if (e == NULL || e->magic != EVENT_LIVE) return INVALID_HANDLE;
	e->magic = EVENT_DEAD;
	note("cudaEventDestroy event=0x%lx", u(e));
	return SUCCESS;
}

int cudaEventRecord(struct fake_event *e, struct fake_stream *s) {
	if (e == NULL || e->magic != EVENT_LIVE) return INVALID_HANDLE;
	e->recorded++;
	e->queries = 0;
	note("cudaEventRecord event=0x%lx stream=0x%lx", u(e), u(s));
	return SUCCESS;
}

int cudaEventQuery(struct fake_event *e) {
	if (e == NULL || e->magic != EVENT_LIVE) return INVALID_HANDLE;
	if (e->recorded == 0) return SUCCESS; /* nothing to wait for */
	if (env_int("FAKE_CUDA_STREAM_HANG", 0)) return NOT_READY;
	if (e->queries++ < env_int("FAKE_CUDA_NOT_READY", 2)) return NOT_READY;
	return SUCCESS;
}

int cudaStreamWaitEvent(struct fake_stream *s, struct fake_event *e, unsigned int flags) {
	if (flags != 0) return INVALID_VALUE;
	if (e == NULL || e->magic != EVENT_LIVE) return INVALID_HANDLE;
	note("cudaStreamWaitEvent stream=0x%lx event=0x%lx recorded=%d", u(s), u(e), e->recorded);
	return SUCCESS;
}
