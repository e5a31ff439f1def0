/* A stand-in for libnccl.so.2 on machines without a GPU, for tests only.
 *
 * "Device" pointers are host pointers (see fake_cudart.c). With one rank
 * every collective is a copy of send into recv; with more ranks, each in its
 * own process, the ranks meet through files in FAKE_NCCL_SHARED_DIR and
 * compute the real results (fake_ranks.c). It checks its arguments the way
 * the real library would reject them, checks that the 128-byte unique id
 * arrives by value intact and that an ncclConfig_t is initialised as
 * NCCL_CONFIG_INITIALIZER does, and, when FAKE_NCCL_LOG names a file,
 * appends one line per call with the arguments it received so that tests
 * can verify what crossed the cgo trampolines.
 *
 * Failure behaviours, for the abort paths:
 *   - FAKE_NCCL_ENQUEUE_BLOCK=1: every collective blocks until ncclCommAbort
 *     is called on its communicator from another thread, then fails; =2:
 *     it blocks for good, abort or not (a wedged library);
 *   - a non-blocking communicator (ncclCommInitRankConfig, blocking = 0)
 *     answers ncclInProgress from init (FAKE_NCCL_INIT_PROGRESS polls of
 *     ncclCommGetAsyncError) and from each collective
 *     (FAKE_NCCL_ENQUEUE_PROGRESS polls); -1 means until aborted;
 *   - FAKE_NCCL_ASYNC_ERROR: the value ncclCommGetAsyncError reports.
 *
 * Knobs (environment, read at call time):
 *   FAKE_NCCL_LOG               file to append call lines to
 *   FAKE_NCCL_VERSION           version code (default 22105: 2.21.5)
 *   FAKE_NCCL_ASYNC_ERROR       see above (default 0)
 *   FAKE_NCCL_ENQUEUE_BLOCK     see above
 *   FAKE_NCCL_INIT_PROGRESS     see above (default 0)
 *   FAKE_NCCL_ENQUEUE_PROGRESS  see above (default 0)
 *   FAKE_NCCL_SHARED_DIR        directory where ranks of separate processes meet
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct { char internal[128]; } ncclUniqueId;

/* The ncclConfig_t fields every version since 2.14 starts with. */
typedef struct {
	size_t size;
	unsigned int magic;
	unsigned int version;
	int blocking;
} fake_config;

struct fake_comm {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int live;        /* 0 once destroyed or aborted */
	int aborted;
	int device;
	int rank, nranks;
	int nonblocking;
	int pending;     /* polls answering ncclInProgress; -1: until aborted */
	unsigned long seq;
	char dir[512];   /* where the ranks meet, when nranks > 1 */
	void *op;        /* the collective in progress (fake_ranks.c) */
};

enum { OK = 0, SYSTEM_ERR = 2, INVALID_ARG = 4, INVALID_USAGE = 5, REMOTE_ERR = 6, IN_PROGRESS = 7 };

static int group_depth;
static char last_error[256];

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

static int fail(int code, const char *why) {
	snprintf(last_error, sizeof last_error, "fake nccl: %s", why);
	return code;
}

static unsigned long u(const void *p) { return (unsigned long)(uintptr_t)p; }

/* fake_ranks.c */
int fake_join(struct fake_comm *c, const ncclUniqueId *id, int wait);
int fake_progress(struct fake_comm *c);
int fake_collective(const char *name, const void *send, void *recv, size_t count, int dt, int op,
                    int root, struct fake_comm *c);

int ncclGetVersion(int *version) {
	if (version == NULL) return fail(INVALID_ARG, "null version");
	*version = env_int("FAKE_NCCL_VERSION", 22105);
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

/* Bytes 0-7 of an id are unique per call (process id, clock, counter);
 * byte i >= 8 is byte i%8 + 7*i, so that a damaged id is noticed. */
int ncclGetUniqueId(ncclUniqueId *id) {
	static unsigned ids_made;
	if (id == NULL) return fail(INVALID_ARG, "null id");
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t seed = ((uint64_t)getpid() << 40) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
	                (uint64_t)(++ids_made * 2654435761u);
	for (int i = 0; i < 8; i++) id->internal[i] = (char)(unsigned char)(seed >> (8 * i));
	for (int i = 8; i < 128; i++)
		id->internal[i] = (char)(unsigned char)((unsigned char)id->internal[i % 8] + 7 * i);
	return OK;
}

/* The device current on the calling thread, as NCCL records it at init:
 * asked of the fake libcudart the process loaded (LRTRAIN_CUDART_LIBRARY). */
static int current_device(void) {
	const char *path = getenv("LRTRAIN_CUDART_LIBRARY");
	if (path == NULL || *path == 0) return 0;
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL) return 0;
	int (*get)(int *) = (int (*)(int *))dlsym(h, "cudaGetDevice");
	int d = 0;
	if (get != NULL) get(&d);
	dlclose(h);
	return d;
}

