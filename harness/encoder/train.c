/* train.c - see train.h. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "optim.h"

enum { SHARD_STREAM = 0x54A2D }; /* the stream id of a shard's dropout */

lra_status lra_trainer_create(lra_trainer *t, lra_model *m, int shards, char *err) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->shards = shards < 1 ? 1 : shards;
    const size_t n = m->nparams, B = (size_t)m->cfg.batch, P = (size_t)lra_dist_size();
    const int S = t->shards < m->cfg.batch ? t->shards : m->cfg.batch;
    int lo, hi;
    lra_dist_shards_of(lra_dist_rank(), S, &lo, &hi);
    t->losses = malloc(B * sizeof(float));
    t->predicted = malloc(B * sizeof(int32_t));
    if (!t->losses || !t->predicted) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    if (P > 1) {
        t->send = lra_alloc_touched(((size_t)(hi - lo) * n + 1) * sizeof(float));
        t->recv = lra_alloc_touched(((size_t)S * (n / P + 1) + 1) * sizeof(float));
        if (!t->send || !t->recv) return lra_fail(err, LRA_ERR_NOMEM, "out of memory (gradient shard buffers)");
    } else if (S > 1 && !(t->grad_sum = lra_alloc_touched(n * sizeof(float)))) {
        return lra_fail(err, LRA_ERR_NOMEM, "out of memory (gradient shard sum)");
    }
    return LRA_OK;
}

void lra_trainer_free(lra_trainer *t) {
    free(t->grad_sum); free(t->send); free(t->recv); free(t->losses); free(t->predicted);
    memset(t, 0, sizeof *t);
}

static int argmax(const float *p, int K) {
    int best = 0;
    for (int i = 1; i < K; i++)
        if (p[i] > p[best]) best = i;
    return best;
}

/* The examples' slice of a batch: rows per example (the dual encoder's two documents) x L. */
static size_t rows_of(const lra_model *m) { return m->cfg.docs == 2 ? 2 : 1; }

/* Shard s's forward (and, training, backward into the zeroed m->grads); its examples' losses and
 * predictions into t's arrays, zero elsewhere (the exact merge, dist.h). */
static void shard_pass(lra_trainer *t, int s, int S, const int32_t *tokens, const uint8_t *mask, const int32_t *labels,
                       int B, int L, int train, uint64_t stream) {
    lra_model *m = t->m;
    const int K = m->cfg.classes;
    int lo, hi;
    lra_dist_shard_examples(s, S, B, &lo, &hi);
    const size_t off = (size_t)lo * rows_of(m) * L;
    const uint64_t sstream = S == 1 ? stream : lra_stream(stream, SHARD_STREAM, (uint64_t)s);
    lra_model_forward(m, tokens + off, mask + off, labels + lo, hi - lo, L, train, train ? sstream : 0);
    for (int b = lo; b < hi; b++) {
        t->losses[b] = m->losses[b - lo];
        t->predicted[b] = argmax(m->probs + (size_t)(b - lo) * K, K);
    }
    if (!train) return;
    lra_model_zero_grad(m);
    lra_model_backward_shard(m, B);
}

/* Every shard this process owns; with one process and S > 1, their sum in shard order. Then the
 * per-example results merged across processes, and under MPI the fixed-order sum (dist.h). */
static void all_shards(lra_trainer *t, const int32_t *tokens, const uint8_t *mask, const int32_t *labels, int B,
                       int L, int train, uint64_t stream) {
    lra_model *m = t->m;
    const int S = t->shards < B ? t->shards : B, P = lra_dist_size();
    const size_t n = m->nparams;
    int lo, hi;
    lra_dist_shards_of(lra_dist_rank(), S, &lo, &hi);
    if (P > 1) {
        memset(t->losses, 0, (size_t)B * sizeof(float));
        memset(t->predicted, 0, (size_t)B * sizeof(int32_t));
    }
    for (int s = lo; s < hi; s++) {
        shard_pass(t, s, S, tokens, mask, labels, B, L, train, stream);
        if (!train || S == 1) continue;
        if (P > 1) lra_dist_pack_shard(t->send, m->grads, s - lo, hi - lo, n);
        else if (s == 0) memcpy(t->grad_sum, m->grads, n * sizeof(float));
        else
            for (size_t i = 0; i < n; i++) t->grad_sum[i] += m->grads[i];
    }
    if (P == 1) {
        if (train && S > 1) memcpy(m->grads, t->grad_sum, n * sizeof(float));
        return;
    }
    const double t0 = lra_now();
    lra_dist_merge_f32(t->losses, B);
    lra_dist_merge_i32(t->predicted, B);
    t->comm_bytes += (double)B * 8 * (P - 1);
    if (train) lra_dist_sum_shards(m->grads, t->send, t->recv, S, n, &t->comm_bytes);
    t->comm_seconds += lra_now() - t0;
}

float lra_train_step(lra_trainer *t, const int32_t *tokens, const uint8_t *mask, const int32_t *labels, int B, int L,
                     uint64_t stream, const lra_step_hparams *hp, double *norm) {
    lra_model *m = t->m;
    all_shards(t, tokens, mask, labels, B, L, 1, stream);
    double sum = 0.0; /* in example order, as lra_model_forward sums a batch */
    for (int b = 0; b < B; b++) sum += t->losses[b];
    const float loss = (float)(sum / B);
    *norm = lra_model_grad_norm(m);
    if (!isfinite(loss) || !isfinite(*norm)) return loss;
    const float scale = (hp->clip > 0 && *norm > hp->clip) ? (float)(hp->clip / *norm) : 1.0f;
    lra_adam_step(m->params, m->grads, m->adam_m, m->adam_v, m->nparams, hp->lr, hp->beta1, hp->beta2, hp->eps, hp->wd,
                  hp->t, scale);
    return loss;
}

void lra_eval_batch(lra_trainer *t, const int32_t *tokens, const uint8_t *mask, const int32_t *labels, int B, int L) {
    all_shards(t, tokens, mask, labels, B, L, 0, 0);
}
