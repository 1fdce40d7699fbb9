/* batcher.c - see batcher.h. */
#include "batcher.h"

#include <string.h>

enum { BUCKET_WINDOW = 64 }; /* batches per sorted window in bucket mode */

static const lra_split *sort_split; /* qsort has no context argument in C11 */
static int by_length(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int lx = lra_split_len(sort_split, x), ly = lra_split_len(sort_split, y);
    if (lx != ly) return lx < ly ? -1 : 1;
    return x < y ? -1 : x > y; /* stable: ties by index */
}

static void new_epoch(lra_batcher *b) {
    const size_t n = b->split->n;
    for (size_t i = 0; i < n; i++) b->order[i] = (uint32_t)i;
    lra_rng_shuffle(&b->rng, b->order, n);
    b->nbatches = n / (size_t)b->B;
    if (b->mode == LRA_BATCH_BUCKET) {
        const size_t w = (size_t)b->B * BUCKET_WINDOW, used = b->nbatches * (size_t)b->B;
        sort_split = b->split;
        for (size_t lo = 0; lo < used; lo += w)
            qsort(b->order + lo, (used - lo < w ? used - lo : w), sizeof(uint32_t), by_length);
    }
    for (size_t i = 0; i < b->nbatches; i++) b->batch_start[i] = (uint32_t)(i * (size_t)b->B);
    if (b->mode == LRA_BATCH_BUCKET) lra_rng_shuffle(&b->rng, b->batch_start, b->nbatches);
    b->next = 0;
    b->epoch++;
}

lra_status lra_batcher_init(lra_batcher *b, const lra_split *s, int B, int mode, int max_len,
                            uint64_t seed, char *err) {
    memset(b, 0, sizeof *b);
    if (s->n < (size_t)B)
        return lra_fail(err, LRA_ERR_CONFIG, "%s: %zu training examples, fewer than one batch of %d", s->path, s->n, B);
    b->split = s; b->B = B; b->mode = mode; b->max_len = max_len;
    lra_rng_seed(&b->rng, seed);
    b->order = malloc(s->n * sizeof(uint32_t));
    b->batch_start = malloc((s->n / (size_t)B + 1) * sizeof(uint32_t));
    if (!b->order || !b->batch_start) { lra_batcher_free(b); return lra_fail(err, LRA_ERR_NOMEM, "out of memory"); }
    b->epoch = -1;
    new_epoch(b);
    return LRA_OK;
}

void lra_batcher_free(lra_batcher *b) {
    free(b->order);
    free(b->batch_start);
    memset(b, 0, sizeof *b);
}

void lra_batcher_next(lra_batcher *b, uint32_t *idx) {
    if (b->next >= b->nbatches) new_epoch(b);
    memcpy(idx, b->order + b->batch_start[b->next++], sizeof(uint32_t) * (size_t)b->B);
}

lra_status lra_batcher_check(const lra_batcher *b, char *err) {
    const size_t n = b->split->n;
    if (b->next > b->nbatches || b->epoch < 0)
        return lra_fail(err, LRA_ERR_FORMAT, "checkpoint: batch position %zu of %zu, epoch %ld", b->next, b->nbatches, b->epoch);
    uint8_t *seen = calloc(n, 1);
    if (!seen) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        bad = b->order[i] >= n || seen[b->order[i]];
        if (!bad) seen[b->order[i]] = 1;
    }
    free(seen);
    for (size_t i = 0; i < b->nbatches && !bad; i++) bad = (size_t)b->batch_start[i] + (size_t)b->B > n;
    return bad ? lra_fail(err, LRA_ERR_FORMAT, "checkpoint: the saved data order is not one of this split's") : LRA_OK;
}

int lra_batch_fill(const lra_split *s, const uint32_t *idx, int n, int mode, int max_len,
                   int32_t *tokens, uint8_t *mask, int32_t *labels, long *real_tokens) {
    const int docs = lra_split_docs(s);
    int L = 1;
    long real = 0;
    for (int i = 0; i < n; i++) {
        int len = lra_split_len(s, idx[i]);
        L = len > L ? len : L;
        for (int d = 0; d < docs; d++) {
            const size_t j = (size_t)idx[i] * docs + d;
            real += (long)(s->offset[j + 1] - s->offset[j]);
        }
    }
    if (mode == LRA_BATCH_FULL) L = max_len;
    for (int i = 0; i < n; i++)
        lra_split_example(s, idx[i], L, tokens + (size_t)i * docs * L, mask + (size_t)i * docs * L, labels + i);
    *real_tokens = real;
    return L;
}
