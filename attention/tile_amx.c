/* tile_amx.c - lra_tile_bf16's product on AMX tiles (tile_bf16.h): C (M, N) = A (M, 2 K2) B + (C or 0).
 *
 * The operands are already in AMX's layout: A's rows hold pairs of bf16 (a tile row is 16 pairs,
 * 64 bytes) and Bp holds B in pairs along the reduction (a tile row is one pair for 16 columns).
 * C is taken 32 x 32 at a time in four accumulator tiles (tmm0-3: rows r, columns c at 2 r + c),
 * against two tiles of A (tmm4-5) and two of B (tmm6-7), K2 walked 16 pairs a tile. Every tile is
 * configured 16 rows x 64 bytes once per call; a block past an edge of M, N or K2 is copied into
 * a zeroed staging buffer first, so that the rows, columns and pairs past the edge add zeros. The
 * staging and the order of the reduction depend on the shapes alone, so results are a function
 * of the arguments: the same bits on every thread, in any blocking of the caller's.
 *
 * AMX state is per thread. Each call reads the thread's tile configuration (sttilecfg, about 13
 * ns here) and loads its own only where another is there or none (ldtilecfg, 70-100 ns: loading
 * and releasing on every call cost a quarter of a 64 x 32 x 32 product). It leaves the tiles
 * configured: oneDNN's AMX kernels, which run in turns with ours on the same threads, configure
 * their own before use, and so does anything that calls lra_tile_amx_configure. No product reads
 * a tile it has not loaded or zeroed, so the bits never depend on what a tile held before.
 * Linux grants a process the tile registers only on request (arch_prctl(ARCH_REQ_XCOMP_PERM));
 * lra_tile_amx_usable() asks once. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tile_bf16.h"

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))

enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };

/* CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE (read directly: clang 14's
 * __builtin_cpu_supports knows neither name) */
static int cpu_has_amx_bf16(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (d >> 22 & 1) && (d >> 24 & 1);
}

static int amx_granted;
static void request_amx(void) {
    amx_granted = cpu_has_amx_bf16() && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int lra_tile_amx_usable(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, request_amx);
    return amx_granted;
}

/* ldtilecfg's 64 bytes, palette 1: every tile 16 rows of 64 bytes */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

enum { TR = 16, TP = 16 }; /* a tile: 16 rows of 16 pairs (A), 16 pairs of 16 columns (B), 16 x 16 (C) */

static int clip16(int n) { return n < 0 ? 0 : n > 16 ? 16 : n; }

/* rows x pairs of A (row stride lda bf16) into a 16 x 16-pair tile, zero elsewhere */
static void stage_a(uint32_t *pad, const uint16_t *A, int lda, int rows, int pairs) {
    memset(pad, 0, TR * TP * sizeof *pad);
    for (int r = 0; r < rows; r++) memcpy(pad + r * TP, A + (size_t)r * lda, (size_t)pairs * 4);
}

/* pairs x cols of Bp (row stride ldb pairs) into a 16-pair x 16-column tile, zero elsewhere */
static void stage_b(uint32_t *pad, const uint16_t *Bp, int ldb, int pairs, int cols) {
    memset(pad, 0, TP * 16 * sizeof *pad);
    for (int p = 0; p < pairs; p++) memcpy(pad + p * 16, Bp + (size_t)p * ldb * 2, (size_t)cols * 4);
}

/* rows x cols of C into a 16 x 16 tile (zero elsewhere), and back */
static void stage_c(float *pad, const float *C, int ldc, int rows, int cols) {
    memset(pad, 0, 16 * 16 * sizeof *pad);
    for (int r = 0; r < rows; r++) memcpy(pad + r * 16, C + (size_t)r * ldc, (size_t)cols * 4);
}
static void unstage_c(float *C, int ldc, const float *pad, int rows, int cols) {
    for (int r = 0; r < rows; r++) memcpy(C + (size_t)r * ldc, pad + r * 16, (size_t)cols * 4);
}

