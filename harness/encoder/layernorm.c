/* layernorm.c - the LayerNorm pair of layers.h. A file of its own because it is built with
 * -O3 -ffast-math (Makefile), as the attention kernels are: only then does gcc vectorise the
 * row sums (it may reorder them), which made LayerNorm a seventh of a repro training step when
 * each sum ran one element at a time. The order it picks is fixed in the binary and every row is
 * computed by one thread, so results still never depend on the thread count. dw and db are
 * summed over the rows in order, each column by one thread.
 * Nothing here depends on inf or NaN. */
#include "layers.h"

#include "gemm.h"

#include <math.h>
#include <stddef.h>

enum { COLS = 16 }; /* the bf16 rows are rounded a vector of columns at a time */

/* mean and 1 / sqrt(var + eps) of a row x (C), eps = 1e-6 (flax) */
static inline void row_stats(const float *x, int C, float *mean, float *rstd) {
    const float eps = 1e-6f;
    float m = 0.0f;
    for (int c = 0; c < C; c++) m += x[c];
    m /= C;
    float var = 0.0f;
    for (int c = 0; c < C; c++) var += (x[c] - m) * (x[c] - m);
    var /= C;
    *mean = m;
    *rstd = 1.0f / sqrtf(var + eps);
}

/* one row: o (C) = (x - mean) * rstd * w + b, its mean and rstd kept */
static inline void norm_row(float *o, float *mean, float *rstd, const float *x, const float *w, const float *b, int C) {
    float m, s;
    row_stats(x, C, &m, &s);
    for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
    *mean = m;
    *rstd = s;
}

/* the same rounded to bf16, through a block of COLS floats on the stack */
static inline void norm_row_bf16(uint16_t *o, float *mean, float *rstd, const float *x, const float *w, const float *b,
                                 int C) {
    float m, s, y[COLS];
    row_stats(x, C, &m, &s);
    for (int c0 = 0; c0 < C; c0 += COLS) {
        const int nc = C - c0 < COLS ? C - c0 : COLS;
        for (int c = 0; c < nc; c++) y[c] = (x[c0 + c] - m) * s * w[c0 + c] + b[c0 + c];
        for (int c = 0; c < nc; c++) o[c0 + c] = lra_bf16_of(y[c]);
    }
    *mean = m;
    *rstd = s;
}

void lra_layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *w,
                           const float *b, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) norm_row(out + (size_t)n * C, mean + n, rstd + n, in + (size_t)n * C, w, b, C);
}

void lra_layernorm_forward_bf16(uint16_t *out16, float *mean, float *rstd, const float *in, const float *w,
                                const float *b, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) norm_row_bf16(out16 + (size_t)n * C, mean + n, rstd + n, in + (size_t)n * C, w, b, C);
}

void lra_layernorm_rows_forward(float *out, uint16_t *out16, float *mean, float *rstd, const float *in, const float *w,
                                const float *b, int rows, int C) {
    for (int n = 0; n < rows; n++) {
        if (out16) norm_row_bf16(out16 + (size_t)n * C, mean + n, rstd + n, in + (size_t)n * C, w, b, C);
        else norm_row(out + (size_t)n * C, mean + n, rstd + n, in + (size_t)n * C, w, b, C);
    }
}

void lra_layernorm_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                            const float *w, const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C, *g = dout + (size_t)n * C;
        const float m = mean[n], s = rstd[n];
        float mg = 0.0f, mgx = 0.0f; /* means of dnorm and dnorm * xhat */
        for (int c = 0; c < C; c++) {
            float dn = g[c] * w[c];
            mg += dn;
            mgx += dn * (x[c] - m) * s;
        }
        mg /= C;
        mgx /= C;
        float *d = din + (size_t)n * C;
        for (int c = 0; c < C; c++) d[c] += s * (g[c] * w[c] - mg - (x[c] - m) * s * mgx);
    }
    /* dw, db: each thread sums its own columns over every row in order, in one pass over the rows
     * (one pass per 16 columns strode through the rows at a fifth of the memory bandwidth). The
     * product is spelled as an fmaf of g s and (x - m), the form gcc chose for the vector loop of
     * 16 columns that this replaced, so the bits stayed those of numerics 8. */
#pragma omp parallel
    {
        int lo, hi;
        lra_col_range(C, &lo, &hi);
        for (int c0 = lo; c0 < hi; c0 += LRA_SUM_COLS) {
            const int nc = hi - c0 < LRA_SUM_COLS ? hi - c0 : LRA_SUM_COLS;
            float sw[LRA_SUM_COLS] = {0}, sb[LRA_SUM_COLS] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = in + (size_t)n * C + c0, *g = dout + (size_t)n * C + c0;
                const float m = mean[n], s = rstd[n];
                for (int c = 0; c < nc; c++) {
                    sw[c] = fmaf(x[c] - m, g[c] * s, sw[c]);
                    sb[c] += g[c];
                }
            }
            for (int c = 0; c < nc; c++) {
                dw[c0 + c] += sw[c];
                db[c0 + c] += sb[c];
            }
        }
    }
}
