/* batcher.h - seeded order of training batches, and assembly of padded batches. */
#ifndef LRA_BATCHER_H
#define LRA_BATCHER_H

#include "../../tasks/task.h"

/* --batching: pad each batch to its longest example, draw batches of similar lengths, or pad to max_len */
enum { LRA_BATCH_RANDOM = 0, LRA_BATCH_BUCKET = 1, LRA_BATCH_FULL = 2 };

typedef struct {
    const lra_split *split;
    int B, mode, max_len;
    lra_rng rng;
    uint32_t *order;       /* (n) example indices for the current epoch */
    uint32_t *batch_start; /* (n / B) offsets into order, in the order batches are served */
    size_t nbatches, next;
    long epoch;
} lra_batcher;

/* Training batches: every epoch is a fresh seeded shuffle, cut into n / B full batches (the
 * remainder of an epoch is dropped, as tf.data's batch(drop_remainder=True) does). bucket mode
 * sorts windows of 64 batches by length before cutting, then shuffles the batches. */
lra_status lra_batcher_init(lra_batcher *b, const lra_split *s, int B, int mode, int max_len,
                            uint64_t seed, char *err);
void lra_batcher_free(lra_batcher *b);
/* Fills the next batch: indices (B). */
void lra_batcher_next(lra_batcher *b, uint32_t *idx);

/* A checkpoint saves rng, epoch, next, order (n) and batch_start (nbatches): everything that decides
 * later batches. After restoring them into b, this checks they can be this split's (order a
 * permutation, batches inside it); LRA_ERR_FORMAT otherwise. */
lra_status lra_batcher_check(const lra_batcher *b, char *err);

/* Assembles examples idx[0..n) into tokens/mask (n, L) and labels (n), where L is the longest
 * member (or max_len in full mode). Returns L; *real_tokens gets the number of real tokens. */
int lra_batch_fill(const lra_split *s, const uint32_t *idx, int n, int mode, int max_len,
                   int32_t *tokens, uint8_t *mask, int32_t *labels, long *real_tokens);

#endif
