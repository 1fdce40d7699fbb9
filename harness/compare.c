/* compare.c - `lra-bench compare FILES...`: comparison tables from reports.
 *
 * Reports are grouped by (task, backend, profile); several seeds of one group give mean and
 * sample standard deviation. Tables: test accuracy (--select=best: at the best-validation step,
 * the field's protocol; last: at the last step; both) per backend x task with the LRA average over
 * the five tasks (only when all five are there) and the LRA paper's Transformer row, marked as
 * published; throughput and memory (with --target=A, the wall time until validation accuracy
 * first reached A); the official fair-comparison rule (at most 10% more
 * parameters than full on the same task and profile). --baseline=FILE[,FILE...] with
 * --max-regression=P compares each group with the same group in the baseline and exits with 3
 * when test accuracy or training tokens/s fell by more than P percent. Exit status: 0, 1 for a
 * report that cannot be read (the file is named), 2 for usage errors, 3 for a regression. */
#define _POSIX_C_SOURCE 200809L
#include "compare.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../tasks/task.h"
#include "report.h"

group *lra_find_group(groups *gs, const char *task, const char *backend, const char *profile, int create) {
    for (int i = 0; i < gs->n; i++)
        if (!strcmp(gs->g[i].task, task) && !strcmp(gs->g[i].backend, backend) && !strcmp(gs->g[i].profile, profile))
            return &gs->g[i];
    if (!create) return NULL;
    if (gs->n == gs->cap) {
        int cap = gs->cap ? 2 * gs->cap : 16;
        group *g = realloc(gs->g, sizeof(group) * (size_t)cap);
        if (!g) return NULL;
        gs->g = g;
        gs->cap = cap;
    }
    group *g = &gs->g[gs->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->task, sizeof g->task, "%s", task);
    snprintf(g->backend, sizeof g->backend, "%s", backend);
    snprintf(g->profile, sizeof g->profile, "%s", profile);
    return g;
}

static const cJSON *field(const cJSON *j, const char *dotted, int type_number, const char *path, char *err, int *bad) {
    char key[128];
    snprintf(key, sizeof key, "%s", dotted);
    const cJSON *cur = j;
    char *save = NULL;
    for (char *k = strtok_r(key, ".", &save); k && cur; k = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, k);
    if (!cur || (type_number ? !cJSON_IsNumber(cur) : !cJSON_IsString(cur))) {
        if (!*bad) lra_fail(err, LRA_ERR_FORMAT, "%s: report lacks %s field '%s'", path, type_number ? "numeric" : "string", dotted);
        *bad = 1;
        return NULL;
    }
    return cur;
}

/* Wall seconds (the curve's elapsed_s) at the first periodic evaluation whose validation accuracy
 * reached target, NAN when none did. */
static double time_to_target(const cJSON *j, double target) {
    const cJSON *pt;
    if (isnan(target)) return NAN;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(j, "curve")) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(pt, "val_accuracy"), *t = cJSON_GetObjectItemCaseSensitive(pt, "elapsed_s");
        if (cJSON_IsNumber(a) && cJSON_IsNumber(t) && a->valuedouble >= target && t->valuedouble >= 0)
            return t->valuedouble;
    }
    return NAN;
}