static int init(const char *name, struct fake_comm **comm, int nranks, const ncclUniqueId *id, int rank,
                int nonblocking) {
	if (comm == NULL) return fail(INVALID_ARG, "null comm");
	for (int i = 8; i < 128; i++)
		if ((unsigned char)id->internal[i] != (unsigned char)((unsigned char)id->internal[i % 8] + 7 * i))
			return fail(INVALID_ARG, "unique id corrupted");
	if (nranks < 1 || rank < 0 || rank >= nranks) return fail(INVALID_ARG, "rank out of range");
	struct fake_comm *c = calloc(1, sizeof *c);
	if (c == NULL) return fail(SYSTEM_ERR, "out of memory");
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->live = 1;
	c->rank = rank;
	c->nranks = nranks;
	c->nonblocking = nonblocking;
	c->device = current_device();
	(void)name;
	*comm = c; /* as NCCL does, the handle exists before init completes */
	int r = fake_join(c, id, !nonblocking);
	if (r != OK) return r;
	if (nonblocking) {
		c->pending = env_int("FAKE_NCCL_INIT_PROGRESS", 0);
		if (c->pending != 0 || c->op != NULL) return IN_PROGRESS;
	}
	return OK;
}

int ncclCommInitRank(struct fake_comm **comm, int nranks, ncclUniqueId id, int rank) {
	note("ncclCommInitRank nranks=%d rank=%d id0=%d", nranks, rank, (unsigned char)id.internal[0]);
	return init("ncclCommInitRank", comm, nranks, &id, rank, 0);
}

int ncclCommInitRankConfig(struct fake_comm **comm, int nranks, ncclUniqueId id, int rank,
                           fake_config *config) {
	if (config == NULL) return init("ncclCommInitRankConfig", comm, nranks, &id, rank, 0);
	note("ncclCommInitRankConfig nranks=%d rank=%d id0=%d size=%zu magic=%#x version=%u blocking=%d",
	     nranks, rank, (unsigned char)id.internal[0], config->size, config->magic, config->version,
	     config->blocking);
	if (config->magic != 0xcafebeef) return fail(INVALID_ARG, "config not initialised (magic)");
	if (config->size < sizeof(fake_config)) return fail(INVALID_ARG, "config too small");
	if (config->version < 21400) return fail(INVALID_ARG, "config version before 2.14");
	if (config->blocking != 0 && config->blocking != 1 && config->blocking != (int)0x80000000)
		return fail(INVALID_ARG, "config blocking not 0, 1 or undefined");
	return init("ncclCommInitRankConfig", comm, nranks, &id, rank, config->blocking == 0);
}

/* Released communicators are kept (marked dead) so that a second release,
 * a use after release or a call still blocked in the fake is reported
 * instead of corrupting the heap. */
static int check(struct fake_comm *c) {
	if (c == NULL || !c->live) return fail(INVALID_ARG, "dead or null communicator");
	return OK;
}

/* On a non-blocking communicator NCCL releases in the background and
 * answers ncclInProgress (the handle is gone; there is nothing to poll). */
int ncclCommDestroy(struct fake_comm *c) {
	note("ncclCommDestroy comm=%#lx", u(c));
	if (check(c)) return INVALID_ARG;
	c->live = 0;
	return c->nonblocking ? IN_PROGRESS : OK;
}

/* Abort wakes every call blocked on the communicator. */
int ncclCommAbort(struct fake_comm *c) {
	note("ncclCommAbort comm=%#lx", u(c));
	if (check(c)) return INVALID_ARG;
	pthread_mutex_lock(&c->mu);
	c->live = 0;
	c->aborted = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return c->nonblocking ? IN_PROGRESS : OK;
}

