/* evaluate.c - evaluation passes, model selection on validation, and the attention diagnostics
 * recorded with them (see run_state.h). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../encoder/dist.h"
#include "run_state.h"

/* Evaluates every example of a split, or (subset) the periodic evaluations' fixed subset, each
 * once: in order of length (so padding is small) unless the batching mode pads everything to
 * max-len. The last batch may be smaller than the others. */
static eval_result evaluate(run_state *r, int which, int subset) {
    const lra_split *s = &r->split[which];
    const int B = r->c->batch;
    const uint32_t *order = subset ? r->eval_sub[which] : r->eval_order[which];
    const size_t total = subset ? r->n_sub[which] : s->n;
    eval_result e = {0};
    double t0 = lra_now();
    /* a line every tenth of a long pass (Text's 25,000 reviews take minutes), with its ETA */
    const size_t tick = total / 10 > (size_t)B ? total / 10 : 0;
    size_t next_tick = tick;
    for (size_t i0 = 0; i0 < total; i0 += (size_t)B) {
        if (r->progress && tick && i0 >= next_tick) {
            const double spent = lra_now() - t0;
            fprintf(stderr, "eval   %s %zu/%zu | %.0fs, ETA %.0fs\n", lra_split_names[which], i0, total, spent,
                    spent * (double)(total - i0) / (double)i0);
            next_tick += tick;
        }
        int n = total - i0 < (size_t)B ? (int)(total - i0) : B;
        long real;
        int L = lra_batch_fill(s, order + i0, n, r->c->batching, r->c->max_len,
                               r->tokens, r->mask, r->labels, &real);
        lra_eval_batch(&r->trainer, r->tokens, r->mask, r->labels, n, L);
        for (int b = 0; b < n; b++) {
            e.loss += r->trainer.losses[b];
            e.acc += r->trainer.predicted[b] == r->labels[b];
        }
        e.n += n;
        e.tokens += real;
    }
    e.loss /= (double)e.n;
    e.acc /= (double)e.n;
    e.seconds = lra_now() - t0;
    return e;
}

/* The relative L2 error of layer l's attention output against full attention on the same q, k, v,
 * over the rows of real query tokens (full's workspace ws and output o are the caller's). */
static double error_vs_full(const lra_model *m, int l, lra_attn *full, lra_attn_shape sh, const lra_attn_args *args,
                            float *o, void *ws) {
    const size_t BQ = (size_t)sh.B * sh.NH * sh.T * sh.hs;
    const float *q = m->blocks[l].qkvh, *k = q + BQ, *v = k + BQ, *mine = m->blocks[l].atto;
    lra_attn_forward(full, sh, args, o, ws, q, k, v, NULL);
    double num = 0, den = 0;
    for (int b = 0; b < sh.B; b++)
        for (int h = 0; h < sh.NH; h++)
            for (int t = 0; t < sh.T; t++) {
                if (!m->mask[(size_t)b * sh.T + t]) continue;
                size_t off = (((size_t)b * sh.NH + h) * sh.T + t) * sh.hs;
                for (int d = 0; d < sh.hs; d++) {
                    double e = (double)mine[off + d] - o[off + d];
                    num += e * e;
                    den += (double)o[off + d] * o[off + d];
                }
            }
    return den > 0 ? sqrt(num / den) : 0.0;
}

/* Diagnostics on the first validation batch, every layer, real q, k, v of the model as it is: the
 * backend's own (routing statistics) and its output's relative L2 error against full attention.
 * Runs at each periodic evaluation and after training, outside any training step, so the
 * full-attention workspace it allocates never touches one. The object holds layer 0's figures at
 * its top and every layer's in "layers". */
static cJSON *attention_diagnostics(run_state *r) {
    lra_model *m = &r->model;
    const lra_split *s = &r->split[LRA_SPLIT_VAL];
    const int n = s->n < (size_t)r->c->batch ? (int)s->n : r->c->batch;
    long real;
    int L = lra_batch_fill(s, r->eval_order[LRA_SPLIT_VAL], n, r->c->batching, r->c->max_len, r->tokens, r->mask,
                           r->labels, &real);
    lra_model_forward(m, r->tokens, r->mask, r->labels, n, L, 0, 0);
    const int T = m->Tcur, NH = m->cfg.heads, hs = m->hs, rows = n * lra_split_docs(s);
    lra_attn_shape sh = {rows, NH, T, hs};
    lra_attn_args args = {m->mask, 0.0f, 0, LRA_FP32}; /* full: the fp32 reference */
    lra_attn full = {0};
    char err[LRA_ERR_LEN];
    float *o = NULL;
    void *ws = NULL;
    const int have_full = lra_attn_create(&full, "full", "", sh, omp_get_max_threads(), err) == LRA_OK &&
                          (o = malloc((size_t)rows * NH * T * hs * sizeof(float))) &&
                          (ws = lra_alloc_touched(lra_attn_workspace_bytes(&full)));
    cJSON *j = cJSON_CreateObject(), *layers = cJSON_CreateArray();
    for (int l = 0; l < m->cfg.layers; l++) {
        cJSON *x = l == 0 ? j : cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "layer", l);
        if (l == 0) {
            cJSON_AddNumberToObject(j, "examples", n);
            cJSON_AddNumberToObject(j, "length", T);
        }
        cJSON *routing = lra_attn_diagnostics(&m->attn, m->blocks[l].ws, sh, &args);
        if (routing) cJSON_AddItemToObject(x, "routing", routing);
        if (have_full) cJSON_AddNumberToObject(x, "relative_l2_error_vs_full", error_vs_full(m, l, &full, sh, &args, o, ws));
        cJSON_AddItemToArray(layers, l == 0 ? cJSON_Duplicate(j, 1) : x);
    }
    cJSON_AddItemToObject(j, "layers", layers);
    free(o);
    free(ws);
    lra_attn_free(&full); /* a zeroed handle when its creation failed: nothing to free */
    return j;
}