/* Reads one report into the groups; only completed runs count (others are named on stderr). */
static lra_status add_report(groups *gs, const char *path, char *err) {
    lra_status st;
    cJSON *j = lra_read_json(path, &st, err);
    if (!j) return st;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "run") != 0) { /* README's compare glob takes speed reports too */
        fprintf(stderr, "lra-bench: %s: a '%s' report, not a training run: left out of the accuracy tables\n", path, kind->valuestring);
        cJSON_Delete(j);
        return LRA_OK;
    }
    int bad = 0;
    const cJSON *ver = field(j, "schema_version", 1, path, err, &bad);
    if (ver && ver->valuedouble != LRA_REPORT_SCHEMA_VERSION) {
        lra_fail(err, LRA_ERR_FORMAT, "%s: schema_version %g, this lra-bench reads version %d", path, ver->valuedouble,
                 LRA_REPORT_SCHEMA_VERSION);
        cJSON_Delete(j);
        return LRA_ERR_FORMAT;
    }
    const cJSON *status = field(j, "status", 0, path, err, &bad);
    if (!bad && strcmp(status->valuestring, "completed") != 0) {
        fprintf(stderr, "lra-bench: %s: status '%s', left out of the accuracy tables\n", path, status->valuestring);
        cJSON_Delete(j);
        return LRA_OK;
    }
    const cJSON *timed = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "throughput"), "train_steps_per_s");
    if (!bad && cJSON_IsNull(timed)) { /* --steps <= --timing-skip: a real run, with nothing to time */
        fprintf(stderr, "lra-bench: %s: no timed training steps (steps <= timing-skip): left out of the accuracy tables\n", path);
        cJSON_Delete(j);
        return LRA_OK;
    }
    const cJSON *task = field(j, "task", 0, path, err, &bad), *backend = field(j, "backend", 0, path, err, &bad);
    const cJSON *profile = field(j, "profile", 0, path, err, &bad);
    const cJSON *acc = field(j, "results.test.accuracy", 1, path, err, &bad);
    const cJSON *sps = field(j, "throughput.train_steps_per_s", 1, path, err, &bad);
    const cJSON *tps = field(j, "throughput.train_tokens_per_s", 1, path, err, &bad);
    const cJSON *eps = field(j, "throughput.eval_tokens_per_s", 1, path, err, &bad);
    const cJSON *rss = field(j, "memory.peak_rss_bytes", 1, path, err, &bad);
    const cJSON *par = field(j, "parameters.count", 1, path, err, &bad);
    const cJSON *seed = field(j, "seed", 1, path, err, &bad), *data = field(j, "data.checksum_sha256", 0, path, err, &bad);
    if (bad) { cJSON_Delete(j); return LRA_ERR_FORMAT; }
    /* model selection: absent from reports written before it existed */
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(j, "results");
    const char *best_path[] = {"best_val", "test", "accuracy"};
    for (int k = 0; k < 3 && best; k++) best = cJSON_GetObjectItemCaseSensitive(best, best_path[k]);
    if (best && !cJSON_IsNumber(best)) best = acc; /* and so fails the range check below, by name */
    const double best_acc = best ? best->valuedouble : acc->valuedouble;
    if (!(acc->valuedouble >= 0 && acc->valuedouble <= 1) || !(best_acc >= 0 && best_acc <= 1)) {
        /* the message before the delete (fuzz_report) */
        lra_fail(err, LRA_ERR_FORMAT, "%s: test accuracy %g is not in [0, 1]", path,
                 !(acc->valuedouble >= 0 && acc->valuedouble <= 1) ? acc->valuedouble : best_acc);
        cJSON_Delete(j);
        return LRA_ERR_FORMAT;
    }
    if (!(seed->valuedouble >= 0 && seed->valuedouble <= 9e15 && seed->valuedouble == floor(seed->valuedouble))) {
        /* converting it to long first would be undefined (fuzz_report, under UBSan) */
        lra_fail(err, LRA_ERR_FORMAT, "%s: seed %g is not a whole number from 0 to 9e15", path, seed->valuedouble);
        cJSON_Delete(j);
        return LRA_ERR_FORMAT;
    }
    /* a substitute dataset (Image on Fashion-MNIST) is its own column, never the task's */
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"), "dataset");
    char task_key[96];
    if (cJSON_IsString(sub) && strcmp(sub->valuestring, "fashion-mnist") == 0)
        snprintf(task_key, sizeof task_key, "%s[%s]", task->valuestring, sub->valuestring);
    else snprintf(task_key, sizeof task_key, "%s", task->valuestring);
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"), "attn-opt");
    char backend_key[96];
    if (cJSON_IsString(opts) && opts->valuestring[0])
        snprintf(backend_key, sizeof backend_key, "%s[%.80s]", backend->valuestring, opts->valuestring);
    else snprintf(backend_key, sizeof backend_key, "%s", backend->valuestring);
    group *g = lra_find_group(gs, task_key, backend_key, profile->valuestring, 1);
    if (!g) { cJSON_Delete(j); return lra_fail(err, LRA_ERR_NOMEM, "out of memory"); }
    if (g->n == (int)(sizeof g->acc / sizeof *g->acc)) {
        cJSON_Delete(j);
        return lra_fail(err, LRA_ERR_FORMAT, "%s: more than 64 seeds of %s/%s/%s", path, g->task, g->backend, g->profile);
    }
    for (int i = 0; i < g->n; i++)
        if (g->seed[i] == (long)seed->valuedouble) {
            cJSON_Delete(j);
            return lra_fail(err, LRA_ERR_FORMAT, "%s and %s: both are seed %ld of %s/%s/%s; give one report per seed",
                            g->file[i], path, g->seed[i], g->task, g->backend, g->profile);
        }
    if (g->n && strcmp(g->data, data->valuestring) != 0) {
        cJSON_Delete(j);
        return lra_fail(err, LRA_ERR_FORMAT, "%s and %s: %s/%s/%s on different data (checksums differ)", g->file[0], path,
                        g->task, g->backend, g->profile);
    }
    snprintf(g->data, sizeof g->data, "%s", data->valuestring);
    g->seed[g->n] = (long)seed->valuedouble;
    g->file[g->n] = path;
    g->acc_last[g->n] = 100.0 * acc->valuedouble;
    g->to_target_s[g->n] = time_to_target(j, gs->target);
    g->acc[g->n++] = 100.0 * best_acc;
    g->steps_s += sps->valuedouble;
    g->tokens_s += tps->valuedouble;
    g->eval_tokens_s += eps->valuedouble;
    g->rss_mb += rss->valuedouble / 1048576.0;
    g->params += par->valuedouble;
    cJSON_Delete(j);
    return LRA_OK;
}

