/* transpose.c - tile transposes (transpose.h). The loop's strided stores were 1-2% of mita's step
 * (a key tile, an expert's keys and values, the landmarks, each transposed once per use). */
#include "transpose.h"

#include <stddef.h>

#include "transpose16.h"

void lra_transpose_loop(float *out, int ldo, const float *X, int n, int d) {
    for (int c = 0; c < d; c++)
        for (int r = 0; r < n; r++) out[(size_t)c * ldo + r] = X[(size_t)r * d + c];
}

LRA_AVX512_TARGET void lra_transpose_avx512(float *out, int ldo, const float *X, int n, int d) {
    for (int r0 = 0; r0 < n; r0 += 16) {
        const int nr = n - r0 < 16 ? n - r0 : 16;
        for (int c0 = 0; c0 < d; c0 += 16) {
            const int nc = d - c0 < 16 ? d - c0 : 16;
            __m512 blk[16];
            lra_block16_t(blk, X + (size_t)r0 * d + c0, (size_t)d, nr, nc);
            for (int c = 0; c < nc; c++) _mm512_mask_storeu_ps(out + (size_t)(c0 + c) * ldo + r0, lra_lanes16(nr), blk[c]);
        }
    }
}

int lra_transpose_has_avx512(void) { return __builtin_cpu_supports("avx512f"); }

void lra_transpose(float *out, int ldo, const float *X, int n, int d) {
    if (lra_transpose_has_avx512()) lra_transpose_avx512(out, ldo, X, n, d);
    else lra_transpose_loop(out, ldo, X, n, d);
}
