/* run.c - see run.h. Data -> model -> training loop -> full evaluation -> report. */
#define _POSIX_C_SOURCE 200809L
#include "run.h"

#include <math.h>
#include <omp.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "../common/sha256.h"
#include "../common/test_hook.h"
#include "../datasets/atomic_file.h"
#include "../datasets/datadir.h"
#include "../tasks/task.h"
#include "batcher.h"
#include "checkpoint.h"
#include "model.h"
#include "report.h"
#include "sysinfo.h"
#include "train.h"

enum { WINDOW = 100 }; /* steps averaged for the reported training loss and accuracy */

typedef struct { double loss, acc, seconds; long n, tokens; } eval_result;

typedef struct {
    const lra_config *c;
    const lra_task_i *task;
    lra_model model;
    lra_split split[3];
    char source[4200], data_dir[4096], data_checksum[65];
    uint32_t *eval_order[3];
    uint32_t *eval_sub[3]; /* the periodic evaluations' fixed subset, in length order */
    size_t n_sub[3];
    uint32_t *idx;
    int32_t *tokens, *labels;
    uint8_t *mask;
    cJSON *curve, *attn_diag;
    int progress; /* progress lines on stderr */
    long started;
    double t0;
    /* training statistics */
    int steps_done;
    double train_time;
    long timed_steps, timed_real_tokens, timed_padded_tokens;
    float win_loss[WINDOW], win_acc[WINDOW];
    eval_result final[3];
    int have_final;
    /* model selection: the parameters of the periodic evaluation with the best validation
     * accuracy (the first of equals), kept as the run goes and saved beside the checkpoint */
    float *best_params;   /* (nparams) */
    int best_step;        /* -1 before the first evaluation */
    double best_val_acc, best_val_loss;
    eval_result best[3];  /* val and test of the best parameters, evaluated at the end */
    int have_best;
    const char *status;
    char diverged_at[256];
    /* checkpoints */
    char ckpt_path[4200];
    int ckpt_step; /* the step of the last checkpoint this process wrote or resumed from, -1 none */
    cJSON *resumed_at; /* steps at which this run was resumed */
} run_state;

static int argmax(const float *p, int K) {
    int best = 0;
    for (int i = 1; i < K; i++)
        if (p[i] > p[best]) best = i;
    return best;
}

/* Evaluation visits every example once: in order of length (so padding is small) unless the
 * batching mode pads everything to max-len. The last batch may be smaller than the others. */
/* Evaluates every example of a split, or (subset) the periodic evaluations' fixed subset. */
static eval_result evaluate(run_state *r, int which, int subset) {
    const lra_split *s = &r->split[which];
    const int B = r->c->batch, K = r->task->classes;
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
        lra_model_forward(&r->model, r->tokens, r->mask, r->labels, n, L, 0, 0);
        for (int b = 0; b < n; b++) {
            e.loss += r->model.losses[b];
            e.acc += argmax(r->model.probs + (size_t)b * K, K) == r->labels[b];
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
    const int T = m->Tcur, NH = m->cfg.heads, hs = m->hs, rows = n * (m->cfg.dual ? 2 : 1);
    lra_attn_shape sh = {rows, NH, T, hs};
    lra_attn_args args = {m->mask, 0.0f, 0};
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

static cJSON *eval_json(const eval_result *e) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "loss", e->loss);
    cJSON_AddNumberToObject(j, "accuracy", e->acc);
    cJSON_AddNumberToObject(j, "examples", (double)e->n);
    return j;
}

static void window_means(const run_state *r, double *loss, double *acc, int *n) {
    *n = r->steps_done < WINDOW ? r->steps_done : WINDOW;
    double l = 0, a = 0;
    for (int i = 0; i < *n; i++) { l += r->win_loss[i]; a += r->win_acc[i]; }
    *loss = *n ? l / *n : NAN;
    *acc = *n ? a / *n : NAN;
}