double lra_mean(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s / n;
}
double lra_stdev(const double *x, int n) { /* sample standard deviation */
    if (n < 2) return 0;
    double m = lra_mean(x, n), s = 0;
    for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (n - 1));
}

lra_status lra_groups_load(groups *gs, char **files, int n, char *err) {
    for (int i = 0; i < n; i++) {
        lra_status st = add_report(gs, files[i], err);
        if (st != LRA_OK) return st;
    }
    for (int i = 0; i < gs->n; i++) { /* sums to means */
        group *g = &gs->g[i];
        g->steps_s /= g->n; g->tokens_s /= g->n; g->eval_tokens_s /= g->n; g->rss_mb /= g->n; g->params /= g->n;
    }
    return LRA_OK;
}

/* distinct (backend, profile) rows in order of first appearance */
static int row_keys(const groups *gs, int *first) {
    int n = 0;
    for (int i = 0; i < gs->n; i++) {
        int seen = 0;
        for (int k = 0; k < n && !seen; k++)
            seen = !strcmp(gs->g[first[k]].backend, gs->g[i].backend) && !strcmp(gs->g[first[k]].profile, gs->g[i].profile);
        if (!seen) first[n++] = i;
    }
    return n;
}

enum { SELECT_BEST = 0, SELECT_LAST = 1, SELECT_BOTH = 2 };

static const double *accuracies(const group *g, int last) { return last ? g->acc_last : g->acc; }

static void cell(char *buf, size_t n, const group *g, int last) {
    const double *a = g ? accuracies(g, last) : NULL;
    if (!g) snprintf(buf, n, "-");
    else if (g->n == 1) snprintf(buf, n, "%.2f", a[0]);
    else snprintf(buf, n, "%.2f ± %.2f (n=%d)", lra_mean(a, g->n), lra_stdev(a, g->n), g->n);
}

