/* peak.c - see peak.h. Built with -ffp-contract=fast (Makefile): a * b + c must become one FMA,
 * which ISO C mode (-std=c11) otherwise forbids. */
#include "peak.h"

#include <immintrin.h>
#include <omp.h>

#include "../../attention/tile_bf16.h"
#include "../../common/lra.h"

typedef float v16 __attribute__((vector_size(64))); /* 16 floats: one AVX-512 register */
enum { CHAINS = 12, CHUNK = 1 << 16 };              /* enough independent chains to cover FMA latency */

/* CHUNK rounds of one FMA on each of CHAINS vectors held in registers (named, not an array, so
 * the compiler keeps them there); returns a sum so the work cannot be dropped. */
static float fma_chunk(v16 mul, v16 add, float seed) {
    v16 a0 = mul * seed, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5;
    v16 a6 = a0 + 6, a7 = a0 + 7, a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11;
    for (int n = 0; n < CHUNK; n++) {
        a0 = a0 * mul + add; a1 = a1 * mul + add; a2 = a2 * mul + add; a3 = a3 * mul + add;
        a4 = a4 * mul + add; a5 = a5 * mul + add; a6 = a6 * mul + add; a7 = a7 * mul + add;
        a8 = a8 * mul + add; a9 = a9 * mul + add; a10 = a10 * mul + add; a11 = a11 * mul + add;
    }
    v16 t = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
    float s = 0;
    for (int k = 0; k < 16; k++) s += t[k];
    return s;
}

/* The best of three runs of about 0.1 s of chunk() on every thread, in GFLOP/s */
static double best_of_three(int threads, float (*chunk)(float), double flops_per_chunk) {
    double best = 0;
    volatile float sink = 0;
    for (int run = 0; run < 3; run++) {
        long chunks_total = 0;
        const double t0 = lra_now();
#pragma omp parallel num_threads(threads) reduction(+ : chunks_total)
        {
            float s = 0;
            while (lra_now() - t0 < 0.1) { s += chunk(s * 1e-30f); chunks_total++; }
#pragma omp atomic
            sink += s; /* keeps the loop alive */
        }
        const double secs = lra_now() - t0, flops = flops_per_chunk * (double)chunks_total;
        if (flops / secs > best) best = flops / secs;
    }
    (void)sink;
    return best / 1e9;
}

static float fp32_chunk(float seed) {
    v16 mul, add;
    for (int k = 0; k < 16; k++) { mul[k] = 0.999999f; add[k] = 1e-6f; }
    return fma_chunk(mul, add, seed);
}

double lra_peak_gflops(int threads) { return best_of_three(threads, fp32_chunk, 2.0 * 16 * CHAINS * (double)CHUNK); }

/* bf16: CHUNK rounds of vdpbf16ps (32 bf16 products summed pairwise into 16 fp32 lanes: 64 flops)
 * on CHAINS accumulators. Each chain starts from its own value, as fma_chunk's do: chains that
 * all started from the seed computed the same values, and gcc kept one of the twelve - one
 * latency-bound chain that this function counted twelve times, which reported twice Zen 4's
 * peak until it was caught. Compiled for AVX512-BF16 whatever the build targets; run only where
 * the CPU has it. */
__attribute__((target("avx512f,avx512bf16"))) static float dp_chunk(float seed) {
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380); /* 1, 2^-24 */
    const __m512 c = _mm512_set1_ps(seed), one = _mm512_set1_ps(1.0f);
    __m512 c0 = c, c1 = _mm512_add_ps(c0, one), c2 = _mm512_add_ps(c1, one), c3 = _mm512_add_ps(c2, one);
    __m512 c4 = _mm512_add_ps(c3, one), c5 = _mm512_add_ps(c4, one), c6 = _mm512_add_ps(c5, one);
    __m512 c7 = _mm512_add_ps(c6, one), c8 = _mm512_add_ps(c7, one), c9 = _mm512_add_ps(c8, one);
    __m512 c10 = _mm512_add_ps(c9, one), c11 = _mm512_add_ps(c10, one);
    for (int n = 0; n < CHUNK; n++) {
        c0 = _mm512_dpbf16_ps(c0, a, b); c1 = _mm512_dpbf16_ps(c1, a, b); c2 = _mm512_dpbf16_ps(c2, a, b);
        c3 = _mm512_dpbf16_ps(c3, a, b); c4 = _mm512_dpbf16_ps(c4, a, b); c5 = _mm512_dpbf16_ps(c5, a, b);
        c6 = _mm512_dpbf16_ps(c6, a, b); c7 = _mm512_dpbf16_ps(c7, a, b); c8 = _mm512_dpbf16_ps(c8, a, b);
        c9 = _mm512_dpbf16_ps(c9, a, b); c10 = _mm512_dpbf16_ps(c10, a, b); c11 = _mm512_dpbf16_ps(c11, a, b);
    }
    __m512 t = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    t = _mm512_add_ps(t, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(t);
}

/* AMX: CHUNK / 16 rounds of tdpbf16ps on four accumulator tiles from two tiles of A and two of B
 * (the layout of tile_amx.c's 32 x 32 blocks), every tile 16 rows of 64 bytes; operands of zero,
 * the speed of these units does not depend on the values. */
__attribute__((target("amx-tile,amx-bf16"))) static float amx_chunk(float seed) {
    static const uint16_t zeros[16 * 32];
    float out[16 * 16];
    lra_tile_amx_configure();
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, zeros, 64); _tile_loadd(5, zeros, 64); _tile_loadd(6, zeros, 64); _tile_loadd(7, zeros, 64);
    for (int n = 0; n < CHUNK / 16; n++) {
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return seed + out[0];
}

double lra_peak_amx_gflops(int threads) {
    if (!lra_tile_amx_usable()) return 0;
    return best_of_three(threads, amx_chunk, 4.0 * 16384 * (CHUNK / 16));
}

double lra_peak_bf16_gflops(int threads) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) return 0;
    return best_of_three(threads, dp_chunk, 64.0 * CHAINS * (double)CHUNK);
}
