/* transpose.h - out (d, ldo) = X^T for X (n, d, row stride d): a tile of keys, values or landmarks
 * as the "B" of an sgemm "A times B". OpenBLAS 0.3.21 runs "A times B^T" of tile sizes through
 * its packing path, "A times B" and "A^T times B" through its small-matrix kernels without
 * packing (see full.c), so the backends transpose their tiles once and multiply them many times.
 * Dispatched at run time: 16 x 16 blocks in AVX-512 registers where the CPU has AVX-512F, a loop
 * elsewhere. Both move the same floats, so results never depend on which ran. */
#ifndef LRA_ATTN_TRANSPOSE_H
#define LRA_ATTN_TRANSPOSE_H

void lra_transpose(float *out, int ldo, const float *X, int n, int d);        /* either, by the CPU */
void lra_transpose_loop(float *out, int ldo, const float *X, int n, int d);   /* any CPU */
void lra_transpose_avx512(float *out, int ldo, const float *X, int n, int d); /* AVX-512F only */
int lra_transpose_has_avx512(void);                                           /* whether it may run */

#endif