int lra_columns(const groups *gs, const char **keys, const char **titles) {
    int n = 0;
    for (int t = 0; t < lra_task_count(); t++) { keys[n] = lra_task_at(t)->name; titles[n++] = lra_task_at(t)->title; }
    for (int i = 0; i < gs->n && n < LRA_MAX_COLUMNS; i++) {
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = strcmp(keys[k], gs->g[i].task) == 0;
        if (!seen) { keys[n] = gs->g[i].task; titles[n++] = gs->g[i].task; }
    }
    return n;
}

static void print_accuracy(const groups *gs, const int *rows, int nr, int last) {
    const char *keys[LRA_MAX_COLUMNS], *titles[LRA_MAX_COLUMNS];
    const int nc = lra_columns(gs, keys, titles);
    int in_average = 0;
    for (int t = 0; t < lra_task_count(); t++) in_average += lra_task_at(t)->in_average;
    printf("## Test accuracy (%%), %s\n\n| backend | profile |",
           last ? "at the last training step"
                : "at the best-validation step (the field's protocol; a report without model selection: its last step)");
    for (int t = 0; t < nc; t++) printf(" %s |", titles[t]);
    printf(" Avg |\n|---|---|");
    for (int t = 0; t <= nc; t++) printf("---|");
    printf("\n");
    for (int r = 0; r < nr; r++) {
        const group *k = &gs->g[rows[r]];
        printf("| %s | %s |", k->backend, k->profile);
        double sum = 0;
        int have = 0;
        for (int t = 0; t < nc; t++) {
            const group *g = lra_find_group((groups *)gs, keys[t], k->backend, k->profile, 0);
            char c[64];
            cell(c, sizeof c, g, last);
            printf(" %s |", c);
            const lra_task_i *task = lra_task_find(keys[t]); /* a substitute's column is no LRA task */
            if (g && task && task->in_average) { sum += lra_mean(accuracies(g, last), g->n); have++; }
        }
        if (have == in_average) printf(" %.2f |\n", sum / have);
        else printf(" - |\n");
    }
    printf("| Transformer (published, LRA paper; not measured here) | official |");
    double published_sum = 0;
    for (int t = 0; t < nc; t++) {
        const lra_task_i *task = lra_task_find(keys[t]);
        if (!task) printf(" - |");
        else isnan(task->published) ? printf(" FAIL |") : printf(" %.2f |", task->published);
        if (task && task->in_average) published_sum += task->published;
    }
    printf(" %.2f |\n\nAvg: the mean over the %d tasks of the LRA average (all but Path-X), shown when all are present.\n",
           published_sum / in_average, in_average);
}

/* How many seeds reached the target, and their mean time to it in *mean (NAN when none did). */
static int time_to_target_mean(const group *g, double *mean) {
    double sum = 0;
    int reached = 0;
    for (int i = 0; i < g->n; i++)
        if (!isnan(g->to_target_s[i])) { sum += g->to_target_s[i]; reached++; }
    *mean = reached ? sum / reached : NAN;
    return reached;
}

/* " 812 s |" (mean over the seeds that reached it), " 812 s (2/3) |", or " not reached |" */
static void target_cell(char *buf, size_t n, const group *g) {
    double mean;
    const int reached = time_to_target_mean(g, &mean);
    if (!reached) snprintf(buf, n, " not reached |");
    else if (reached == g->n) snprintf(buf, n, " %.0f s |", mean);
    else snprintf(buf, n, " %.0f s (%d/%d) |", mean, reached, g->n);
}

