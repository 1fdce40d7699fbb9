/* run_checkpoint.c - a run's checkpoints and exact resume from one (--resume; the `resume`
 * command is resume_cmd.c).
 * Everything a later step depends on is saved: parameters, Adam's moments, the best-validation
 * parameters, the step (which also fixes the learning rate, Adam's bias correction and every
 * dropout stream), the batcher's generator, epoch order and position, and the statistics the
 * report prints (loss window, curve, timings). The file format is checkpoint.h's. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../common/fs.h"
#include "../../common/test_hook.h"
#include "../../datasets/datadir.h"
#include "../encoder/dist.h"
#include "checkpoint.h"
#include "run_state.h"
#include "sysinfo.h"

static void section_list(run_state *r, lra_ckpt_section *s) {
    const lra_batcher *b = &r->bat;
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

lra_status lra_run_save_checkpoint(run_state *r, char *err) {
    if (lra_dist_rank() != 0) { /* one writer; every process holds the same state (dist.h) */
        r->ckpt_step = r->steps_done;
        return LRA_OK;
    }
    const lra_batcher *b = &r->bat;
    char hex[17], when[32];
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "kind", "lra-bench checkpoint");
    cJSON_AddItemToObject(h, "config", lra_config_to_json(r->c));
    cJSON_AddItemToObject(h, "identity", lra_config_identity_json(r->c));
    char abs[4096];
    lra_absolute_path(r->report_path, abs, sizeof abs);
    cJSON_AddStringToObject(h, "report", abs);
    cJSON_AddStringToObject(h, "data_checksum", r->data_checksum);
    cJSON_AddStringToObject(h, "data_source", r->source); /* a resume regenerates only generated data */
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
    const char *as_if = lra_test_hook("NUMERICS"); /* a checkpoint of another version, for the tests */
    cJSON_AddNumberToObject(h, "numerics", as_if ? atoi(as_if) : lra_numerics(r->c->precision));
    cJSON_AddItemReferenceToObject(h, "numerics_changed_at_steps", r->numerics_changed_at);
    lra_iso_time((long)time(NULL), when);
    cJSON_AddStringToObject(h, "written_at", when);
    lra_ckpt_section s[NSECTIONS];
    section_list(r, s);
    int moved = 0;
    lra_status st = lra_checkpoint_write(&r->ckpt_name, &moved, h, s, NSECTIONS, err);
    cJSON_Delete(h);
    if (moved)
        fprintf(stderr, "lra-bench: note: %s is no longer this run's file (another run's, or moved): its checkpoint is "
                "%s from now on\n", r->ckpt_path, r->ckpt_name.path);
    snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s", r->ckpt_name.path);
    if (st == LRA_OK) r->ckpt_step = r->steps_done;
    return st;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* Restores the state save_checkpoint wrote, after refusing a checkpoint of another run: other
 * options (named), other data, another model size. */
lra_status lra_run_resume_from(run_state *r, char *err) {
    lra_batcher *b = &r->bat;
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
    const cJSON *git = cJSON_GetObjectItemCaseSensitive(h, "git_commit");
    const cJSON *changed = cJSON_GetObjectItemCaseSensitive(h, "numerics_changed_at_steps");
    const double numerics = cJSON_GetObjectItemCaseSensitive(h, "numerics") ? jnum(h, "numerics") : 1; /* before the field */
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(h, "best_val");
    const double step = jnum(h, "step"), epoch = jnum(bj, "epoch"), next = jnum(bj, "next");
    const double best_step = jnum(best, "step"), best_acc = jnum(best, "accuracy"), best_loss = jnum(best, "loss");
    const cJSON *nj = cJSON_GetObjectItemCaseSensitive(h, "numerics");
    if (step == floor(step) && step > r->c->steps) /* a run continues only forward */
        st = lra_fail(err, LRA_ERR_USAGE, "%s is at step %.0f, past --steps=%d: leave --steps out to continue the run "
                      "as it was (its steps are part of it: they set the learning-rate schedule)", path, step, r->c->steps);
    else if (nj && !(cJSON_IsNumber(nj) && numerics >= 1 && numerics == floor(numerics)))
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: the checkpoint's numerics version is not a whole number", path);
    else if (!cJSON_IsObject(theirs) || !cJSON_IsString(sum) || !cJSON_IsString(rng) || !cJSON_IsArray(curve) ||
        !cJSON_IsArray(resumed) || !cJSON_IsObject(tj) || !(step >= 0 && step <= r->c->steps) || step != floor(step) ||
        !(epoch >= 0 && epoch < 1e15) || !(next >= 0 && next <= (double)b->nbatches) || strlen(rng->valuestring) != 16 ||
        strspn(rng->valuestring, "0123456789abcdef") != 16 ||
        !(best_step >= -1 && best_step <= step) || best_step != floor(best_step) || !(best_acc >= 0 && best_acc <= 1) ||
        isnan(best_loss))
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: the checkpoint's header lacks or has out-of-range run state", path);
    else if (lra_config_diff(theirs, "the checkpoint", mine, diff, sizeof diff))
        st = lra_fail(err, LRA_ERR_USAGE, "%s belongs to another run than these options (or the report they came from): %s",
                      path, diff);
    else if (strcmp(sum->valuestring, r->data_checksum) != 0)
        st = lra_fail(err, LRA_ERR_USAGE, "%s was written on other data (sha256 %.12s..., this run's %.12s...)", path,
                      sum->valuestring, r->data_checksum);
    else if (!lra_numerics_same(r->c->precision, (int)numerics) && !r->c->numerics_change)
        st = lra_fail(err, LRA_ERR_USAGE,
                      "%s was computed under numerics %.0f (lra-bench %s); this binary computes under numerics %d, "
                      "so continuing would not be the same run: resume with a binary of numerics %.0f, or pass "
                      "--numerics-change=on to continue anyway (the report records the step)",
                      path, numerics, cJSON_IsString(git) ? git->valuestring : "unknown", lra_numerics(r->c->precision),
                      numerics);
    else if (jnum(h, "nparams") != (double)r->model.nparams)
        st = lra_fail(err, LRA_ERR_FORMAT, "%s holds %.0f parameters; this model has %zu", path, jnum(h, "nparams"),
                      r->model.nparams);
    cJSON_Delete(mine);
    lra_ckpt_section s[NSECTIONS];
    section_list(r, s);
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
        if (cJSON_IsArray(changed)) {
            cJSON_Delete(r->numerics_changed_at);
            r->numerics_changed_at = cJSON_Duplicate(changed, 1);
        }
        if (!lra_numerics_same(r->c->precision, (int)numerics) && r->numerics_changed_at) {
            cJSON_AddItemToArray(r->numerics_changed_at, cJSON_CreateNumber(step));
            fprintf(stderr, "lra-bench: note: %s was computed under numerics %.0f, continued under %d from step %.0f "
                    "(--numerics-change=on; the report records it)\n", path, numerics, lra_numerics(r->c->precision), step);
        }
        r->ckpt_step = (int)step;
        if (cJSON_IsString(git) && strcmp(git->valuestring, lra_git_commit()) != 0)
            fprintf(stderr, "lra-bench: note: %s was written by lra-bench %s, this is %s\n", path, git->valuestring,
                    lra_git_commit());
        if (!r->curve || !r->resumed_at || !r->numerics_changed_at) st = lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    }
    lra_checkpoint_free(&ck);
    return st;
}
