/* vec.h - small vector helpers for the attention kernels. */
#ifndef LRA_ATTN_VEC_H
#define LRA_ATTN_VEC_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "transpose.h"

/* The repro head size. The row helpers below inline one body twice, once with this width as a
 * constant - which gcc turns into two vector moves a row, no loop over a runtime width (mita's
 * attention 8% faster: docs/speed.md) - and once for any other width. */
enum { LRA_ROW_WIDTH_FAST = 32 };

/* out (n, d) = the rows idx[0..n) of X (., d): a tile of gathered rows for sgemm. A loop, not a
 * memcpy per row: at d = 32 the call cost more than the copy (7% of moe's step) */
static inline __attribute__((always_inline)) void lra_gather_rows_w(float *out, const float *X, const int32_t *idx,
                                                                    int n, int d) {
    for (int r = 0; r < n; r++) {
        float *o = out + (size_t)r * d;
        const float *x = X + (size_t)idx[r] * d;
        for (int j = 0; j < d; j++) o[j] = x[j];
    }
}
static inline void lra_gather_rows(float *out, const float *X, const int32_t *idx, int n, int d) {
    if (d == LRA_ROW_WIDTH_FAST) lra_gather_rows_w(out, X, idx, n, LRA_ROW_WIDTH_FAST);
    else lra_gather_rows_w(out, X, idx, n, d);
}

/* D (n) = the dot products of the rows of X and Y (n, d each), in order: the softmax backward's
 * D_i = dO_i . o_i, one sequential pass per head (met in routing order, o's rows were a cache
 * miss each) */
static inline void lra_row_dots(float *D, const float *X, const float *Y, int n, int d) {
    for (int i = 0; i < n; i++) {
        const float *x = X + (size_t)i * d, *y = Y + (size_t)i * d;
        float acc = 0.0f;
        for (int j = 0; j < d; j++) acc += x[j] * y[j];
        D[i] = acc;
    }
}

/* X's rows idx[r] += the rows of in (n, d), in r order: a tile's results scattered back */
static inline __attribute__((always_inline)) void lra_scatter_add_rows_w(float *X, const float *in,
                                                                         const int32_t *idx, int n, int d) {
    for (int r = 0; r < n; r++) {
        float *x = X + (size_t)idx[r] * d;
        const float *y = in + (size_t)r * d;
        for (int j = 0; j < d; j++) x[j] += y[j];
    }
}
static inline void lra_scatter_add_rows(float *X, const float *in, const int32_t *idx, int n, int d) {
    if (d == LRA_ROW_WIDTH_FAST) lra_scatter_add_rows_w(X, in, idx, n, LRA_ROW_WIDTH_FAST);
    else lra_scatter_add_rows_w(X, in, idx, n, d);
}

/* One tile of an online softmax over a row of logits (masked ones a large negative finite
 * value): *mx, the row's running max, rises to the tile's; the running sum *sum and the
 * accumulator acc (hs floats, the weighted values so far) are rescaled to it; row (n) becomes
 * exp(row - max) and its sum is added to *sum. The caller then adds row (dropped, if so) times
 * the tile's values to acc, and at the end divides acc by *sum (log-sum-exp: *mx + log *sum).
 * Serves full's tiles, agent's aggregation and mita's compression. moe's blocks and mita's
 * routed experts use the form below, which rescales only when the max rises: one helper for both
 * forms moved the last bits of agent's and mita's results, so the two forms stay apart. */
static inline void lra_online_softmax_tile(float *row, int n, float *mx, float *sum, float *acc, int hs) {
    float tmx = *mx, rsum = 0.0f;
    for (int t = 0; t < n; t++) tmx = row[t] > tmx ? row[t] : tmx;
    for (int t = 0; t < n; t++) {
        row[t] = expf(row[t] - tmx);
        rsum += row[t];
    }
    if (tmx == *mx) { /* the rescale would be expf(0) = 1 exactly: the same bits without it */
        *sum += rsum;
        return;
    }
    const float rescale = expf(*mx - tmx);
    *sum = *sum * rescale + rsum;
    *mx = tmx;
    for (int d = 0; d < hs; d++) acc[d] *= rescale;
}

/* The same step for one query's row against one block of keys (moe) or one routed expert (mita),
 * rescaling only when the block raises the row's max: then the output row acc (hs floats) and
 * *sum are rescaled first; row (n) becomes exp(row - max) and its sum is added to *sum. */
static inline void lra_online_softmax_rise(float *row, int n, float *mx, float *sum, float *acc, int hs) {
    float mi = *mx, si = 0.0f; /* locals: so gcc vectorises the exp */
    for (int j = 0; j < n; j++) mi = row[j] > mi ? row[j] : mi;
    if (mi > *mx) {
        const float rescale = expf(*mx - mi);
        for (int d = 0; d < hs; d++) acc[d] *= rescale;
        *sum *= rescale;
        *mx = mi;
    }
    for (int j = 0; j < n; j++) row[j] = expf(row[j] - mi);
    for (int j = 0; j < n; j++) si += row[j];
    *sum += si;
}

#endif