static void print_markdown(const groups *gs, int select) {
    int *rows = malloc(sizeof(int) * (size_t)(gs->n + 1)), nr = row_keys(gs, rows);
    if (select != SELECT_LAST) print_accuracy(gs, rows, nr, 0);
    if (select == SELECT_BOTH) printf("\n");
    if (select != SELECT_BEST) print_accuracy(gs, rows, nr, 1);
    const int target = !isnan(gs->target);
    char tcol[64] = "";
    if (target) snprintf(tcol, sizeof tcol, " wall time to val >= %.2f%% |", 100 * gs->target);
    printf("\n## Throughput and memory (means over seeds)\n\n"
           "| task | backend | profile | seeds | train steps/s | train tokens/s | eval tokens/s | peak RSS MB | parameters | vs full |%s\n"
           "|---|---|---|---|---|---|---|---|---|---|%s\n", tcol, target ? "---|" : "");
    int flagged = 0;
    for (int i = 0; i < gs->n; i++) {
        const group *g = &gs->g[i];
        const group *f = lra_find_group((groups *)gs, g->task, "full", g->profile, 0);
        char rel[48] = "-", tt[48] = "";
        if (f && f->params > 0) {
            double ratio = g->params / f->params;
            int over = ratio > 1.10;
            flagged += over;
            snprintf(rel, sizeof rel, "%+.1f%%%s", 100 * (ratio - 1), over ? " **over 10%**" : "");
        }
        if (target) target_cell(tt, sizeof tt, g);
        printf("| %s | %s | %s | %d | %.3f | %.0f | %.0f | %.0f | %.0f | %s |%s\n", g->task, g->backend, g->profile, g->n,
               g->steps_s, g->tokens_s, g->eval_tokens_s, g->rss_mb, g->params, rel, tt);
    }
    printf("\nParameter rule (official LRA README): at most 10%% more parameters than full on the same task.%s\n",
           flagged ? " Rows marked **over 10%** break it." : " No row breaks it.");
    if (target)
        printf("Wall time: from the run's start (data loading, training and its periodic evaluations) to the first "
               "evaluation at or above the target.\n");
    free(rows);
}

static void print_csv(const groups *gs) {
    printf("task,backend,profile,seeds,test_accuracy_mean,test_accuracy_std,train_steps_per_s,train_tokens_per_s,"
           "eval_tokens_per_s,peak_rss_mb,parameters,parameters_vs_full,last_step_test_accuracy_mean,"
           "last_step_test_accuracy_std,seconds_to_target,target_reached\n");
    for (int i = 0; i < gs->n; i++) {
        const group *g = &gs->g[i];
        const group *f = lra_find_group((groups *)gs, g->task, "full", g->profile, 0);
        char rel[32] = "", tt[48] = "";
        if (f && f->params > 0) snprintf(rel, sizeof rel, "%.4f", g->params / f->params);
        double mean;
        const int reached = time_to_target_mean(g, &mean);
        if (reached) snprintf(tt, sizeof tt, "%.1f,%d", mean, reached);
        else snprintf(tt, sizeof tt, isnan(gs->target) ? "," : ",0");
        printf("%s,%s,%s,%d,%.4f,%.4f,%.4f,%.1f,%.1f,%.1f,%.0f,%s,%.4f,%.4f,%s\n", g->task, g->backend, g->profile, g->n,
               lra_mean(g->acc, g->n), lra_stdev(g->acc, g->n), g->steps_s, g->tokens_s, g->eval_tokens_s, g->rss_mb, g->params,
               rel, lra_mean(g->acc_last, g->n), lra_stdev(g->acc_last, g->n), tt);
    }
}

/* 1 when any group regressed by more than max_pct against the baseline; says how many groups it
 * checked either way, so a quiet gate is told from one that compared nothing */
