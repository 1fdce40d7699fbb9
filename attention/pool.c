/* pool.c - see pool.h. */
#include "pool.h"

#include <string.h>

static int bin_lo(int j, int L, int m) { return (int)((long)j * L / m); }
static int bin_hi(int j, int L, int m) { return (int)(((long)(j + 1) * L + m - 1) / m); }

int lra_valid_count(const uint8_t *mask, int T) {
    int L = 0;
    for (int t = 0; t < T; t++) L += mask[t] != 0;
    return L;
}

/* The bins' first ranks never decrease, so one cursor (the row of valid rank `rank`) walks the
 * mask once; each bin reads its rows from there. */
typedef struct { const uint8_t *mask; int t, rank; } cursor;
static int row_of_rank(cursor *c, int rank) {
    while (c->rank < rank || !c->mask[c->t]) c->rank += c->mask[c->t++] != 0;
    return c->t;
}
static int next_valid(const uint8_t *mask, int t) {
    do t++; while (!mask[t]);
    return t;
}

void lra_pool_rows_forward(float *A, const float *Q, const uint8_t *mask, int L, int m, int hs) {
    cursor c = {mask, 0, 0};
    for (int j = 0; j < m; j++) {
        const int lo = bin_lo(j, L, m), hi = bin_hi(j, L, m);
        float *aj = A + (size_t)j * hs;
        memset(aj, 0, sizeof(float) * hs);
        for (int r = lo, t = row_of_rank(&c, lo); r < hi; r++, t = r < hi ? next_valid(mask, t) : t)
            for (int d = 0; d < hs; d++) aj[d] += Q[(size_t)t * hs + d];
        for (int d = 0; d < hs; d++) aj[d] /= (float)(hi - lo);
    }
}

void lra_pool_rows_backward(float *dQ, const float *dA, const uint8_t *mask, int L, int m, int hs) {
    cursor c = {mask, 0, 0};
    for (int j = 0; j < m; j++) {
        const int lo = bin_lo(j, L, m), hi = bin_hi(j, L, m);
        const float inv = 1.0f / (float)(hi - lo);
        for (int r = lo, t = row_of_rank(&c, lo); r < hi; r++, t = r < hi ? next_valid(mask, t) : t)
            for (int d = 0; d < hs; d++) dQ[(size_t)t * hs + d] += dA[(size_t)j * hs + d] * inv;
    }
}
