/* peak.c - see peak.h. Built with -ffp-contract=fast (Makefile): a * b + c must become one FMA,
 * which ISO C mode (-std=c11) otherwise forbids. */
#include "peak.h"

#include <omp.h>

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

double lra_peak_gflops(int threads) {
    double best = 0;
    volatile float sink = 0;
    for (int run = 0; run < 3; run++) {
        long chunks_total = 0;
        const double t0 = lra_now();
#pragma omp parallel num_threads(threads) reduction(+ : chunks_total)
        {
            v16 mul, add;
            for (int k = 0; k < 16; k++) { mul[k] = 0.999999f; add[k] = 1e-6f; }
            float s = 0;
            while (lra_now() - t0 < 0.1) { s += fma_chunk(mul, add, s * 1e-30f); chunks_total++; }
#pragma omp atomic
            sink += s; /* keeps the loop alive */
        }
        const double secs = lra_now() - t0, flops = 2.0 * 16 * CHAINS * (double)CHUNK * (double)chunks_total;
        if (flops / secs > best) best = flops / secs;
    }
    (void)sink;
    return best / 1e9;
}