static int regressions(const groups *cur, const groups *base, double max_pct) {
    int checked = 0, regressed = 0;
    for (int i = 0; i < cur->n; i++) {
        const group *g = &cur->g[i];
        const group *b = lra_find_group((groups *)base, g->task, g->backend, g->profile, 0);
        if (!b) continue;
        checked++;
        int found = 0; /* this group, by accuracy or by speed */
        double ba = lra_mean(b->acc, b->n), ca = lra_mean(g->acc, g->n);
        if (ba > 0 && 100 * (ba - ca) / ba > max_pct) {
            fprintf(stderr, "regression: %s/%s/%s test accuracy %.2f%% -> %.2f%% (%.1f%% lower, limit %g%%)\n", g->task,
                    g->backend, g->profile, ba, ca, 100 * (ba - ca) / ba, max_pct);
            found = 1;
        }
        if (b->tokens_s > 0 && 100 * (b->tokens_s - g->tokens_s) / b->tokens_s > max_pct) {
            fprintf(stderr, "regression: %s/%s/%s training tokens/s %.0f -> %.0f (%.1f%% lower, limit %g%%)\n", g->task,
                    g->backend, g->profile, b->tokens_s, g->tokens_s, 100 * (b->tokens_s - g->tokens_s) / b->tokens_s,
                    max_pct);
            found = 1;
        }
        regressed += found;
    }
    fprintf(stderr, "lra-bench compare: %d group%s checked against the baseline, %d regression%s (limit %g%%)\n", checked,
            checked == 1 ? "" : "s", regressed, regressed == 1 ? "" : "s", max_pct);
    return regressed > 0;
}

int lra_compare_main(int argc, char **argv) {
    int csv = 0, nfiles = 0, nbase = 0, select = SELECT_BEST;
    double max_pct = NAN, target = NAN;
    char **files = calloc((size_t)argc + 1, sizeof(char *)), *base_list = NULL;
    char *base_files[256];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--format=csv") == 0) csv = 1;
        else if (strcmp(a, "--format=markdown") == 0) csv = 0;
        else if (strncmp(a, "--baseline=", 11) == 0) base_list = argv[i] + 11;
        else if (strcmp(a, "--select=best") == 0) select = SELECT_BEST;
        else if (strcmp(a, "--select=last") == 0) select = SELECT_LAST;
        else if (strcmp(a, "--select=both") == 0) select = SELECT_BOTH;
        else if (strncmp(a, "--target=", 9) == 0) {
            char *end;
            target = strtod(a + 9, &end);
            if (!a[9] || *end || !(target > 0 && target <= 1)) {
                fprintf(stderr, "lra-bench compare: --target='%s' must be a validation accuracy in (0, 1], e.g. 0.36\n", a + 9);
                free(files);
                return 2;
            }
        }
        else if (strncmp(a, "--max-regression=", 17) == 0) {
            char *end;
            max_pct = strtod(a + 17, &end);
            if (!a[17] || *end || !(max_pct >= 0)) {
                fprintf(stderr, "lra-bench compare: --max-regression='%s' must be a percentage >= 0\n", a + 17);
                free(files);
                return 2;
            }
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "lra-bench compare: unknown option '%s' (--format=markdown|csv, --select=best|last|both, "
                            "--target=ACC, --baseline=FILES, --max-regression=P)\n", a);
            free(files);
            return 2;
        } else files[nfiles++] = argv[i];
    }
    if (!nfiles) {
        fprintf(stderr, "lra-bench compare: no report files given (usage: lra-bench compare FILES...)\n");
        free(files);
        return 2;
    }
    if ((base_list != NULL) != !isnan(max_pct)) {
        fprintf(stderr, "lra-bench compare: --baseline and --max-regression go together\n");
        free(files);
        return 2;
    }
    char *save = NULL;
    for (char *t = base_list ? strtok_r(base_list, ",", &save) : NULL; t && nbase < 256; t = strtok_r(NULL, ",", &save))
        base_files[nbase++] = t;
    groups cur = {0}, base = {0};
    cur.target = target;
    base.target = NAN;
    char err[LRA_ERR_LEN];
    int rc = 0;
    lra_status st = lra_groups_load(&cur, files, nfiles, err);
    if (st == LRA_OK && base_list) st = lra_groups_load(&base, base_files, nbase, err);
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench compare: %s\n", err);
        rc = 1;
    } else if (!cur.n) {
        fprintf(stderr, "lra-bench compare: no completed report among the files given\n");
        rc = 1;
    } else {
        if (csv) print_csv(&cur);
        else print_markdown(&cur, select);
        if (base_list && regressions(&cur, &base, max_pct)) rc = 3;
    }
    free(cur.g);
    free(base.g);
    free(files);
    return rc;
}
