/* layernorm.c - the LayerNorm pair of layers.h. A file of its own because it is built with
 * -O3 -ffast-math (Makefile), as the attention kernels are: only then does gcc vectorise the
 * row sums (it may reorder them), which made LayerNorm a seventh of a repro training step when
 * each sum ran one element at a time. The order it picks is fixed in the binary and every row is
 * computed by one thread, so results still never depend on the thread count. dw and db are
 * summed over rows by columns: each thread owns a fixed range of columns and walks every row.
 * Nothing here depends on inf or NaN. */
#include "layers.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>

/* the column range [c0, c1) of C columns that this thread owns */
static void col_range(int C, int *c0, int *c1) {
    int id = omp_get_thread_num(), n = omp_get_num_threads();
    *c0 = (int)((long)C * id / n);
    *c1 = (int)((long)C * (id + 1) / n);
}

void lra_layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *w,
                           const float *b, int N, int C) {
    const float eps = 1e-6f;
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        float var = 0.0f;
        for (int c = 0; c < C; c++) var += (x[c] - m) * (x[c] - m);
        var /= C;
        float s = 1.0f / sqrtf(var + eps);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[n] = m;
        rstd[n] = s;
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
#pragma omp parallel
    {
        int c0, c1;
        col_range(C, &c0, &c1);
        for (int n = 0; n < N; n++) {
            const float *x = in + (size_t)n * C, *g = dout + (size_t)n * C;
            for (int c = c0; c < c1; c++) {
                dw[c] += g[c] * (x[c] - mean[n]) * rstd[n];
                db[c] += g[c];
            }
        }
    }
}
