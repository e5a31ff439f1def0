/* blasprobe: one single-precision matrix product through the BLAS that libtorch
 * loads, printed as a hash of its result bits. Run with OPENBLAS_VERBOSE=2, OpenBLAS
 * also names the core whose kernels it picked. .ci/other-kernel compares the hash
 * under two OPENBLAS_CORETYPE settings: a different hash means the second setting
 * computes different last bits, so rerunning the tests under it is meaningful. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void sgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k,
            const float *alpha, const float *a, const int *lda, const float *b,
            const int *ldb, const float *beta, float *c, const int *ldc);

enum { N = 96 };
static float a[N * N], b[N * N], c[N * N];

int main(void) {
	for (int i = 0; i < N * N; i++) {
		a[i] = (float)((i * 7919) % 1009) / 1009.0f - 0.5f;
		b[i] = (float)((i * 104729) % 997) / 997.0f - 0.5f;
	}
	const int n = N;
	const float one = 1.0f, zero = 0.0f;
	sgemm_("N", "N", &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n);
	uint64_t h = 1469598103934665603ull; /* FNV-1a over the result's bits */
	for (int i = 0; i < N * N; i++) {
		uint32_t u;
		memcpy(&u, &c[i], sizeof u);
		for (int s = 0; s < 32; s += 8) {
			h ^= (u >> s) & 0xff;
			h *= 1099511628211ull;
		}
	}
	printf("%016llx\n", (unsigned long long)h);
	return 0;
}
