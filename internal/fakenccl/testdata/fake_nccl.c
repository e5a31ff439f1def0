/* A stand-in for libnccl.so.2 on machines without a GPU, for tests only.
 *
 * One rank, and "device" pointers are host pointers (see fake_cudart.c), so
 * every collective is a copy of send into recv. It checks its arguments the
 * way the real library would reject them, checks that the 128-byte unique id
 * arrives by value intact, and, when FAKE_NCCL_LOG names a file, appends one
 * line per call with the arguments it received so that tests can verify what
 * crossed the cgo trampolines.
 *
 * Knobs (environment, read at call time):
 *   FAKE_NCCL_LOG          file to append call lines to
 *   FAKE_NCCL_ASYNC_ERROR  value ncclCommGetAsyncError reports (default 0)
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char internal[128]; } ncclUniqueId;

struct fake_comm {
	int live;
	int device;
};

enum { OK = 0, SYSTEM_ERR = 2, INVALID_ARG = 4, INVALID_USAGE = 5 };

static int ids_made;
static int group_depth;
static char last_error[256];

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

static int fail(int code, const char *why) {
	snprintf(last_error, sizeof last_error, "fake nccl: %s", why);
	return code;
}

static unsigned long u(const void *p) { return (unsigned long)(uintptr_t)p; }

int ncclGetVersion(int *version) {
	if (version == NULL) return fail(INVALID_ARG, "null version");
	*version = 22105;
	return OK;
}

const char *ncclGetErrorString(int result) {
	switch (result) {
	case 0: return "fake: success";
	case 1: return "fake: cuda failure";
	case 2: return "fake: system failure";
	case 3: return "fake: internal failure";
	case 4: return "fake: bad argument";
	case 5: return "fake: bad usage";
	case 6: return "fake: peer failure";
	case 7: return "fake: in progress";
	}
	return "fake: unknown code";
}

const char *ncclGetLastError(void *comm) {
	(void)comm;
	return last_error;
}

/* Byte i of an id is base + 7*i, base being byte 0; ids differ in base. */
int ncclGetUniqueId(ncclUniqueId *id) {
	if (id == NULL) return fail(INVALID_ARG, "null id");
	ids_made++;
	unsigned char base = (unsigned char)(ids_made * 31 + 5);
	for (int i = 0; i < 128; i++) id->internal[i] = (char)(unsigned char)(base + 7 * i);
	return OK;
}

int ncclCommInitRank(struct fake_comm **comm, int nranks, ncclUniqueId id, int rank) {
	note("ncclCommInitRank nranks=%d rank=%d id0=%d", nranks, rank, (unsigned char)id.internal[0]);
	if (comm == NULL) return fail(INVALID_ARG, "null comm");
	unsigned char base = (unsigned char)id.internal[0];
	for (int i = 1; i < 128; i++)
		if ((unsigned char)id.internal[i] != (unsigned char)(base + 7 * i))
			return fail(INVALID_ARG, "unique id corrupted");
	if (nranks != 1 || rank != 0) return fail(INVALID_USAGE, "only one rank is faked");
	struct fake_comm *c = calloc(1, sizeof *c);
	if (c == NULL) return fail(SYSTEM_ERR, "out of memory");
	c->live = 1;
	*comm = c;
	return OK;
}

/* Released communicators are kept (marked dead) so that a second release or
 * a use after release is reported instead of corrupting the heap. */
static int check(struct fake_comm *c) {
	if (c == NULL || !c->live) return fail(INVALID_ARG, "dead or null communicator");
	return OK;
}

int ncclCommDestroy(struct fake_comm *c) {
	note("ncclCommDestroy comm=%#lx", u(c));
	if (check(c)) return INVALID_ARG;
	c->live = 0;
	return OK;
}

int ncclCommAbort(struct fake_comm *c) {
	note("ncclCommAbort comm=%#lx", u(c));
	if (check(c)) return INVALID_ARG;
	c->live = 0;
	return OK;
}

int ncclCommGetAsyncError(struct fake_comm *c, int *err) {
	if (check(c) || err == NULL) return INVALID_ARG;
	const char *v = getenv("FAKE_NCCL_ASYNC_ERROR");
	*err = v ? atoi(v) : 0;
	return OK;
}

int ncclCommCount(struct fake_comm *c, int *n) {
	if (check(c) || n == NULL) return INVALID_ARG;
	*n = 1;
	return OK;
}

int ncclCommCuDevice(struct fake_comm *c, int *dev) {
	if (check(c) || dev == NULL) return INVALID_ARG;
	*dev = c->device;
	return OK;
}

int ncclCommUserRank(struct fake_comm *c, int *rank) {
	if (check(c) || rank == NULL) return INVALID_ARG;
	*rank = 0;
	return OK;
}

static size_t type_size(int dt) {
	static const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
	return (dt >= 0 && dt < 10) ? sizes[dt] : 0;
}

/* The shared checks of every collective; with one rank the result is a copy. */
static int copy(const char *name, const void *send, void *recv, size_t count, int dt, int op,
                int root, struct fake_comm *c, void *stream) {
	note("%s send=%#lx recv=%#lx count=%zu dt=%d op=%d root=%d comm=%#lx stream=%#lx", name,
	     u(send), u(recv), count, dt, op, root, u(c), u(stream));
	if (check(c)) return INVALID_ARG;
	if (type_size(dt) == 0) return fail(INVALID_ARG, "bad data type");
	if (op < 0 || op > 4) return fail(INVALID_ARG, "bad reduction op");
	if (root != 0) return fail(INVALID_ARG, "root out of range");
	if (count > 0 && (send == NULL || recv == NULL)) return fail(INVALID_ARG, "null buffer");
	if (count > 0) memmove(recv, send, count * type_size(dt));
	return OK;
}

int ncclAllReduce(const void *send, void *recv, size_t count, int dt, int op, struct fake_comm *c,
                  void *stream) {
	return copy("ncclAllReduce", send, recv, count, dt, op, 0, c, stream);
}

int ncclReduce(const void *send, void *recv, size_t count, int dt, int op, int root,
               struct fake_comm *c, void *stream) {
	return copy("ncclReduce", send, recv, count, dt, op, root, c, stream);
}

int ncclBroadcast(const void *send, void *recv, size_t count, int dt, int root,
                  struct fake_comm *c, void *stream) {
	return copy("ncclBroadcast", send, recv, count, dt, 0, root, c, stream);
}

int ncclAllGather(const void *send, void *recv, size_t sendcount, int dt, struct fake_comm *c,
                  void *stream) {
	return copy("ncclAllGather", send, recv, sendcount, dt, 0, 0, c, stream);
}

int ncclReduceScatter(const void *send, void *recv, size_t recvcount, int dt, int op,
                      struct fake_comm *c, void *stream) {
	return copy("ncclReduceScatter", send, recv, recvcount, dt, op, 0, c, stream);
}

int ncclGroupStart(void) {
	group_depth++;
	return OK;
}

int ncclGroupEnd(void) {
	if (group_depth == 0) return fail(INVALID_USAGE, "group end without start");
	group_depth--;
	return OK;
}