static cJSON *build_report(run_state *r) {
    const lra_config *c = r->c;
    lra_model *m = &r->model;
    char when[32];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "schema_version", LRA_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(j, "kind", "run");
    cJSON_AddStringToObject(j, "status", r->status);
    if (r->diverged_at[0]) cJSON_AddStringToObject(j, "diverged_at", r->diverged_at);
    cJSON_AddStringToObject(j, "task", c->task);
    cJSON_AddStringToObject(j, "backend", c->backend);
    cJSON_AddItemToObject(j, "backend_options", lra_attn_describe(&m->attn));
    cJSON_AddStringToObject(j, "profile", c->profile);
    cJSON_AddNumberToObject(j, "seed", (double)c->seed);
    cJSON_AddItemToObject(j, "config", lra_config_to_json(c));

    cJSON *data = cJSON_AddObjectToObject(j, "data");
    cJSON_AddStringToObject(data, "source", r->source);
    if (!strncmp(r->source, "generated", 9)) /* this set came from our generator (its marker file says so) */
        cJSON_AddNumberToObject(data, "generator_seed", (double)c->data_seed);
    if (r->task->val_is_test) cJSON_AddStringToObject(data, "val_split", "the test split, as in the official code");
    if (c->dataset[0]) cJSON_AddStringToObject(data, "dataset", c->dataset);
    if (strcmp(c->dataset, "fashion-mnist") == 0)
        cJSON_AddStringToObject(data, "substitute", "fashion-mnist: a stand-in for CIFAR-10, not comparable with LRA Image");
    cJSON_AddStringToObject(data, "checksum_sha256", r->data_checksum);
    cJSON *files = cJSON_AddObjectToObject(data, "splits");
    for (int s = 0; s < 3; s++) {
        cJSON *f = cJSON_AddObjectToObject(files, lra_split_names[s]);
        cJSON_AddStringToObject(f, "path", r->split[s].path);
        cJSON_AddStringToObject(f, "sha256", r->split[s].sha256);
        cJSON_AddNumberToObject(f, "examples", (double)r->split[s].n);
        if (r->split[s].skipped) cJSON_AddNumberToObject(f, "skipped_unreadable", (double)r->split[s].skipped);
    }

    cJSON *res = cJSON_AddObjectToObject(j, "results");
    double wl, wa;
    int wn;
    window_means(r, &wl, &wa, &wn);
    cJSON *tr = cJSON_AddObjectToObject(res, "train");
    cJSON_AddNumberToObject(tr, "loss", wl);
    cJSON_AddNumberToObject(tr, "accuracy", wa);
    cJSON_AddNumberToObject(tr, "window_steps", wn);
    cJSON_AddNumberToObject(tr, "steps", r->steps_done);
    cJSON_AddNumberToObject(tr, "examples", (double)r->steps_done * c->batch);
    if (r->have_final) {
        cJSON_AddItemToObject(res, "val", eval_json(&r->final[LRA_SPLIT_VAL]));
        cJSON_AddItemToObject(res, "test", eval_json(&r->final[LRA_SPLIT_TEST]));
    }
    cJSON *sel = cJSON_AddObjectToObject(res, "best_val");
    cJSON_AddStringToObject(sel, "selected_on", r->task->val_is_test ? "the test split (the task has no validation split)"
                                                                      : "the validation split");
    cJSON_AddNumberToObject(sel, "eval_every", c->eval_every);
    cJSON_AddNumberToObject(sel, "eval_examples", (double)r->n_sub[LRA_SPLIT_VAL]);
    if (lra_config_recipe_eval_every(c->task) && strcmp(c->profile, "repro") == 0)
        cJSON_AddNumberToObject(sel, "recipe_eval_every", lra_config_recipe_eval_every(c->task));
    cJSON_AddNumberToObject(sel, "step", r->best_step);
    if (r->best_step >= 0) cJSON_AddNumberToObject(sel, "periodic_val_accuracy", r->best_val_acc);
    if (r->have_best) {
        cJSON_AddItemToObject(sel, "val", eval_json(&r->best[LRA_SPLIT_VAL]));
        cJSON_AddItemToObject(sel, "test", eval_json(&r->best[LRA_SPLIT_TEST]));
    }
    if (r->ckpt_step >= 0) {
        cJSON *ck = cJSON_AddObjectToObject(j, "checkpoint");
        cJSON_AddStringToObject(ck, "path", r->ckpt_path);
        cJSON_AddNumberToObject(ck, "step", r->ckpt_step);
    }
    if (cJSON_GetArraySize(r->resumed_at)) cJSON_AddItemReferenceToObject(j, "resumed_at_steps", r->resumed_at);
    cJSON_AddItemReferenceToObject(j, "curve", r->curve);
    if (r->attn_diag) cJSON_AddItemReferenceToObject(j, "attention_diagnostics", r->attn_diag);

    cJSON *tp = cJSON_AddObjectToObject(j, "throughput");
    cJSON_AddNumberToObject(tp, "timed_steps", (double)r->timed_steps);
    cJSON_AddNumberToObject(tp, "excluded_warmup_steps", c->timing_skip);
    double tt = r->train_time > 0 ? r->train_time : NAN;
    cJSON_AddNumberToObject(tp, "train_steps_per_s", r->timed_steps / tt);
    cJSON_AddNumberToObject(tp, "train_tokens_per_s", r->timed_real_tokens / tt);
    cJSON_AddNumberToObject(tp, "train_padded_tokens_per_s", r->timed_padded_tokens / tt);
    cJSON_AddNumberToObject(tp, "train_examples_per_s", (double)r->timed_steps * c->batch / tt);
    if (r->have_final) {
        const eval_result *v = &r->final[LRA_SPLIT_VAL], *t = &r->final[LRA_SPLIT_TEST];
        double secs = v->seconds + t->seconds;
        cJSON_AddNumberToObject(tp, "eval_examples_per_s", (v->n + t->n) / secs);
        cJSON_AddNumberToObject(tp, "eval_tokens_per_s", (v->tokens + t->tokens) / secs);
    }
    double fl_f, fl_b;
    lra_attn_shape sh = {c->batch, c->heads, m->T, m->hs};
    lra_attn_flops(&m->attn, sh, &fl_f, &fl_b);
    cJSON_AddNumberToObject(tp, "attention_flops_fwd_per_layer_max_batch", fl_f);
    cJSON_AddNumberToObject(tp, "attention_flops_bwd_per_layer_max_batch", fl_b);

    cJSON *mem = cJSON_AddObjectToObject(j, "memory");
    cJSON_AddNumberToObject(mem, "peak_rss_bytes", (double)lra_peak_rss_bytes());
    cJSON_AddNumberToObject(mem, "parameter_arena_bytes", (double)(4 * m->nparams * sizeof(float)));
    cJSON_AddNumberToObject(mem, "activation_arena_bytes", (double)lra_model_act_bytes(m));
    cJSON_AddNumberToObject(mem, "attention_workspace_bytes", (double)lra_model_attn_ws_bytes(m));

    cJSON *par = cJSON_AddObjectToObject(j, "parameters");
    cJSON_AddNumberToObject(par, "count", (double)m->nparams);
    cJSON_AddNumberToObject(par, "attention_backend", (double)(m->attn_params_per_layer * c->layers));

    cJSON_AddNumberToObject(j, "wall_time_s", lra_now() - r->t0);
    cJSON_AddItemToObject(j, "machine", lra_machine_json(omp_get_max_threads()));
    cJSON_AddStringToObject(j, "git_commit", lra_git_commit());
    lra_iso_time(r->started, when);
    cJSON_AddStringToObject(j, "started_at", when);
    lra_iso_time((long)time(NULL), when);
    cJSON_AddStringToObject(j, "finished_at", when);
    return j;
}

