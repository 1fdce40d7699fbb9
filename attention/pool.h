/* pool.h - the spec's pool(Q, m): adaptive average pooling of the valid (unmasked) rows of one
 * head's Q into m bins, bin j covering valid rows [floor(j L / m), ceil((j+1) L / m)) of the L
 * valid rows (PyTorch's adaptive pooling; bins overlap when m does not divide L). Shared by the
 * backends that pool queries into agents or landmarks. */
#ifndef LRA_ATTN_POOL_H
#define LRA_ATTN_POOL_H

#include <stdint.h>

/* The number L of valid rows of mask (T). */
int lra_valid_count(const uint8_t *mask, int T);
/* A (m, hs) = pool of the L valid rows of Q (T, hs) by mask; 1 <= m <= L. No scratch: the rows are
 * found by walking the mask. */
void lra_pool_rows_forward(float *A, const float *Q, const uint8_t *mask, int L, int m, int hs);
/* dQ's valid rows += the pooling's backward of dA (m, hs). */
void lra_pool_rows_backward(float *dQ, const float *dA, const uint8_t *mask, int L, int m, int hs);

#endif