/* Every eval_every steps: validation (the fixed subset, or all of it with --eval-subset=0) for the
 * curve and for model selection; the test split waits for the end. */
void lra_run_periodic_evaluation(run_state *r, int step) {
    const lra_config *c = r->c;
    double te = lra_now();
    eval_result v = evaluate(r, LRA_SPLIT_VAL, 1);
    if (r->best_step < 0 || v.acc > r->best_val_acc) {
        r->best_step = step;
        r->best_val_acc = v.acc;
        r->best_val_loss = v.loss;
        memcpy(r->best_params, r->model.params, r->model.nparams * sizeof(float));
    }
    double wl, wa;
    int wn;
    lra_run_window_means(r, &wl, &wa, &wn);
    cJSON *pt = cJSON_CreateObject();
    cJSON_AddNumberToObject(pt, "step", step);
    cJSON_AddNumberToObject(pt, "examples", (double)step * c->batch);
    cJSON_AddNumberToObject(pt, "train_loss", wl);
    cJSON_AddNumberToObject(pt, "train_accuracy", wa);
    cJSON_AddNumberToObject(pt, "val_loss", v.loss);
    cJSON_AddNumberToObject(pt, "val_accuracy", v.acc);
    cJSON_AddNumberToObject(pt, "eval_examples", (double)v.n);
    cJSON_AddNumberToObject(pt, "elapsed_s", lra_now() - r->t0);
    cJSON_AddNumberToObject(pt, "train_s", r->train_time);
    if (lra_dist_rank() == 0) { /* for the report, which rank 0 writes */
        cJSON *diag = attention_diagnostics(r); /* routing over training: a collapse shows when it happens */
        cJSON_AddItemToObject(pt, "attention", cJSON_DetachItemFromObjectCaseSensitive(diag, "layers"));
        cJSON_Delete(diag);
    }
    cJSON_AddItemToArray(r->curve, pt);
    if (r->progress)
        fprintf(stderr, "eval   %6d | val loss %.4f acc %.4f | best %.4f at %d | %.1fs\n", step, v.loss, v.acc,
                r->best_val_acc, r->best_step, lra_now() - te);
}

/* After the last step: val and test of the last parameters, then of the best-validation ones (the
 * field's reported figure). The last step competes too: its full validation pass is an evaluation
 * every run has. */
void lra_run_final_evaluation(run_state *r) {
    lra_model *m = &r->model;
    const int sub = r->c->final_eval_subset;
    r->final[LRA_SPLIT_VAL] = evaluate(r, LRA_SPLIT_VAL, sub);
    r->final[LRA_SPLIT_TEST] = r->task->val_is_test ? r->final[LRA_SPLIT_VAL] : evaluate(r, LRA_SPLIT_TEST, sub);
    r->have_final = 1;
    if (lra_dist_rank() == 0) r->attn_diag = attention_diagnostics(r);
    if (r->progress)
        fprintf(stderr, "last   | val loss %.4f acc %.4f (%ld) | test loss %.4f acc %.4f (%ld)\n",
                r->final[1].loss, r->final[1].acc, r->final[1].n, r->final[2].loss, r->final[2].acc, r->final[2].n);
    const int full_periodic = sub || r->n_sub[LRA_SPLIT_VAL] == r->split[LRA_SPLIT_VAL].n; /* the same examples */
    if (r->best_step < 0 || (full_periodic && r->final[LRA_SPLIT_VAL].acc > r->best_val_acc)) {
        r->best_step = r->steps_done;
        r->best_val_acc = r->final[LRA_SPLIT_VAL].acc;
        r->best_val_loss = r->final[LRA_SPLIT_VAL].loss;
    }
    if (r->best_step == r->steps_done) {
        r->best[LRA_SPLIT_VAL] = r->final[LRA_SPLIT_VAL];
        r->best[LRA_SPLIT_TEST] = r->final[LRA_SPLIT_TEST];
    } else { /* training is over: the model's parameters may become the best ones */
        memcpy(m->params, r->best_params, m->nparams * sizeof(float));
        r->best[LRA_SPLIT_VAL] = evaluate(r, LRA_SPLIT_VAL, sub);
        r->best[LRA_SPLIT_TEST] = r->task->val_is_test ? r->best[LRA_SPLIT_VAL] : evaluate(r, LRA_SPLIT_TEST, sub);
    }
    r->have_best = 1;
    if (r->progress)
        fprintf(stderr, "best   | step %d | val loss %.4f acc %.4f | test loss %.4f acc %.4f\n", r->best_step,
                r->best[1].loss, r->best[1].acc, r->best[2].loss, r->best[2].acc);
}