static lra_status write_report(run_state *r, const char *path, char *err) {
    cJSON *j = build_report(r);
    lra_status st = lra_write_json_atomic(path, j, err);
    cJSON_Delete(j);
    return st;
}

static void fmt_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e8) { snprintf(buf, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

static lra_status load_data(run_state *r, char *err) {
    const lra_config *c = r->c;
    lra_status st = lra_data_dir(r->data_dir, sizeof r->data_dir, c->data_dir, err);
    if (st != LRA_OK) return st;
    lra_task_cfg tc = {r->data_dir, c->max_len, 0, (uint64_t)c->data_seed, c->dataset};
    if ((st = r->task->prepare(&tc, r->source, sizeof r->source, err)) != LRA_OK) return st;
    lra_sha256 h;
    lra_sha256_init(&h);
    for (int s = 0; s < 3; s++) {
        if (s == LRA_SPLIT_TEST && r->task->val_is_test)
            r->split[s] = r->split[LRA_SPLIT_VAL]; /* the same examples: shared, freed once (with val) */
        else if ((st = r->task->open(&r->split[s], &tc, s, err)) != LRA_OK)
            return st;
        r->split[s].mask_by_length = c->pad_mask == 1;
        lra_sha256_update(&h, r->split[s].sha256, 64);
    }
    lra_sha256_final_hex(&h, r->data_checksum);
    /* evaluation order */
    for (int s = 1; s < 3; s++) {
        size_t n = r->split[s].n;
        r->eval_order[s] = malloc(n * sizeof(uint32_t));
        if (!r->eval_order[s]) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) r->eval_order[s][i] = (uint32_t)i;
        if (c->batching != LRA_BATCH_FULL) {
            /* counting sort by length keeps ties in index order */
            int maxl = 0;
            for (size_t i = 0; i < n; i++) maxl = lra_split_len(&r->split[s], i) > maxl ? lra_split_len(&r->split[s], i) : maxl;
            size_t *cnt = calloc((size_t)maxl + 2, sizeof(size_t));
            if (!cnt) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
            for (size_t i = 0; i < n; i++) cnt[lra_split_len(&r->split[s], i) + 1]++;
            for (int l = 1; l <= maxl + 1; l++) cnt[l] += cnt[l - 1];
            for (size_t i = 0; i < n; i++) r->eval_order[s][cnt[lra_split_len(&r->split[s], i)]++] = (uint32_t)i;
            free(cnt);
        }
        /* the periodic subset: the same examples for every run and backend (a fixed seed, not the
         * run's), kept in evaluation order so its batches pad as little as the full pass */
        size_t want = c->eval_subset > 0 && (size_t)c->eval_subset < n ? (size_t)c->eval_subset : n;
        uint8_t *pick = calloc(n, 1);
        r->eval_sub[s] = malloc(want * sizeof(uint32_t));
        if (!pick || !r->eval_sub[s]) { free(pick); return lra_fail(err, LRA_ERR_NOMEM, "out of memory"); }
        if (want == n) memset(pick, 1, n);
        else {
            lra_rng g;
            lra_rng_seed(&g, 0x5eb5e7u + (uint64_t)s);
            for (size_t i = n - want; i < n; i++) { /* Floyd's sampling: want distinct indices */
                size_t j = (size_t)(lra_rng_u64(&g) % (i + 1));
                pick[pick[j] ? i : j] = 1;
            }
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (pick[r->eval_order[s][i]]) r->eval_sub[s][k++] = r->eval_order[s][i];
        r->n_sub[s] = k;
        free(pick);
    }
    return LRA_OK;
}

/* Names what went bad first: a parameter (poisoned, or an update that overflowed), else the first
 * gradient, else the loss itself. */
static void diverged(run_state *r, int step, float loss) {
    lra_model *m = &r->model;
    char name[96];
    size_t i = lra_model_first_nonfinite(m, m->params);
    const char *what = "parameter";
    const float *x = m->params;
    if (i == m->nparams) { i = lra_model_first_nonfinite(m, m->grads); what = "gradient of"; x = m->grads; }
    if (i < m->nparams) {
        lra_model_param_name(m, i, name, sizeof name);
        snprintf(r->diverged_at, sizeof r->diverged_at, "step %d: %s %s is %s (loss %g)", step, what, name,
                 isnan(x[i]) ? "NaN" : "Inf", (double)loss);
    } else {
        snprintf(r->diverged_at, sizeof r->diverged_at, "step %d: the loss is %s with finite parameters and gradients",
                 step, isnan(loss) ? "NaN" : "Inf");
    }
}

/* The POISON test hook (common/test_hook.h): parameter INDEX becomes NaN before step STEP. */
static void test_poison(run_state *r, int step) {
    const char *e = lra_test_hook("POISON");
    long at, index;
    if (e && sscanf(e, "%ld:%ld", &at, &index) == 2 && at == step && index >= 0 && (size_t)index < r->model.nparams)
        r->model.params[index] = NAN;
}

/* ---- checkpoints ------------------------------------------------------------------------
 * Everything a later step depends on: parameters, Adam's moments, the step (which also fixes the
 * learning rate, Adam's bias correction and every dropout stream), the batcher's generator, epoch
 * order and position, and the statistics the report prints (loss window, curve, timings). */

static void section_list(run_state *r, const lra_batcher *b, lra_ckpt_section *s) {
    const size_t np = r->model.nparams * sizeof(float);
    s[0] = (lra_ckpt_section){"params", r->model.params, np};
    s[1] = (lra_ckpt_section){"adam_m", r->model.adam_m, np};
    s[2] = (lra_ckpt_section){"adam_v", r->model.adam_v, np};
    s[3] = (lra_ckpt_section){"order", b->order, b->split->n * sizeof(uint32_t)};
    s[4] = (lra_ckpt_section){"batch_start", b->batch_start, b->nbatches * sizeof(uint32_t)};
    s[5] = (lra_ckpt_section){"win_loss", r->win_loss, sizeof r->win_loss};
    s[6] = (lra_ckpt_section){"win_acc", r->win_acc, sizeof r->win_acc};
    s[7] = (lra_ckpt_section){"best_params", r->best_params, np};
}
enum { NSECTIONS = 8 };

static lra_status save_checkpoint(run_state *r, const lra_batcher *b, const char *report_path, char *err) {
    char hex[17], when[32];
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "kind", "lra-bench checkpoint");
    cJSON_AddItemToObject(h, "config", lra_config_to_json(r->c));
    cJSON_AddItemToObject(h, "identity", lra_config_identity_json(r->c));
    cJSON_AddStringToObject(h, "report", report_path);
    cJSON_AddStringToObject(h, "data_checksum", r->data_checksum);
    cJSON_AddNumberToObject(h, "nparams", (double)r->model.nparams);
    cJSON_AddNumberToObject(h, "step", r->steps_done);
    cJSON *best = cJSON_AddObjectToObject(h, "best_val");
    cJSON_AddNumberToObject(best, "step", r->best_step);
    cJSON_AddNumberToObject(best, "accuracy", r->best_val_acc);
    cJSON_AddNumberToObject(best, "loss", r->best_val_loss);
    cJSON *bj = cJSON_AddObjectToObject(h, "batcher");
    cJSON_AddNumberToObject(bj, "epoch", (double)b->epoch);
    cJSON_AddNumberToObject(bj, "next", (double)b->next);
    cJSON_AddNumberToObject(bj, "nbatches", (double)b->nbatches);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)b->rng.state);
    cJSON_AddStringToObject(bj, "rng", hex);
    cJSON *tj = cJSON_AddObjectToObject(h, "train");
    cJSON_AddNumberToObject(tj, "time_s", r->train_time);
    cJSON_AddNumberToObject(tj, "timed_steps", (double)r->timed_steps);
    cJSON_AddNumberToObject(tj, "timed_real_tokens", (double)r->timed_real_tokens);
    cJSON_AddNumberToObject(tj, "timed_padded_tokens", (double)r->timed_padded_tokens);
    cJSON_AddNumberToObject(h, "elapsed_s", lra_now() - r->t0);
    cJSON_AddNumberToObject(h, "started", (double)r->started);
    cJSON_AddItemReferenceToObject(h, "resumed_at_steps", r->resumed_at);
    cJSON_AddItemReferenceToObject(h, "curve", r->curve);
    cJSON_AddStringToObject(h, "git_commit", lra_git_commit());
    lra_iso_time((long)time(NULL), when);
    cJSON_AddStringToObject(h, "written_at", when);
    lra_ckpt_section s[NSECTIONS];
    section_list(r, b, s);
    lra_status st = lra_checkpoint_write(r->ckpt_path, h, s, NSECTIONS, err);
    cJSON_Delete(h);
    if (st == LRA_OK) r->ckpt_step = r->steps_done;
    return st;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* Restores the state save_checkpoint wrote, after refusing a checkpoint of another run: other
 * options (named), other data, another model size. */
