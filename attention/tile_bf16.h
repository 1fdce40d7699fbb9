/* tile_bf16.h - bf16 products of attention tiles, for backends that honour LRA_BF16.
 *
 * Rules. Operands are bf16 (uint16: the top half of an fp32, rounded to nearest even); sums are
 * fp32. "A" operands are row-major with an even number of columns (the packers pad with a zero
 * column). "B" operands are stored in pairs along their reduction axis (the layout of AVX512-BF16's
 * vdpbf16ps and of AMX): element (kk, n) of B sits at Bp[((kk / 2) * ldb + n) * 2 + kk % 2], zero
 * past the last kk. lra_tile_bf16_isa() says how this CPU multiplies bf16, as capped by
 * ONEDNN_MAX_CPU_ISA (one knob for oneDNN and these kernels): AMX tiles (tile_amx.c) where the CPU
 * and Linux give them, vdpbf16ps where it has AVX512-BF16, neither otherwise, where a backend runs
 * its fp32 path instead (faster there than emulating bf16). A backend asks once per call and
 * passes the answer to every product. The two kernels sum each element's pairs in order but may
 * round a pair's two products differently: their results differ in the last bits, so a run's
 * bits hold on one machine at one ISA. One call runs on the calling thread; results depend on
 * nothing but the arguments. */
#ifndef LRA_TILE_BF16_H
#define LRA_TILE_BF16_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* n rounded up to even: the length of a bf16 operand's rows (and the 2 K2 of lra_tile_bf16), whose
 * pairs are whole, padded with a zero */
static inline int lra_bf16_even(int n) { return n + (n & 1); }

typedef enum { LRA_TILE_NONE, LRA_TILE_AVX512_BF16, LRA_TILE_AMX } lra_tile_isa;

/* The kernel this CPU runs, as capped (read on every call, so that a test can cap it); NONE: call
 * none of the functions below. _native: not NONE. _name: "amx_bf16", "avx512_bf16" or "none". */
lra_tile_isa lra_tile_bf16_isa(void);
int lra_tile_bf16_native(void);
const char *lra_tile_isa_name(lra_tile_isa isa);

/* C (M, N) = A (M, 2 K2) B (2 K2, N) + (accumulate ? C : 0); A row stride lda, Bp in pairs with
 * row stride ldb (pairs), C row stride ldc; on isa's kernel (AVX512_BF16 or AMX). _vdp and _amx
 * are the two kernels themselves (_amx only where lra_tile_amx_usable()). */
void lra_tile_bf16(lra_tile_isa isa, int M, int N, int K2, const uint16_t *A, int lda, const uint16_t *Bp, int ldb,
                   float *C, int ldc, int accumulate);
void lra_tile_vdp(int M, int N, int K2, const uint16_t *A, int lda, const uint16_t *Bp, int ldb, float *C, int ldc,
                  int accumulate);
void lra_tile_amx(int M, int N, int K2, const uint16_t *A, int lda, const uint16_t *Bp, int ldb, float *C, int ldc,
                  int accumulate);
/* 1 where the CPU has AMX-BF16 and Linux granted this process its tiles (asked once). _configure:
 * this thread's eight tiles as 16 rows of 64 bytes (the caller releases them: _tile_release). */
int lra_tile_amx_usable(void);
void lra_tile_amx_configure(void);

/* A operands. out (rows, cols rounded up to even; row stride ldo) = bf16(scale X) for X (rows,
 * cols; row stride ldx); _t: out (cols, rows rounded up to even) = bf16(scale X^T). */
void lra_bf16_rows(uint16_t *out, int ldo, const float *X, int ldx, int rows, int cols, float scale);
void lra_bf16_rows_t(uint16_t *out, int ldo, const float *X, int ldx, int rows, int cols, float scale);
/* B operands in pairs (row stride ldb pairs). _rows: B = bf16(scale X), reduced over X's rows (V
 * in P V, P in dO^T P); _cols: B = X^T, reduced over X's columns (K in Q K^T, V in dO V^T). */
void lra_bf16_pairs_rows(uint16_t *Bp, int ldb, const float *X, int ldx, int rows, int cols, float scale);
void lra_bf16_pairs_cols(uint16_t *Bp, int ldb, const float *X, int ldx, int rows, int cols);

/* One product of a backend's tiles, with cblas_sgemm's row-major meaning: C (M, N) = alpha op(A)
 * op(B) + beta C, beta 0 or 1. bf16 NONE (fp32): cblas_sgemm. Otherwise (lra_tile_bf16_isa()'s
 * answer): alpha op(A) and op(B) rounded into work, then lra_tile_bf16 on that kernel - for
 * products whose operands are not reused (a backend that reuses one packs it once and calls
 * lra_tile_bf16 itself, as full.c and moe.c do). work: lra_tile_gemm_work(M, N, K) uint16s. */
void lra_tile_gemm(lra_tile_isa bf16, uint16_t *work, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);
size_t lra_tile_gemm_work(int M, int N, int K);
/* The same with one operand rounded once by the caller, for an operand that serves many products
 * (the same rounding, so the same bits as lra_tile_gemm). _b16: op(B) is Bp, as
 * lra_bf16_pairs_rows(Bp, N, B, ldb, K, N, 1) or lra_bf16_pairs_cols(Bp, N, B, ldb, N, K) wrote it
 * (row stride N pairs); op(A) is rounded into work as lra_tile_gemm rounds it. _a16: alpha op(A)
 * is Ab, as lra_bf16_rows / _rows_t wrote it with alpha (row stride lra_bf16_even(K)); B is
 * (K, N) as stored, rounded into work. Not for bf16 NONE. */
void lra_tile_gemm_b16(lra_tile_isa bf16, uint16_t *work, int transA, int M, int N, int K, float alpha, const float *A,
                       int lda, const uint16_t *Bp, float beta, float *C, int ldc);
void lra_tile_gemm_a16(lra_tile_isa bf16, uint16_t *work, int M, int N, int K, const uint16_t *Ab, const float *B,
                       int ldb, float beta, float *C, int ldc);

/* 16 lanes rounded where they are made, for a pass that would otherwise store fp32 for one of the
 * packers above to read back; the same rounding, so the same bits. Call only where
 * lra_tile_bf16_isa() is not NONE. _store16: out[i] = bf16(x[i]) for the lanes i in k (16
 * columns of an A row). _store_pairs16: 16 columns of two B rows, x0 the even one, as 16 pairs:
 * out[2 i] = bf16(x0[i]), out[2 i + 1] = bf16(x1[i]) for the lanes i in k (out: element 2 n of a
 * pair row, for the columns from n, as lra_bf16_pairs_rows writes them). */
#define LRA_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
LRA_BF16_TARGET static inline void lra_bf16_store16(uint16_t *out, __mmask16 k, __m512 x) {
    _mm256_mask_storeu_epi16(out, k, (__m256i)_mm512_cvtneps_pbh(x));
}
LRA_BF16_TARGET static inline void lra_bf16_store_pairs16(uint16_t *out, __mmask16 k, __m512 x0, __m512 x1) {
    /* one vcvtne2ps2bf16 rounds both (x0's 16 words, then x1's); one vpermw interleaves them */
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    _mm512_mask_storeu_epi32(out, k, _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(x1, x0)));
}

#endif