int ncclCommGetAsyncError(struct fake_comm *c, int *err) {
	if (check(c) || err == NULL) return INVALID_ARG;
	int forced = env_int("FAKE_NCCL_ASYNC_ERROR", 0);
	if (forced != 0) {
		*err = forced;
		return OK;
	}
	pthread_mutex_lock(&c->mu);
	if (c->pending > 0) c->pending--;
	int busy = c->pending != 0;
	pthread_mutex_unlock(&c->mu);
	*err = busy ? IN_PROGRESS : fake_progress(c);
	return OK;
}

int ncclCommCount(struct fake_comm *c, int *n) {
	if (check(c) || n == NULL) return INVALID_ARG;
	*n = c->nranks;
	return OK;
}

int ncclCommCuDevice(struct fake_comm *c, int *dev) {
	if (check(c) || dev == NULL) return INVALID_ARG;
	*dev = c->device;
	return OK;
}

int ncclCommUserRank(struct fake_comm *c, int *rank) {
	if (check(c) || rank == NULL) return INVALID_ARG;
	*rank = c->rank;
	return OK;
}

size_t fake_type_size(int dt) {
	static const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
	return (dt >= 0 && dt < 10) ? sizes[dt] : 0;
}

/* The shared checks and failure behaviours of every collective. */
static int collective(const char *name, const void *send, void *recv, size_t count, int dt, int op,
                      int root, struct fake_comm *c, void *stream) {
	note("%s send=%#lx recv=%#lx count=%zu dt=%d op=%d root=%d comm=%#lx stream=%#lx", name,
	     u(send), u(recv), count, dt, op, root, u(c), u(stream));
	if (check(c)) return INVALID_ARG;
	if (fake_type_size(dt) == 0) return fail(INVALID_ARG, "bad data type");
	if (op < 0 || op > 4) return fail(INVALID_ARG, "bad reduction op");
	if (root < 0 || root >= c->nranks) return fail(INVALID_ARG, "root out of range");
	if (count > 0 && (recv == NULL || (send == NULL && (strcmp(name, "ncclBroadcast") || root == c->rank))))
		return fail(INVALID_ARG, "null buffer");
	if (env_int("FAKE_NCCL_ENQUEUE_BLOCK", 0)) {
		pthread_mutex_lock(&c->mu);
		int forever = env_int("FAKE_NCCL_ENQUEUE_BLOCK", 0) == 2;
		while (!c->aborted || forever) pthread_cond_wait(&c->cv, &c->mu);
		pthread_mutex_unlock(&c->mu);
		return fail(REMOTE_ERR, "collective aborted while blocked");
	}
	if (c->nranks == 1) {
		if (count > 0) memmove(recv, send, count * fake_type_size(dt));
	} else {
		int r = fake_collective(name, send, recv, count, dt, op, root, c);
		if (r != OK && r != IN_PROGRESS) return r;
		if (r == IN_PROGRESS && !c->nonblocking) return fail(SYSTEM_ERR, "peers lost");
	}
	if (c->nonblocking) {
		pthread_mutex_lock(&c->mu);
		c->pending = env_int("FAKE_NCCL_ENQUEUE_PROGRESS", 0);
		int busy = c->pending != 0 || c->op != NULL;
		pthread_mutex_unlock(&c->mu);
		if (busy) return IN_PROGRESS;
	}
	return OK;
}

int ncclAllReduce(const void *send, void *recv, size_t count, int dt, int op, struct fake_comm *c,
                  void *stream) {
	return collective("ncclAllReduce", send, recv, count, dt, op, 0, c, stream);
}

int ncclReduce(const void *send, void *recv, size_t count, int dt, int op, int root,
               struct fake_comm *c, void *stream) {
	return collective("ncclReduce", send, recv, count, dt, op, root, c, stream);
}

int ncclBroadcast(const void *send, void *recv, size_t count, int dt, int root,
                  struct fake_comm *c, void *stream) {
	return collective("ncclBroadcast", send, recv, count, dt, 0, root, c, stream);
}

int ncclAllGather(const void *send, void *recv, size_t sendcount, int dt, struct fake_comm *c,
                  void *stream) {
	return collective("ncclAllGather", send, recv, sendcount, dt, 0, 0, c, stream);
}

int ncclReduceScatter(const void *send, void *recv, size_t recvcount, int dt, int op,
                      struct fake_comm *c, void *stream) {
	return collective("ncclReduceScatter", send, recv, recvcount, dt, op, 0, c, stream);
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