static lra_status resume_from(run_state *r, lra_batcher *b, char *err) {
    const char *path = r->ckpt_path;
    if (!lra_file_exists(path))
        return lra_fail(err, LRA_ERR_USAGE, "--resume: no checkpoint at %s (--checkpoint=PATH names another)", path);
    lra_checkpoint ck;
    lra_status st = lra_checkpoint_read(path, &ck, err);
    if (st != LRA_OK) return st;
    const cJSON *h = ck.header;
    char diff[LRA_ERR_LEN - 100];
    cJSON *mine = lra_config_identity_json(r->c);
    const cJSON *theirs = cJSON_GetObjectItemCaseSensitive(h, "identity");
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(h, "data_checksum");
    const cJSON *bj = cJSON_GetObjectItemCaseSensitive(h, "batcher"), *tj = cJSON_GetObjectItemCaseSensitive(h, "train");
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(bj, "rng"), *curve = cJSON_GetObjectItemCaseSensitive(h, "curve");
    const cJSON *resumed = cJSON_GetObjectItemCaseSensitive(h, "resumed_at_steps");
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(h, "best_val");
    const double step = jnum(h, "step"), epoch = jnum(bj, "epoch"), next = jnum(bj, "next");
    const double best_step = jnum(best, "step"), best_acc = jnum(best, "accuracy"), best_loss = jnum(best, "loss");
    if (!cJSON_IsObject(theirs) || !cJSON_IsString(sum) || !cJSON_IsString(rng) || !cJSON_IsArray(curve) ||
        !cJSON_IsArray(resumed) || !cJSON_IsObject(tj) || !(step >= 0 && step <= r->c->steps) || step != floor(step) ||
        !(epoch >= 0 && epoch < 1e15) || !(next >= 0 && next <= (double)b->nbatches) || strlen(rng->valuestring) != 16 ||
        !(best_step >= -1 && best_step <= step) || best_step != floor(best_step) || !(best_acc >= 0 && best_acc <= 1) ||
        isnan(best_loss))
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: the checkpoint's header lacks or has out-of-range run state", path);
    else if (lra_config_diff(theirs, mine, diff, sizeof diff))
        st = lra_fail(err, LRA_ERR_USAGE, "%s belongs to another run than these options (or the report they came from): %s",
                      path, diff);
    else if (strcmp(sum->valuestring, r->data_checksum) != 0)
        st = lra_fail(err, LRA_ERR_USAGE, "%s was written on other data (sha256 %.12s..., this run's %.12s...)", path,
                      sum->valuestring, r->data_checksum);
    else if (jnum(h, "nparams") != (double)r->model.nparams)
        st = lra_fail(err, LRA_ERR_FORMAT, "%s holds %.0f parameters; this model has %zu", path, jnum(h, "nparams"),
                      r->model.nparams);
    cJSON_Delete(mine);
    lra_ckpt_section s[NSECTIONS];
    section_list(r, b, s);
    for (int i = 0; i < NSECTIONS && st == LRA_OK; i++) {
        st = lra_checkpoint_section(&ck, s[i].name, (void *)s[i].data, s[i].bytes, err);
        if (st != LRA_OK) {
            char e2[LRA_ERR_LEN];
            snprintf(e2, sizeof e2, "%s", err);
            snprintf(err, LRA_ERR_LEN, "%.200s: %.300s", path, e2);
        }
    }
    if (st == LRA_OK) {
        b->epoch = (long)epoch;
        b->next = (size_t)next;
        b->rng.state = strtoull(rng->valuestring, NULL, 16);
        st = lra_batcher_check(b, err);
    }
    if (st == LRA_OK) {
        r->steps_done = (int)step;
        r->best_step = (int)best_step;
        r->best_val_acc = best_acc;
        r->best_val_loss = best_loss;
        /* timings only feed throughput: a missing one counts as none rather than a NaN */
        const double tt = jnum(tj, "time_s"), ts = jnum(tj, "timed_steps");
        const double rt = jnum(tj, "timed_real_tokens"), pt = jnum(tj, "timed_padded_tokens");
        const int timed = tt >= 0 && ts >= 0 && rt >= 0 && pt >= 0 && ts < 1e15 && rt < 1e18 && pt < 1e18;
        r->train_time = timed ? tt : 0;
        r->timed_steps = timed ? (long)ts : 0;
        r->timed_real_tokens = timed ? (long)rt : 0;
        r->timed_padded_tokens = timed ? (long)pt : 0;
        if (isfinite(jnum(h, "elapsed_s"))) r->t0 = lra_now() - jnum(h, "elapsed_s");
        const double started = jnum(h, "started");
        if (started >= 0 && started < 1e12) r->started = (long)started; /* a range first: (long)1e300 is undefined */
        cJSON_Delete(r->curve);
        cJSON_Delete(r->resumed_at);
        r->curve = cJSON_Duplicate(curve, 1);
        r->resumed_at = cJSON_Duplicate(resumed, 1);
        cJSON_AddItemToArray(r->resumed_at, cJSON_CreateNumber(step));
        r->ckpt_step = (int)step;
        const cJSON *git = cJSON_GetObjectItemCaseSensitive(h, "git_commit");
        if (cJSON_IsString(git) && strcmp(git->valuestring, lra_git_commit()) != 0)
            fprintf(stderr, "lra-bench: note: %s was written by lra-bench %s, this is %s\n", path, git->valuestring,
                    lra_git_commit());
        if (!r->curve || !r->resumed_at) st = lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    }
    lra_checkpoint_free(&ck);
    return st;
}

