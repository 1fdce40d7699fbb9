/* gemm.h - the encoder's matrix products, through oneDNN's matmul primitive.
 *
 * Rules. Row-major fp32 in and out, BLAS-style strides (lda, ldb, ldc: elements between rows as
 * stored). op(X) is X, or X^T when its flag is set, so op(A) is (M,K) and op(B) is (K,N).
 * One call runs on the calling thread only, inside the caller's parallel region or serially:
 * callers cut the work into blocks whose shapes never depend on the thread count, so neither do
 * the results. oneDNN picks its kernels at run time for the CPU at hand (AVX2, AVX-512,
 * AVX512-BF16, AMX; ONEDNN_MAX_CPU_ISA caps it): results are the same bits on one machine and one
 * ISA, not across ISAs. Primitives are cached per thread and built on first use (fp32's one per
 * transpose, beta and bias, for every shape; bf16's one per shape: gemm.c says why); nothing here
 * fails on valid arguments (an error from oneDNN is a bug: it aborts naming the call). */
#ifndef LRA_GEMM_H
#define LRA_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../common/lra.h"

/* lra_precision: common/lra.h */
const char *lra_precision_name(lra_precision p); /* "fp32", "bf16" */

/* C (M,N) = op(A) op(B) + beta C, beta 0 or 1 (C is not read when 0) */
void lra_gemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc);

/* C (M,N) = op(A) op(B) + bias + beta C: bias (N) added to every row by oneDNN; NULL for none.
 * fp32 only: bf16's kernels give other bits with it than with the bias copied into C and beta 1
 * (layers.c keeps that form for bf16). */
void lra_gemm_bias(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   const float *bias, float beta, float *C, int ldc);

/* The same with bf16 operands (uint16: the top half of an fp32) and an fp32 C. Below AVX-512,
 * where oneDNN has no bf16 kernel, the operands are widened and multiplied in fp32: the same
 * exact products, fp32 sums, other bits than the native kernels'. */
void lra_gemm_bf16(int transA, int transB, int M, int N, int K, const uint16_t *A, int lda,
                   const uint16_t *B, int ldb, float beta, float *C, int ldc);

/* x rounded to bf16, nearest even (NaN stays NaN): add 0x7fff plus the lowest kept bit; a NaN
 * keeps a set mantissa bit. Integer arithmetic, so every caller gets the same bits. */
static inline uint16_t lra_bf16_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t nan = (u & 0x7fffffffu) > 0x7f800000u;
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(nan ? (u >> 16) | 0x40u : r);
}

/* out (n) = in (n) rounded to bf16 (lra_bf16_of); threads over fixed chunks. */
void lra_bf16_round(uint16_t *out, const float *in, size_t n);

/* 1 when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX, as capped by
 * ONEDNN_MAX_CPU_ISA); else bf16 is emulated and slower than fp32. */
int lra_bf16_native(void);

/* The instruction set oneDNN dispatches to on this CPU, e.g. "avx512_core_bf16" (static). */
const char *lra_gemm_isa(void);

#endif
