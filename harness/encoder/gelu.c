/* gelu.c - the GELU pair of layers.h: the exact form x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, as
 * the reproduction's PyTorch model uses (nn.GELU); flax's official code uses the tanh
 * approximation, which differs by up to 5e-4 (numerics 8 switched; before it this was tanh).
 * A file of its own because it is built with -ffast-math (Makefile): only then does gcc call
 * glibc's vector erff and expf (libmvec), which made GELU a sixth of a repro training step when
 * it ran one scalar libm call per element. Vector and scalar libm differ in the last bits, so every
 * element goes through the same vector code: blocks of GB elements at fixed offsets, the last
 * partial block through a padded copy - the result never depends on how threads split the array.
 * The row functions serve layers.c's fused GELU and dropout, which keeps the mask's multiply
 * outside this -ffast-math file so that it is never merged into GELU's own constants. Over full
 * blocks they give the bits of the whole-array functions; a padded rest inside a row would not
 * (gcc compiles each inlined copy its own way), so layers.c fuses only rows of whole blocks.
 * Nothing here depends on inf or NaN. */
#include "layers.h"

#include <math.h>
#include <string.h>

#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f
enum { GB = LRA_GELU_BLOCK };

static inline void forward_block(float *restrict out, const float *restrict in) {
#pragma omp simd
    for (int i = 0; i < GB; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + erff(x * INV_SQRT2));
    }
}

static inline void backward_block(float *restrict din, const float *restrict in, const float *restrict dout) {
#pragma omp simd
    for (int i = 0; i < GB; i++) {
        float x = in[i];
        /* d/dx x Phi(x) = Phi(x) + x phi(x) */
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2)), pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        din[i] += dout[i] * (cdf + x * pdf);
    }
}

static inline void backward_block_set(float *restrict din, const float *restrict in, const float *restrict dout) {
#pragma omp simd
    for (int i = 0; i < GB; i++) {
        float x = in[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2)), pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        din[i] = dout[i] * (cdf + x * pdf);
    }
}

void lra_gelu_row_forward(float *out, const float *in, int n) {
    for (int b = 0; b < n / GB; b++) forward_block(out + b * GB, in + b * GB);
}

void lra_gelu_row_backward_set(float *din, const float *in, const float *dout, int n) {
    for (int b = 0; b < n / GB; b++) backward_block_set(din + b * GB, in + b * GB, dout + b * GB);
}

void lra_gelu_forward(float *out, const float *in, long N) {
    const long full = N / GB, rest = N % GB;
#pragma omp parallel for
    for (long b = 0; b < full; b++) forward_block(out + b * GB, in + b * GB);
    if (rest) {
        float x[GB] = {0}, y[GB];
        memcpy(x, in + full * GB, sizeof(float) * rest);
        forward_block(y, x);
        memcpy(out + full * GB, y, sizeof(float) * rest);
    }
}

void lra_gelu_backward(float *din, const float *in, const float *dout, long N) {
    const long full = N / GB, rest = N % GB;
#pragma omp parallel for
    for (long b = 0; b < full; b++) backward_block(din + b * GB, in + b * GB, dout + b * GB);
    if (rest) {
        float x[GB] = {0}, g[GB] = {0}, d[GB] = {0};
        memcpy(x, in + full * GB, sizeof(float) * rest);
        memcpy(g, dout + full * GB, sizeof(float) * rest);
        memcpy(d, din + full * GB, sizeof(float) * rest);
        backward_block(d, x, g);
        memcpy(din + full * GB, d, sizeof(float) * rest);
    }
}