/* Every eval_every steps: validation (the fixed subset, or all of it with --eval-subset=0) for the
 * curve and for model selection; the test split waits for the end. */
static void periodic_evaluation(run_state *r, int step, int progress) {
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
    window_means(r, &wl, &wa, &wn);
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
    cJSON *diag = attention_diagnostics(r); /* routing over training: a collapse shows when it happens */
    cJSON_AddItemToObject(pt, "attention", cJSON_DetachItemFromObjectCaseSensitive(diag, "layers"));
    cJSON_Delete(diag);
    cJSON_AddItemToArray(r->curve, pt);
    if (progress)
        fprintf(stderr, "eval   %6d | val loss %.4f acc %.4f | best %.4f at %d | %.1fs\n", step, v.loss, v.acc,
                r->best_val_acc, r->best_step, lra_now() - te);
}

/* After the last step: val and test of the last parameters, then of the best-validation ones (the
 * field's reported figure). The last step competes too: its full validation pass is an evaluation
 * every run has. */
static void final_evaluation(run_state *r, int progress) {
    lra_model *m = &r->model;
    const int sub = r->c->final_eval_subset;
    r->final[LRA_SPLIT_VAL] = evaluate(r, LRA_SPLIT_VAL, sub);
    r->final[LRA_SPLIT_TEST] = r->task->val_is_test ? r->final[LRA_SPLIT_VAL] : evaluate(r, LRA_SPLIT_TEST, sub);
    r->have_final = 1;
    r->attn_diag = attention_diagnostics(r);
    if (progress)
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
    if (progress)
        fprintf(stderr, "best   | step %d | val loss %.4f acc %.4f | test loss %.4f acc %.4f\n", r->best_step,
                r->best[1].loss, r->best[1].acc, r->best[2].loss, r->best[2].acc);
}

