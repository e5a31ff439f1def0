/* A stand-in for libcudart.so on machines without a GPU, for tests only.
 *
 * "Device" memory is host memory from malloc, copies are memmove, and the
 * current device is per thread as in CUDA. A stream reports "not ready" for
 * its first FAKE_CUDA_NOT_READY queries (default 2), so that waiting code
 * really polls; FAKE_CUDA_STREAM_HANG=1 makes every stream hang forever.
 *
 * Knobs (environment, read at call time):
 *   FAKE_CUDA_DEVICES      device count (default 1)
 *   FAKE_CUDA_NOT_READY    queries answered "not ready" per stream (default 2)
 *   FAKE_CUDA_STREAM_HANG  1: streams never finish
 */
#include <stdlib.h>
#include <string.h>

enum {
	SUCCESS = 0,
	INVALID_VALUE = 1,
	MEMORY_ALLOCATION = 2,
	INVALID_MEMCPY_DIRECTION = 21,
	INVALID_DEVICE = 101,
	NOT_READY = 600,
};

struct fake_stream {
	int queries;
};

static __thread int current_device;

static int env_int(const char *name, int def) {
	const char *v = getenv(name);
	return (v && *v) ? atoi(v) : def;
}

const char *cudaGetErrorString(int e) {
	switch (e) {
	case SUCCESS: return "fake cuda: success";
	case INVALID_VALUE: return "fake cuda: invalid value";
	case MEMORY_ALLOCATION: return "fake cuda: out of memory";
	case INVALID_MEMCPY_DIRECTION: return "fake cuda: bad copy direction";
	case INVALID_DEVICE: return "fake cuda: no such device";
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
	(void)s; /* a real hung stream would block here forever */
	return SUCCESS;
}

int cudaStreamQuery(struct fake_stream *s) {
	if (env_int("FAKE_CUDA_STREAM_HANG", 0)) return NOT_READY;
	if (s == NULL) return SUCCESS; /* the default stream has nothing queued */
	if (s->queries++ < env_int("FAKE_CUDA_NOT_READY", 2)) return NOT_READY;
	return SUCCESS;
}
