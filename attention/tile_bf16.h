/* tile_bf16.h - bf16 products of attention tiles, for backends that honour LRA_BF16.
 *
 * Rules. Operands are bf16 (uint16: the top half of an fp32, rounded to nearest even); sums are
 * fp32. "A" operands are row-major with an even number of columns (the packers pad with a zero
 * column). "B" operands are stored in pairs along their reduction axis (the layout of AVX512-BF16's
 * vdpbf16ps and of AMX): element (kk, n) of B sits at Bp[((kk / 2) * ldb + n) * 2 + kk % 2], zero
 * past the last kk. lra_tile_bf16_native() says whether this CPU multiplies bf16 in hardware, as
 * capped by ONEDNN_MAX_CPU_ISA (one knob for oneDNN and these kernels); where it does not, a
 * backend runs its fp32 path instead (faster there than emulating bf16). One call runs on the
 * calling thread; results depend on nothing but the arguments. */
#ifndef LRA_TILE_BF16_H
#define LRA_TILE_BF16_H

#include <stddef.h>
#include <stdint.h>

/* n rounded up to even: the length of a bf16 operand's rows (and the 2 K2 of lra_tile_bf16), whose
 * pairs are whole, padded with a zero */
static inline int lra_bf16_even(int n) { return n + (n & 1); }

/* 1 when the functions below may run: AVX512-BF16, not capped below it. Call none of them otherwise. */
int lra_tile_bf16_native(void);

/* C (M, N) = A (M, 2 K2) B (2 K2, N) + (accumulate ? C : 0); A row stride lda, Bp in pairs with
 * row stride ldb (pairs), C row stride ldc. */
void lra_tile_bf16(int M, int N, int K2, const uint16_t *A, int lda, const uint16_t *Bp, int ldb, float *C,
                   int ldc, int accumulate);

/* A operands. out (rows, cols rounded up to even; row stride ldo) = bf16(scale X) for X (rows,
 * cols; row stride ldx); _t: out (cols, rows rounded up to even) = bf16(scale X^T). */
void lra_bf16_rows(uint16_t *out, int ldo, const float *X, int ldx, int rows, int cols, float scale);
void lra_bf16_rows_t(uint16_t *out, int ldo, const float *X, int ldx, int rows, int cols, float scale);
/* B operands in pairs (row stride ldb pairs). _rows: B = bf16(scale X), reduced over X's rows (V
 * in P V, P in dO^T P); _cols: B = X^T, reduced over X's columns (K in Q K^T, V in dO V^T). */
void lra_bf16_pairs_rows(uint16_t *Bp, int ldb, const float *X, int ldx, int rows, int cols, float scale);
void lra_bf16_pairs_cols(uint16_t *Bp, int ldb, const float *X, int ldx, int rows, int cols);

/* One product of a backend's tiles in precision p, with cblas_sgemm's row-major meaning: C (M, N)
 * = alpha op(A) op(B) + beta C, beta 0 or 1. fp32: cblas_sgemm. bf16 (only where
 * lra_tile_bf16_native()): alpha op(A) and op(B) rounded into work, then lra_tile_bf16 - for
 * products whose operands are not reused (a backend that reuses one packs it once and calls
 * lra_tile_bf16 itself, as full.c and moe.c do). work: lra_tile_gemm_work(M, N, K) uint16s. */
void lra_tile_gemm(int bf16, uint16_t *work, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);
size_t lra_tile_gemm_work(int M, int N, int K);

#endif
