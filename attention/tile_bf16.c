/* tile_bf16.c - bf16 tile products on AVX512-BF16 (tile_bf16.h), and the choice between these and
 * the AMX tiles of tile_amx.c, made at run time: every function but the checks is compiled for
 * AVX512-BF16, and nothing calls them on a CPU without it. Rounding is vcvtneps2bf16's: nearest
 * even. */
#include <ctype.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "tile_bf16.h"
#include "transpose16.h"

/* oneDNN 2.6's ONEDNN_MAX_CPU_ISA names, lowest first: a cap lets through its own level and those
 * below it. The two levels these kernels need are the last two. */
static const char *const isa_levels[] = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_MIC", "AVX512_MIC_4OPS",
                                         "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_AMX"};
enum { LEVEL_BF16 = 8, LEVEL_AMX = 9, LEVELS = 10 };
_Static_assert(sizeof isa_levels / sizeof *isa_levels == LEVELS, "isa_levels and LEVELS disagree");

/* ONEDNN_MAX_CPU_ISA's position in isa_levels; LEVELS (no cap) when unset, ALL or a name past 2.6's */
static int isa_cap(void) {
    const char *cap = getenv("ONEDNN_MAX_CPU_ISA");
    if (!cap) return LEVELS;
    char up[32];
    size_t n = 0;
    for (; cap[n] && n + 1 < sizeof up; n++) up[n] = (char)toupper((unsigned char)cap[n]);
    up[n] = '\0';
    for (int i = 0; i < LEVELS; i++)
        if (strcmp(up, isa_levels[i]) == 0) return i;
    return LEVELS;
}

/* read on every call (a getenv per attention call), so that a test can cap it within a process */
lra_tile_isa lra_tile_bf16_isa(void) {
    __builtin_cpu_init();
    const int cap = isa_cap();
    if (!__builtin_cpu_supports("avx512bf16") || cap < LEVEL_BF16) return LRA_TILE_NONE;
    return cap >= LEVEL_AMX && lra_tile_amx_usable() ? LRA_TILE_AMX : LRA_TILE_AVX512_BF16;
}

int lra_tile_bf16_native(void) { return lra_tile_bf16_isa() != LRA_TILE_NONE; }

const char *lra_tile_isa_name(lra_tile_isa isa) {
    return isa == LRA_TILE_AMX ? "amx_bf16" : isa == LRA_TILE_AVX512_BF16 ? "avx512_bf16" : "none";
}

#define BF16_TARGET LRA_BF16_TARGET

BF16_TARGET void lra_bf16_rows(uint16_t *out, int ldo, const float *X, int ldx, int rows, int cols, float scale) {
    for (int r = 0; r < rows; r++) {
        uint16_t *o = out + (size_t)r * ldo;
        const float *x = X + (size_t)r * ldx;
        for (int c = 0; c < cols; c += 16) {
            const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(lra_lanes16(cols - c), x + c), _mm512_set1_ps(scale));
            lra_bf16_store16(o + c, lra_lanes16(cols - c), v);
        }
        if (cols & 1) o[cols] = 0;
    }
}

/* 16 x 16 blocks transposed in registers: a gather per 16 elements cost 4% of moe's bf16 step */
BF16_TARGET void lra_bf16_rows_t(uint16_t *out, int ldo, const float *X, int ldx, int rows, int cols, float scale) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int r0 = 0; r0 < rows; r0 += 16) {
        const int nr = rows - r0 < 16 ? rows - r0 : 16;
        for (int c0 = 0; c0 < cols; c0 += 16) {
            const int nc = cols - c0 < 16 ? cols - c0 : 16;
            __m512 blk[16];
            lra_block16_t(blk, X + (size_t)r0 * ldx + c0, (size_t)ldx, nr, nc);
            for (int c = 0; c < nc; c++)
                lra_bf16_store16(out + (size_t)(c0 + c) * ldo + r0, lra_lanes16(nr), _mm512_mul_ps(blk[c], sc));
        }
    }
    if (rows & 1)
        for (int c = 0; c < cols; c++) out[(size_t)c * ldo + rows] = 0;
}