/* One accumulator tile: loaded from C (or zeroed), stored back; directly where it is whole */
#define C_LOAD(t, r, c)                                                                                              \
    do {                                                                                                             \
        float *c0 = C + (size_t)(m0 + 16 * (r)) * ldc + n0 + 16 * (c);                                               \
        if (!accumulate) _tile_zero(t);                                                                              \
        else if (rows[r] == 16 && cols[c] == 16) _tile_loadd(t, c0, ldc * 4);                                        \
        else { stage_c(cpad[t], c0, ldc, rows[r], cols[c]); _tile_loadd(t, cpad[t], 64); }                          \
    } while (0)
#define C_STORE(t, r, c)                                                                                             \
    do {                                                                                                             \
        float *c0 = C + (size_t)(m0 + 16 * (r)) * ldc + n0 + 16 * (c);                                               \
        if (rows[r] == 16 && cols[c] == 16) _tile_stored(t, c0, ldc * 4);                                            \
        else { _tile_stored(t, cpad[t], 64); unstage_c(c0, ldc, cpad[t], rows[r], cols[c]); }                      \
    } while (0)
#define A_LOAD(t, r)                                                                                                 \
    do {                                                                                                             \
        const uint16_t *a0 = A + (size_t)(m0 + 16 * (r)) * lda + 2 * k0;                                            \
        if (rows[r] == 16 && kp == 16) _tile_loadd(t, a0, lda * 2);                                                  \
        else { stage_a(apad[r], a0, lda, rows[r], kp); _tile_loadd(t, apad[r], 64); }                                \
    } while (0)
#define B_LOAD(t, c)                                                                                                 \
    do {                                                                                                             \
        const uint16_t *b0 = Bp + ((size_t)k0 * ldb + n0 + 16 * (c)) * 2;                                           \
        if (cols[c] == 16 && kp == 16) _tile_loadd(t, b0, ldb * 4);                                                  \
        else { stage_b(bpad[c], b0, ldb, kp, cols[c]); _tile_loadd(t, bpad[c], 64); }                                \
    } while (0)

/* A constant in memory: gcc 12 does not see that ldtilecfg reads its operand, and dropped the
 * stores of a configuration built on the stack (the tiles then fault as unconfigured). */
static const amx_config tiles_16x64 = {.palette = 1,
                                       .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                       .rows = {16, 16, 16, 16, 16, 16, 16, 16}};

AMX_TARGET void lra_tile_amx_configure(void) { _tile_loadconfig(&tiles_16x64); }

/* ours unless it is loaded already (a released thread reads as all zeros) */
AMX_TARGET static void configure_once(void) {
    amx_config now;
    _tile_storeconfig(&now);
    if (memcmp(&now, &tiles_16x64, sizeof now) != 0) lra_tile_amx_configure();
}

AMX_TARGET void lra_tile_amx(int M, int N, int K2, const uint16_t *A, int lda, const uint16_t *Bp, int ldb, float *C,
                             int ldc, int accumulate) {
    configure_once();
    uint32_t apad[2][TR * TP], bpad[2][TP * 16];
    float cpad[4][16 * 16];
    for (int n0 = 0; n0 < N; n0 += 32)
        for (int m0 = 0; m0 < M; m0 += 32) {
            const int rows[2] = {clip16(M - m0), clip16(M - m0 - 16)}, cols[2] = {clip16(N - n0), clip16(N - n0 - 16)};
            C_LOAD(0, 0, 0);
            if (cols[1]) C_LOAD(1, 0, 1);
            if (rows[1]) C_LOAD(2, 1, 0);
            if (rows[1] && cols[1]) C_LOAD(3, 1, 1);
            for (int k0 = 0; k0 < K2; k0 += TP) {
                const int kp = clip16(K2 - k0);
                A_LOAD(4, 0);
                B_LOAD(6, 0);
                _tile_dpbf16ps(0, 4, 6);
                if (cols[1]) { B_LOAD(7, 1); _tile_dpbf16ps(1, 4, 7); }
                if (rows[1]) { A_LOAD(5, 1); _tile_dpbf16ps(2, 5, 6); }
                if (rows[1] && cols[1]) _tile_dpbf16ps(3, 5, 7);
            }
            C_STORE(0, 0, 0);
            if (cols[1]) C_STORE(1, 0, 1);
            if (rows[1]) C_STORE(2, 1, 0);
            if (rows[1] && cols[1]) C_STORE(3, 1, 1);
        }
}
