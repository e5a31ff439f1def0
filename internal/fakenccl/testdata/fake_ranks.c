/* Ranks of the fake libnccl in separate processes (fake_nccl.c includes the
 * declarations). They meet in a directory under FAKE_NCCL_SHARED_DIR named
 * after the unique id: init writes join.<rank> and completes once every
 * rank's file exists; each collective writes this rank's input to
 * <seq>.<rank> (atomically, by rename) and completes once every rank's file
 * of the same sequence number exists, computing the real result from them
 * in double precision (exact for the small integers and halves that tests
 * and nccl-check use). A blocking communicator waits (polling every
 * millisecond, until aborted); a non-blocking one answers ncclInProgress
 * and completes on a later ncclCommGetAsyncError. It emulates NCCL's
 * semantics and values, not its speed.
 */
#include <errno.h>
#include <sys/stat.h>

struct fake_op {
	const char *name;
	void *recv;
	size_t count;
	int dt, op, root;
	unsigned long seq;
	int join;
};

size_t fake_type_size(int dt);

static double half_to_double(uint16_t h) {
	int e = (h >> 10) & 31, m = h & 1023;
	double v = e == 0 ? m / 16777216.0 : e == 31 ? (m ? 0.0 / 0.0 : 1.0 / 0.0) : (1024 + m) * (double)(1 << e) / 33554432.0;
	return (h & 0x8000) ? -v : v;
}

static uint16_t double_to_half(double v) {
	uint16_t sign = v < 0 ? 0x8000 : 0;
	if (v < 0) v = -v;
	if (v >= 65520.0) return sign | 0x7c00;
	if (v < 6.103515625e-05) return sign | (uint16_t)(v * 16777216.0 + 0.5);
	int e = 0;
	while (v >= 2.0) v /= 2, e++;
	while (v < 1.0) v *= 2, e--;
	unsigned m = (unsigned)((v - 1.0) * 1024 + 0.5);
	if (m == 1024) m = 0, e++;
	return sign | (uint16_t)((e + 15) << 10) | (uint16_t)m;
}

static double load(int dt, const void *p, size_t i) {
	switch (dt) {
	case 0: return ((const int8_t *)p)[i];
	case 1: return ((const uint8_t *)p)[i];
	case 2: return ((const int32_t *)p)[i];
	case 3: return ((const uint32_t *)p)[i];
	case 4: return (double)((const int64_t *)p)[i];
	case 5: return (double)((const uint64_t *)p)[i];
	case 6: return half_to_double(((const uint16_t *)p)[i]);
	case 7: return ((const float *)p)[i];
	case 8: return ((const double *)p)[i];
	default: {
		uint32_t bits = (uint32_t)((const uint16_t *)p)[i] << 16;
		float f;
		memcpy(&f, &bits, 4);
		return f;
	}
	}
}

