/* bf16.c - fp32 to bf16 rounding (gemm.h), built with -O3 so that the loop runs 16 lanes wide. */
#include <string.h>

#include "gemm.h"

enum { CHUNK = 1 << 14 }; /* elements a thread rounds at a time: a fixed split, any thread count */

void lra_bf16_round(uint16_t *out, const float *in, size_t n) {
    const long chunks = (long)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (long ch = 0; ch < chunks; ch++) {
        const size_t lo = (size_t)ch * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
        for (size_t i = lo; i < hi; i++) out[i] = lra_bf16_of(in[i]);
    }
}