/* 16 columns of two rows at a time (lra_bf16_store_pairs16) */
BF16_TARGET void lra_bf16_pairs_rows(uint16_t *Bp, int ldb, const float *X, int ldx, int rows, int cols, float scale) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int p = 0; p < (rows + 1) / 2; p++) {
        uint16_t *o = Bp + (size_t)p * ldb * 2;
        const float *x0 = X + (size_t)(2 * p) * ldx, *x1 = x0 + ldx;
        const int has1 = 2 * p + 1 < rows;
        for (int n = 0; n < cols; n += 16) {
            const __mmask16 k = lra_lanes16(cols - n);
            const __m512 lo = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x0 + n), sc);
            const __m512 hi = has1 ? _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x1 + n), sc) : _mm512_setzero_ps();
            lra_bf16_store_pairs16(o + 2 * n, k, lo, hi);
        }
    }
}

/* 16 rows x 16 pairs at a time: each row's pairs are its bf16 values in order (32-bit words), and
 * the 16 x 16 block of words is transposed in registers, one row of Bp per pair */
BF16_TARGET void lra_bf16_pairs_cols(uint16_t *Bp, int ldb, const float *X, int ldx, int rows, int cols) {
    for (int n0 = 0; n0 < rows; n0 += 16) {
        const int nr = rows - n0 < 16 ? rows - n0 : 16;
        for (int c0 = 0; c0 < cols; c0 += 32) {
            const int m = cols - c0 < 32 ? cols - c0 : 32, pairs = (m + 1) / 2;
            __m512 blk[16];
            for (int i = 0; i < 16; i++) {
                if (i >= nr) { blk[i] = _mm512_setzero_ps(); continue; }
                const float *x = X + (size_t)(n0 + i) * ldx + c0;
                const __m512 a = _mm512_maskz_loadu_ps(lra_lanes16(m), x), b = _mm512_maskz_loadu_ps(lra_lanes16(m - 16), x + 16);
                blk[i] = (__m512)_mm512_cvtne2ps_pbh(b, a); /* a's 16 then b's 16: 16 pairs in order */
            }
            lra_transpose16(blk);
            for (int p = 0; p < pairs; p++)
                _mm512_mask_storeu_epi32(Bp + ((size_t)(c0 / 2 + p) * ldb + n0) * 2, lra_lanes16(nr), (__m512i)blk[p]);
        }
    }
}

/* nr (<= 8) rows of C, nv (<= 4; nr * nv <= 16) vectors of 16 columns from n0: accumulators stay in registers
 * through the whole reduction; B's vectors load once per pair and serve all nr rows */
BF16_TARGET static inline __attribute__((always_inline)) void rows_kernel(int nr, int nv, int K2, const uint16_t *A,
                                                                          int lda, const uint16_t *Bp, int ldb,
                                                                          int n0, int N, float *C, int ldc,
                                                                          int accumulate) {
    __m512 acc[8][4];
    __mmask16 mk[4];
    _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) {
        const int rem = N - n0 - 16 * v;
        mk[v] = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1);
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < nr; r++)
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++)
            acc[r][v] = accumulate ? _mm512_maskz_loadu_ps(mk[v], C + (size_t)r * ldc + n0 + 16 * v)
                                   : _mm512_setzero_ps();
    for (int p = 0; p < K2; p++) {
        __m512bh b[4];
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++)
            b[v] = (__m512bh)_mm512_maskz_loadu_epi32(mk[v], Bp + ((size_t)p * ldb + n0 + 16 * v) * 2);
        _Pragma("GCC unroll 8") for (int r = 0; r < nr; r++) {
            int32_t pair;
            memcpy(&pair, A + (size_t)r * lda + 2 * p, sizeof pair);
            const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
            _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b[v]);
        }
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < nr; r++)
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(C + (size_t)r * ldc + n0 + 16 * v, mk[v], acc[r][v]);
}

