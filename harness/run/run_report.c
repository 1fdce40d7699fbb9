/* run_report.c - a run's JSON report, built from its state (run_state.h); the schema, field by
 * field, is in results/README.md. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../common/fs.h"
#include "../../common/json_file.h"
#include "../encoder/dist.h"
#include "run_state.h"
#include "sysinfo.h"

static cJSON *eval_json(const eval_result *e) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "loss", e->loss);
    cJSON_AddNumberToObject(j, "accuracy", e->acc);
    cJSON_AddNumberToObject(j, "examples", (double)e->n);
    return j;
}

void lra_run_window_means(const run_state *r, double *loss, double *acc, int *n) {
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
    const lra_task_dataset *alt = lra_task_dataset_find(r->task, c->dataset);
    if (alt) {
        cJSON_AddStringToObject(data, "dataset", alt->name);
        cJSON_AddStringToObject(data, "substitute", alt->substitute);
    }
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
    lra_run_window_means(r, &wl, &wa, &wn);
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
        char abs[4096];
        lra_absolute_path(r->ckpt_path, abs, sizeof abs);
        cJSON_AddStringToObject(ck, "path", abs);
        cJSON_AddNumberToObject(ck, "step", r->ckpt_step);
    }
    if (cJSON_GetArraySize(r->resumed_at)) cJSON_AddItemReferenceToObject(j, "resumed_at_steps", r->resumed_at);
    if (cJSON_GetArraySize(r->numerics_changed_at))
        cJSON_AddItemReferenceToObject(j, "numerics_changed_at_steps", r->numerics_changed_at);
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
    cJSON *par_run = lra_dist_json(); /* processes, hosts; threads are per process (machine.threads) */
    cJSON_AddNumberToObject(par_run, "threads_per_process", omp_get_max_threads());
    cJSON_AddNumberToObject(par_run, "grad_shards", c->grad_shards);
    cJSON_AddNumberToObject(par_run, "comm_seconds", r->trainer.comm_seconds);
    cJSON_AddNumberToObject(par_run, "comm_bytes_sent", r->trainer.comm_bytes);
    cJSON_AddItemToObject(j, "parallel", par_run);
    cJSON_AddStringToObject(j, "git_commit", lra_git_commit());
    cJSON_AddNumberToObject(j, "numerics", lra_numerics(c->precision));
    lra_iso_time(r->started, when);
    cJSON_AddStringToObject(j, "started_at", when);
    lra_iso_time((long)time(NULL), when);
    cJSON_AddStringToObject(j, "finished_at", when);
    return j;
}

lra_status lra_run_write_report(run_state *r, char *err) {
    if (lra_dist_rank() != 0) return LRA_OK; /* one writer (dist.h) */
    cJSON *j = build_report(r);
    lra_atomic_file a;
    lra_status st = lra_write_json_tmp(&a, r->report_name.path, j, err);
    cJSON_Delete(j);
    if (st != LRA_OK) return st;
    int moved, e = lra_atomic_put_owned(&a, &r->report_name, &moved, LRA_ATOMIC_SYNC);
    if (e) return lra_fail(err, LRA_ERR_IO, "%s: could not write the report: %s", r->report_name.path, strerror(e));
    if (moved)
        fprintf(stderr, "lra-bench: note: %s is no longer this run's file (another run's, or moved): its report is %s "
                "from now on\n", r->report_path, r->report_name.path);
    snprintf(r->report_path, sizeof r->report_path, "%s", r->report_name.path);
    return LRA_OK;
}

int lra_run_report_cost(const cJSON *report, double *wall_s, double *core_s) {
    const cJSON *wall = cJSON_GetObjectItemCaseSensitive(report, "wall_time_s");
    const cJSON *parallel = cJSON_GetObjectItemCaseSensitive(report, "parallel");
    const cJSON *procs = cJSON_GetObjectItemCaseSensitive(parallel, "processes");
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(parallel, "threads_per_process");
    *wall_s = *core_s = 0.0;
    if (!cJSON_IsNumber(wall) || !(wall->valuedouble > 0)) return 0;
    *wall_s = wall->valuedouble;
    *core_s = wall->valuedouble * (cJSON_IsNumber(procs) && procs->valuedouble >= 1 ? procs->valuedouble : 1) *
              (cJSON_IsNumber(thr) && thr->valuedouble >= 1 ? thr->valuedouble : 1);
    return 1;
}
