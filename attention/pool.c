/* pool.c - see pool.h. */
#include "pool.h"

#include <string.h>

static int bin_lo(int j, int L, int m) { return (int)((long)j * L / m); }
static int bin_hi(int j, int L, int m) { return (int)(((long)(j + 1) * L + m - 1) / m); }

int lra_valid_rows(const uint8_t *mask, int T, int32_t *idx) {
    int L = 0;
    for (int t = 0; t < T; t++)
        if (mask[t]) idx[L++] = t;
    return L;
}

void lra_pool_rows_forward(float *A, const float *Q, const int32_t *idx, int L, int m, int hs) {
    for (int j = 0; j < m; j++) {
        const int lo = bin_lo(j, L, m), hi = bin_hi(j, L, m);
        float *aj = A + (size_t)j * hs;
        memset(aj, 0, sizeof(float) * hs);
        for (int r = lo; r < hi; r++)
            for (int d = 0; d < hs; d++) aj[d] += Q[(size_t)idx[r] * hs + d];
        for (int d = 0; d < hs; d++) aj[d] /= (float)(hi - lo);
    }
}

void lra_pool_rows_backward(float *dQ, const float *dA, const int32_t *idx, int L, int m, int hs) {
    for (int j = 0; j < m; j++) {
        const int lo = bin_lo(j, L, m), hi = bin_hi(j, L, m);
        const float inv = 1.0f / (float)(hi - lo);
        for (int r = lo; r < hi; r++)
            for (int d = 0; d < hs; d++) dQ[(size_t)idx[r] * hs + d] += dA[(size_t)j * hs + d] * inv;
    }
}