/* the kernel specialised on its row and vector counts, so that its arrays live in registers */
#define ROWS_CASE(nr, nv) rows_kernel(nr, nv, K2, A, lda, Bp, ldb, n0, N, C, ldc, accumulate)
BF16_TARGET static void rows_block(int nr, int nv, int K2, const uint16_t *A, int lda, const uint16_t *Bp, int ldb,
                                   int n0, int N, float *C, int ldc, int accumulate) {
    switch (nr * 8 + nv) {
    case 8 * 8 + 2: ROWS_CASE(8, 2); break;
    case 8 * 8 + 1: ROWS_CASE(8, 1); break;
    case 4 * 8 + 4: ROWS_CASE(4, 4); break;
    case 4 * 8 + 3: ROWS_CASE(4, 3); break;
    case 4 * 8 + 2: ROWS_CASE(4, 2); break;
    case 4 * 8 + 1: ROWS_CASE(4, 1); break;
    default:
        for (int r = 0; r < nr; r++)
            switch (nv) {
            case 4: rows_kernel(1, 4, K2, A + (size_t)r * lda, lda, Bp, ldb, n0, N, C + (size_t)r * ldc, ldc, accumulate); break;
            case 3: rows_kernel(1, 3, K2, A + (size_t)r * lda, lda, Bp, ldb, n0, N, C + (size_t)r * ldc, ldc, accumulate); break;
            case 2: rows_kernel(1, 2, K2, A + (size_t)r * lda, lda, Bp, ldb, n0, N, C + (size_t)r * ldc, ldc, accumulate); break;
            default: rows_kernel(1, 1, K2, A + (size_t)r * lda, lda, Bp, ldb, n0, N, C + (size_t)r * ldc, ldc, accumulate);
            }
    }
}

BF16_TARGET void lra_tile_vdp(int M, int N, int K2, const uint16_t *A, int lda, const uint16_t *Bp, int ldb,
                              float *C, int ldc, int accumulate) {
    for (int n0 = 0; n0 < N; n0 += 64) {
        const int nv = (N - n0 + 15) / 16 < 4 ? (N - n0 + 15) / 16 : 4;
        const int rb = nv <= 2 ? 8 : 4; /* 16 accumulators where they fit: enough chains to hide vdpbf16ps's latency */
        for (int i = 0; i < M; i += rb)
            rows_block(M - i < rb ? M - i : rb, nv, K2, A + (size_t)i * lda, lda, Bp, ldb, n0, N, C + (size_t)i * ldc,
                       ldc, accumulate);
    }
}

void lra_tile_bf16(lra_tile_isa isa, int M, int N, int K2, const uint16_t *A, int lda, const uint16_t *Bp, int ldb,
                   float *C, int ldc, int accumulate) {
    if (isa == LRA_TILE_AMX) lra_tile_amx(M, N, K2, A, lda, Bp, ldb, C, ldc, accumulate);
    else lra_tile_vdp(M, N, K2, A, lda, Bp, ldb, C, ldc, accumulate);
}

size_t lra_tile_gemm_work(int M, int N, int K) {
    const size_t kp = (size_t)lra_bf16_even(K);
    return (size_t)M * kp + kp * (size_t)N;
}

void lra_tile_gemm_b16(lra_tile_isa bf16, uint16_t *work, int transA, int M, int N, int K, float alpha, const float *A,
                       int lda, const uint16_t *Bp, float beta, float *C, int ldc) {
    const int kp = lra_bf16_even(K);
    if (transA) lra_bf16_rows_t(work, kp, A, lda, K, M, alpha); /* A stored (K, M) */
    else lra_bf16_rows(work, kp, A, lda, M, K, alpha);
    lra_tile_bf16(bf16, M, N, kp / 2, work, kp, Bp, N, C, ldc, beta != 0.0f);
}

void lra_tile_gemm_a16(lra_tile_isa bf16, uint16_t *work, int M, int N, int K, const uint16_t *Ab, const float *B,
                       int ldb, float beta, float *C, int ldc) {
    const int kp = lra_bf16_even(K);
    lra_bf16_pairs_rows(work, N, B, ldb, K, N, 1.0f);
    lra_tile_bf16(bf16, M, N, kp / 2, Ab, kp, work, N, C, ldc, beta != 0.0f);
}

void lra_tile_gemm(lra_tile_isa bf16, uint16_t *work, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (!bf16) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K,
                    alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    uint16_t *Bp = work + (size_t)M * lra_bf16_even(K); /* op(A) goes below it, rounded by _b16 */
    if (transB) lra_bf16_pairs_cols(Bp, N, B, ldb, N, K); /* B stored (N, K) */
    else lra_bf16_pairs_rows(Bp, N, B, ldb, K, N, 1.0f);
    lra_tile_gemm_b16(bf16, work, transA, M, N, K, alpha, A, lda, Bp, beta, C, ldc);
}