/* The STOP_AT test hook: SIGSTOP before step STEP, for a test to SIGKILL at a known point. */
static void test_stop(int step) {
    const char *e = lra_test_hook("STOP_AT");
    if (e && atoi(e) == step) raise(SIGSTOP);
}

/* The HOLD_ON_STOP test hook: after the first signal, wait for the second (which exits at once). */
static void test_hold_on_stop(void) {
    if (!lra_test_hook("HOLD_ON_STOP")) return;
    for (;;) pause();
}

void lra_run_default_report(const lra_config *c, char *path, size_t n) {
    cJSON *id = lra_config_identity_json(c);
    cJSON_DeleteItemFromObjectCaseSensitive(id, "seed"); /* in the name already */
    char *text = cJSON_PrintUnformatted(id), hex[65] = "00000000";
    cJSON_Delete(id);
    if (text) {
        lra_sha256 h;
        lra_sha256_init(&h);
        lra_sha256_update(&h, text, strlen(text));
        lra_sha256_final_hex(&h, hex);
        free(text);
    }
    snprintf(path, n, "results/%s/%s-%s-seed%ld-%.8s.json", c->task, c->backend, c->profile, c->seed, hex);
}

/* A new run never replaces another's files silently: an existing report or checkpoint is refused
 * (with what it holds and the ways on), unless --overwrite. Even then the old files stay until
 * the new run's replace them atomically, so a run that cannot write loses nothing. */
static lra_status claim_paths(const lra_config *c, const char *report, const char *ckpt, char *err) {
    const char *both[2] = {report, ckpt};
    for (int i = 0; i < 2 && !c->overwrite; i++) {
        if (!lra_file_exists(both[i])) continue;
        char what[160] = "";
        if (i == 0) { /* say what the report holds */
            lra_status ignored;
            char e2[LRA_ERR_LEN];
            cJSON *j = lra_read_json(report, &ignored, e2);
            const cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
            const cJSON *steps = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "results"), "train"), "steps");
            if (cJSON_IsString(status) && cJSON_IsNumber(steps))
                snprintf(what, sizeof what, " (a %s run, %.0f steps)", status->valuestring, steps->valuedouble);
            cJSON_Delete(j);
        }
        return lra_fail(err, LRA_ERR_USAGE,
                        "%s exists%s: `lra-bench resume %s` continues that run; --out=PATH writes this one elsewhere; "
                        "--overwrite replaces it", both[i], what, both[i]);
    }
    return LRA_OK;
}

