/* pool.h - the spec's pool(Q, m): adaptive average pooling of the valid (unmasked) rows of one
 * head's Q into m bins, bin j covering valid rows [floor(j L / m), ceil((j+1) L / m)) of the L
 * valid rows (PyTorch's adaptive pooling; bins overlap when m does not divide L). Shared by the
 * backends that pool queries into agents or landmarks. */
#ifndef LRA_ATTN_POOL_H
#define LRA_ATTN_POOL_H

#include <stdint.h>

/* Writes the indices of the valid rows of mask (T) into idx and returns their number L. */
int lra_valid_rows(const uint8_t *mask, int T, int32_t *idx);
/* A (m, hs) = pool of rows idx[0..L) of Q (., hs); m <= L. */
void lra_pool_rows_forward(float *A, const float *Q, const int32_t *idx, int L, int m, int hs);
/* dQ rows idx[...] += the pooling's backward of dA (m, hs). */
void lra_pool_rows_backward(float *dQ, const float *dA, const int32_t *idx, int L, int m, int hs);

#endif
