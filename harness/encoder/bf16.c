/* bf16.c - fp32 to bf16 rounding (gemm.h), built with -O3 so that the loop runs 16 lanes wide. */
#include <string.h>

#include "gemm.h"

enum { CHUNK = 1 << 14 }; /* elements a thread rounds at a time: a fixed split, any thread count */

void lra_bf16_round(uint16_t *out, const float *in, size_t n) {
    const long chunks = (long)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (long ch = 0; ch < chunks; ch++) {
        const size_t lo = (size_t)ch * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
        for (size_t i = lo; i < hi; i++) {
            uint32_t u;
            memcpy(&u, in + i, sizeof u);
            /* nearest even: add 0x7fff plus the lowest kept bit; a NaN keeps a set mantissa bit */
            const uint32_t nan = (u & 0x7fffffffu) > 0x7f800000u;
            const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
            out[i] = (uint16_t)(nan ? (u >> 16) | 0x40u : r);
        }
    }
}