lra_status lra_run(const lra_config *c, char *report_path, size_t pathn, char *err) {
    run_state *r = calloc(1, sizeof *r);
    if (!r) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    r->c = c;
    r->t0 = lra_now();
    r->started = (long)time(NULL);
    r->status = "running";
    r->ckpt_step = -1;
    /* SIGINT/SIGTERM: the first stops data generation, or training after the current step with
     * a checkpoint and a partial report; a second exits at once (the report on disk stays intact) */
    lra_stop_install();
    lra_status st = LRA_OK;
    lra_batcher bat = {0};
    r->task = lra_task_find(c->task);
    if (!r->task) { st = lra_fail(err, LRA_ERR_USAGE, "unknown task '%s'", c->task); goto done; }
    if (c->max_len > r->task->max_len)
        fprintf(stderr, "lra-bench: note: --max-len=%d exceeds the official %d for %s\n", c->max_len, r->task->max_len, c->task);
    else if (c->max_len < r->task->max_len) /* the ci profile's 256: Pathfinder then sees its top eight rows */
        fprintf(stderr, "lra-bench: note: inputs cut to %d of %s's %d tokens (--max-len)\n", c->max_len, c->task,
                r->task->max_len);
    if (c->out[0]) snprintf(report_path, pathn, "%s", c->out);
    else lra_run_default_report(c, report_path, pathn);
    if (c->checkpoint[0]) snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s", c->checkpoint);
    else { /* beside the report: X.json -> X.ckpt */
        size_t n = strlen(report_path);
        int json = n > 5 && strcmp(report_path + n - 5, ".json") == 0;
        snprintf(r->ckpt_path, sizeof r->ckpt_path, "%.*s.ckpt", (int)(json ? n - 5 : n), report_path);
    }
    /* a killed run's half-written report or checkpoint: never read, only in the way */
    lra_atomic_sweep(report_path);
    lra_atomic_sweep(r->ckpt_path);
    if (!c->resume && (st = claim_paths(c, report_path, r->ckpt_path, err)) != LRA_OK) goto done;

    const int threads = c->threads > 0 ? c->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);

    lra_model_cfg mc = {
        .vocab = r->task->vocab, .classes = r->task->classes, .max_len = c->max_len, .batch = c->batch,
        .layers = c->layers, .heads = c->heads, .emb = c->emb, .qkv = c->qkv, .mlp = c->mlp,
        .cls = c->pool == LRA_POOL_CLS, .pool = c->pool, .learned_pos = c->pos_learned,
        .dropout = c->dropout, .attn_dropout = c->attn_dropout, .backend = c->backend,
        .attn_opts = c->attn_opts, .nthreads = threads, .dual = r->task->docs == 2,
        .dual_head = c->retrieval_head != 0, .dual_one_hidden = c->retrieval_head == 2,
        .attn_bias = c->attn_bias, .init = c->init, .pool_len = lra_config_pool_len(c)};
    /* the model first: a bad backend option fails before any data work */
    if ((st = lra_model_create(&r->model, &mc, err)) != LRA_OK) goto done;
    if ((st = load_data(r, err)) != LRA_OK) goto done;
    lra_model_init(&r->model, (uint64_t)c->seed);
    r->best_step = -1;
    r->best_params = malloc(r->model.nparams * sizeof(float));
    if (!r->best_params) { st = lra_fail(err, LRA_ERR_NOMEM, "out of memory"); goto done; }
    memcpy(r->best_params, r->model.params, r->model.nparams * sizeof(float));

    const size_t BL = (size_t)c->batch * c->max_len * (r->task->docs == 2 ? 2 : 1);
    r->idx = malloc(sizeof(uint32_t) * c->batch);
    r->tokens = lra_alloc_touched(sizeof(int32_t) * BL);
    r->labels = malloc(sizeof(int32_t) * c->batch);
    r->mask = lra_alloc_touched(BL);
    r->curve = cJSON_CreateArray();
    r->resumed_at = cJSON_CreateArray();
    if (!r->idx || !r->tokens || !r->labels || !r->mask || !r->curve || !r->resumed_at) {
        st = lra_fail(err, LRA_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = lra_batcher_init(&bat, &r->split[LRA_SPLIT_TRAIN], c->batch, c->batching, c->max_len,
                               lra_stream((uint64_t)c->seed, 0x5AFF1E, 0), err)) != LRA_OK)
        goto done;
    if (c->resume && (st = resume_from(r, &bat, err)) != LRA_OK) goto done;

    const int progress = c->progress < 0 ? isatty(2) : c->progress;
    r->progress = progress;
    if (progress)
        fprintf(stderr, "lra-bench: %s on %s, profile %s: %zu parameters, %d steps of %d, %d threads%s%s\n",
                c->backend, c->task, c->profile, r->model.nparams, c->steps, c->batch, threads,
                c->resume ? "; resuming from " : "", c->resume ? r->ckpt_path : "");
    double log_loss = 0, log_acc = 0, log_t0 = lra_now();
    const double loop_t0 = log_t0;
    const int loop_first = r->steps_done;
    long log_tokens = 0;
    int log_n = 0;
    const int K = r->task->classes;
    for (int step = r->steps_done; step < c->steps; step++) {
        if (lra_stop_requested()) {
            test_hold_on_stop();
            const char *sig = lra_stop_requested() == SIGINT ? "SIGINT" : "SIGTERM";
            char cerr[LRA_ERR_LEN];
            r->status = "interrupted";
            if (r->ckpt_step != step && save_checkpoint(r, &bat, report_path, cerr) != LRA_OK)
                st = lra_fail(err, LRA_ERR_INTERRUPTED, "interrupted (%s) after %d of %d steps; the partial report is "
                              "written, but not the checkpoint: %s", sig, step, c->steps, cerr);
            else
                st = lra_fail(err, LRA_ERR_INTERRUPTED, "interrupted (%s) after %d of %d steps; checkpoint %s - "
                              "`lra-bench resume %s` continues the run", sig, step, c->steps, r->ckpt_path, r->ckpt_path);
            break;
        }
        test_stop(step);
        double ts = lra_now();
        lra_batcher_next(&bat, r->idx);
        test_poison(r, step);
        long real;
        int L = lra_batch_fill(&r->split[LRA_SPLIT_TRAIN], r->idx, c->batch, c->batching, c->max_len,
                               r->tokens, r->mask, r->labels, &real);
        const lra_step_hparams hp = lra_step_hparams_at(c, step);
        double norm;
        float loss = lra_train_step(&r->model, r->tokens, r->mask, r->labels, c->batch, L,
                                    lra_stream((uint64_t)c->seed, 0xD50, (uint64_t)step), &hp, &norm);
        if (!isfinite(loss) || !isfinite(norm)) {
            diverged(r, step, loss);
            r->status = "diverged";
            st = lra_fail(err, LRA_ERR_DIVERGED, "training diverged at %s", r->diverged_at);
            break;
        }
        int correct = 0;
        for (int b = 0; b < c->batch; b++) correct += argmax(r->model.probs + (size_t)b * K, K) == r->labels[b];
        double dt = lra_now() - ts;
        r->steps_done = step + 1;
        r->win_loss[step % WINDOW] = loss;
        r->win_acc[step % WINDOW] = (float)correct / c->batch;
        if (step >= c->timing_skip) {
            r->train_time += dt;
            r->timed_steps++;
            r->timed_real_tokens += real;
            r->timed_padded_tokens += (long)c->batch * L * (r->task->docs == 2 ? 2 : 1);
        }
        log_loss += loss; log_acc += (double)correct / c->batch; log_tokens += real; log_n++;
        if (progress && ((step + 1) % c->log_every == 0 || step + 1 == c->steps)) {
            double now = lra_now(), span = now - log_t0;
            /* this process's pace, periodic evaluations and checkpoints included (a resumed run
             * may have another thread count than the steps before it) */
            double per_step = (now - loop_t0) / (step + 1 - loop_first);
            char eta[32];
            fmt_duration(per_step * (c->steps - step - 1), eta, sizeof eta);
            fprintf(stderr, "step %6d/%d | loss %.4f | acc %.3f | lr %.2e | %.2f steps/s | %.0f tok/s | ETA %s\n",
                    step + 1, c->steps, log_loss / log_n, log_acc / log_n, hp.lr, log_n / span,
                    log_tokens / span, eta);
            log_loss = log_acc = 0; log_tokens = 0; log_n = 0; log_t0 = lra_now();
        }
        if (c->eval_every > 0 && (step + 1) % c->eval_every == 0 && step + 1 < c->steps) {
            double te = lra_now();
            periodic_evaluation(r, step + 1, progress);
            /* a report after every evaluation, so a long run that is stopped still has its curve */
            char werr[LRA_ERR_LEN];
            if (write_report(r, report_path, werr) != LRA_OK) fprintf(stderr, "lra-bench: warning: %s\n", werr);
            log_t0 += lra_now() - te; /* the progress line's rates leave evaluation out */
        }
        if (c->checkpoint_every > 0 && ((step + 1) % c->checkpoint_every == 0 || step + 1 == c->steps)) {
            char cerr[LRA_ERR_LEN]; /* a run that cannot checkpoint goes on: losing it is worse */
            if (save_checkpoint(r, &bat, report_path, cerr) != LRA_OK) fprintf(stderr, "lra-bench: warning: %s\n", cerr);
        }
    }
    if (st == LRA_OK) {
        final_evaluation(r, progress);
        r->status = "completed";
    }
    {
        char werr[LRA_ERR_LEN];
        lra_status wst = write_report(r, report_path, werr);
        if (wst != LRA_OK && st == LRA_OK) { st = wst; snprintf(err, LRA_ERR_LEN, "%s", werr); }
    }
    if (st == LRA_OK) /* one line for logs and CI, terminal or not */
        fprintf(stderr, "lra-bench: %s/%s/%s seed %ld: test %.2f%% at the best-validation step %d (val %.2f%%), "
                "%.2f%% at the last; %.0f training tokens/s; %s\n", c->task, c->backend, c->profile, c->seed,
                100 * r->best[LRA_SPLIT_TEST].acc, r->best_step, 100 * r->best[LRA_SPLIT_VAL].acc,
                100 * r->final[LRA_SPLIT_TEST].acc, r->train_time > 0 ? r->timed_real_tokens / r->train_time : 0.0,
                report_path);
done:
    lra_stop_restore();
    lra_batcher_free(&bat);
    lra_model_free(&r->model); /* safe on a model whose creation failed (zeroed) */
    for (int s = 0; s < 3; s++) {
        if (!(s == LRA_SPLIT_TEST && r->task && r->task->val_is_test)) lra_split_free(&r->split[s]);
        free(r->eval_order[s]);
        free(r->eval_sub[s]);
    }
    free(r->idx); free(r->tokens); free(r->labels); free(r->mask); free(r->best_params);
    cJSON_Delete(r->curve);
    cJSON_Delete(r->resumed_at);
    cJSON_Delete(r->attn_diag);
    free(r);
    return st;
}