static void store(int dt, void *p, size_t i, double v) {
	switch (dt) {
	case 0: ((int8_t *)p)[i] = (int8_t)(int64_t)v; break;
	case 1: ((uint8_t *)p)[i] = (uint8_t)(int64_t)v; break;
	case 2: ((int32_t *)p)[i] = (int32_t)(int64_t)v; break;
	case 3: ((uint32_t *)p)[i] = (uint32_t)(int64_t)v; break;
	case 4: ((int64_t *)p)[i] = (int64_t)v; break;
	case 5: ((uint64_t *)p)[i] = (uint64_t)v; break;
	case 6: ((uint16_t *)p)[i] = double_to_half(v); break;
	case 7: ((float *)p)[i] = (float)v; break;
	case 8: ((double *)p)[i] = v; break;
	default: {
		float f = (float)v;
		uint32_t bits;
		memcpy(&bits, &f, 4);
		((uint16_t *)p)[i] = (uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
	}
	}
}

static double reduce2(int op, double a, double b) {
	switch (op) {
	case 1: return a * b;
	case 2: return a > b ? a : b;
	case 3: return a < b ? a : b;
	}
	return a + b; /* sum, and avg before the division */
}

static void path_of(char *out, size_t n, struct fake_comm *c, const char *file) {
	snprintf(out, n, "%s/%s", c->dir, file);
}

static int write_file(struct fake_comm *c, const char *file, const void *data, size_t n) {
	char path[640], tmp[660];
	path_of(path, sizeof path, c, file);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (f == NULL) return fail(SYSTEM_ERR, "cannot write to the shared directory");
	size_t w = n ? fwrite(data, 1, n, f) : 0;
	if (fclose(f) != 0 || w != n || rename(tmp, path) != 0) return fail(SYSTEM_ERR, "short write");
	return OK;
}

/* read_file returns the file's bytes (malloc'd; *n its size) or NULL. */
static char *read_file(struct fake_comm *c, const char *file, size_t *n) {
	char path[640];
	path_of(path, sizeof path, c, file);
	FILE *f = fopen(path, "rb");
	if (f == NULL) return NULL;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc(size > 0 ? (size_t)size : 1);
	*n = b ? fread(b, 1, (size_t)size, f) : 0;
	fclose(f);
	return b;
}

int fake_join(struct fake_comm *c, const ncclUniqueId *id, int wait) {
	if (c->nranks == 1) return OK;
	const char *shared = getenv("FAKE_NCCL_SHARED_DIR");
	if (shared == NULL || *shared == 0) return fail(INVALID_USAGE, "more than one rank needs FAKE_NCCL_SHARED_DIR");
	int n = snprintf(c->dir, sizeof c->dir, "%s/comm-", shared);
	for (int i = 0; i < 8; i++) n += snprintf(c->dir + n, sizeof c->dir - n, "%02x", (unsigned char)id->internal[i]);
	if (mkdir(c->dir, 0700) != 0 && errno != EEXIST) return fail(SYSTEM_ERR, "cannot make the meeting directory");
	char name[32];
	snprintf(name, sizeof name, "join.%d", c->rank);
	if (write_file(c, name, "", 0)) return SYSTEM_ERR;
	struct fake_op *op = calloc(1, sizeof *op);
	if (op == NULL) return fail(SYSTEM_ERR, "out of memory");
	op->join = 1;
	c->op = op;
	if (!wait) return OK;
	while (fake_progress(c) == IN_PROGRESS) {
		if (c->aborted) return fail(REMOTE_ERR, "aborted during init");
		usleep(1000);
	}
	return OK;
}

/* try completes c's pending op if every rank's file is there. */
static int try(struct fake_comm *c, struct fake_op *op) {
	char name[64];
	char *data[c->nranks];
	size_t sizes[c->nranks];
	int have = 0;
	for (int r = 0; r < c->nranks; r++, have++) {
		if (op->join) snprintf(name, sizeof name, "join.%d", r);
		else snprintf(name, sizeof name, "%lu.%d", op->seq, r);
		if ((data[r] = read_file(c, name, &sizes[r])) == NULL) break;
	}
	int done = have == c->nranks;
	if (done && !op->join) {
		size_t sz = fake_type_size(op->dt), n = op->count;
		const char *nm = op->name;
		if (!strcmp(nm, "ncclAllGather")) {
			for (int r = 0; r < c->nranks; r++) memcpy((char *)op->recv + r * n * sz, data[r], n * sz);
		} else if (!strcmp(nm, "ncclBroadcast")) {
			memcpy(op->recv, data[op->root], n * sz);
		} else if (strcmp(nm, "ncclReduce") || c->rank == op->root) {
			size_t off = strcmp(nm, "ncclReduceScatter") ? 0 : (size_t)c->rank * n;
			for (size_t i = 0; i < n; i++) {
				double v = load(op->dt, data[0], off + i);
				for (int r = 1; r < c->nranks; r++) v = reduce2(op->op, v, load(op->dt, data[r], off + i));
				if (op->op == 4) v /= c->nranks;
				store(op->dt, op->recv, i, v);
			}
		}
		if (op->seq > 0) { /* every rank has finished reading the previous round */
			char path[640];
			snprintf(name, sizeof name, "%lu.%d", op->seq - 1, c->rank);
			path_of(path, sizeof path, c, name);
			unlink(path);
		}
	}
	for (int r = 0; r < have; r++) free(data[r]);
	return done ? OK : IN_PROGRESS;
}

int fake_progress(struct fake_comm *c) {
	struct fake_op *op = c->op;
	if (op == NULL) return OK;
	if (try(c, op) != OK) return IN_PROGRESS;
	c->op = NULL;
	free(op);
	return OK;
}

int fake_collective(const char *name, const void *send, void *recv, size_t count, int dt, int op,
                    int root, struct fake_comm *c) {
	if (c->op != NULL) return fail(INVALID_USAGE, "collective before the previous one completed");
	size_t bytes = count * fake_type_size(dt);
	if (!strcmp(name, "ncclReduceScatter")) bytes *= c->nranks;
	if (!strcmp(name, "ncclBroadcast") && c->rank != root) bytes = 0;
	char file[64];
	snprintf(file, sizeof file, "%lu.%d", c->seq, c->rank);
	if (write_file(c, file, send, bytes)) return SYSTEM_ERR;
	struct fake_op *o = calloc(1, sizeof *o);
	if (o == NULL) return fail(SYSTEM_ERR, "out of memory");
	*o = (struct fake_op){name, recv, count, dt, op, root, c->seq++, 0};
	c->op = o;
	if (c->nonblocking) return fake_progress(c);
	while (fake_progress(c) == IN_PROGRESS) {
		if (c->aborted) return fail(REMOTE_ERR, "aborted while waiting for peers");
		usleep(1000);
	}
	return OK;
}
