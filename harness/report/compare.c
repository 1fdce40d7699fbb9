/* compare.c - `lra-bench compare FILES...`: comparison tables from reports.
 *
 * Reports are grouped by (task, backend, profile; a bf16 run's profile is "repro/bf16"); several
 * seeds of one group give mean and sample standard deviation. Tables: test accuracy
 * (--select=best: at the best-validation step, the field's protocol; last: at the last step;
 * both) per backend x task with the LRA average over the five tasks (only when all five are
 * there) and the LRA paper's Transformer row, marked as published; throughput and memory (with
 * --target=A, the wall time until validation accuracy first reached A); the official
 * fair-comparison rule (at most 10% more parameters than full on the same task and profile).
 * --baseline=FILE[,FILE...] is the gate: each baseline group against the same group here, test
 * accuracy by --max-regression=P, training tokens/s by --max-slowdown=P and peak RSS by
 * --max-memory-growth=P (percent), a baseline group with no comparable report failing unless
 * --allow-missing. Exit status: 0, 1 for a report that cannot be read (the file is named), 2 for
 * usage errors, 3 when the gate failed. */
#define _POSIX_C_SOURCE 200809L
#include "compare.h"

#include <errno.h>
#include <glob.h>
#include <unistd.h>
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../../common/json_file.h"
#include "../../tasks/task.h"
#include "../run/run.h"
#include "../run/sysinfo.h"
#include "stats.h"

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
double lra_groups_target(const groups *gs, const char *task) {
    const size_t n = strcspn(task, "["); /* a substitute dataset's key: its task's target */
    for (int i = 0; i < gs->ntargets; i++)
        if (strlen(gs->target_task[i]) == n && strncmp(gs->target_task[i], task, n) == 0) return gs->target_of[i];
    return gs->target;
}

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

/* A report's backend_options object as "k=v,k=v" (numbers as %g), "" when absent */
static void resolved_options(const cJSON *o, char *out, size_t n) {
    size_t used = 0;
    const cJSON *x;
    out[0] = '\0';
    if (!cJSON_IsObject(o)) return;
    cJSON_ArrayForEach(x, o) {
        if (used >= n || !x->string) break;
        if (cJSON_IsNumber(x)) used += (size_t)snprintf(out + used, n - used, "%s%s=%g", used ? "," : "", x->string, x->valuedouble);
        else if (cJSON_IsString(x)) used += (size_t)snprintf(out + used, n - used, "%s%s=%s", used ? "," : "", x->string, x->valuestring);
    }
}

/* Reads one report into the groups; only completed runs count (others are named on stderr). */
static lra_status add_report(groups *gs, const char *path, char *err) {
    lra_status st;
    cJSON *j = lra_read_json(path, &st, err);
    if (!j) return st;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "run") != 0) { /* the manual's compare glob takes speed reports too */
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
    /* a substitute dataset (Image on Fashion-MNIST, ListOps' short trees) is its own column, never
     * the task's, and never in the LRA average */
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"), "dataset");
    char task_key[96];
    if (cJSON_IsString(sub) && sub->valuestring[0])
        snprintf(task_key, sizeof task_key, "%s[%s]", task->valuestring, sub->valuestring);
    else snprintf(task_key, sizeof task_key, "%s", task->valuestring);
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"), "attn-opt");
    char backend_key[96];
    if (cJSON_IsString(opts) && opts->valuestring[0])
        snprintf(backend_key, sizeof backend_key, "%s[%.80s]", backend->valuestring, opts->valuestring);
    else snprintf(backend_key, sizeof backend_key, "%s", backend->valuestring);
    /* a bf16 run is compared with bf16 runs: its precision joins the profile ("repro/bf16") */
    const cJSON *prec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"), "precision");
    char profile_key[48];
    if (cJSON_IsString(prec) && strcmp(prec->valuestring, "fp32") != 0)
        snprintf(profile_key, sizeof profile_key, "%.15s/%.15s", profile->valuestring, prec->valuestring);
    else snprintf(profile_key, sizeof profile_key, "%.40s", profile->valuestring);
    group *g = lra_find_group(gs, task_key, backend_key, profile_key, 1);
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
    if (g->n == 0) resolved_options(cJSON_GetObjectItemCaseSensitive(j, "backend_options"), g->options, sizeof g->options);
    const cJSON *numerics = cJSON_GetObjectItemCaseSensitive(j, "numerics");
    const int nv = cJSON_IsNumber(numerics) && numerics->valuedouble >= 0 && numerics->valuedouble < 1e6 ? (int)numerics->valuedouble : 0;
    if (g->n == 0 || nv < g->numerics_lo) g->numerics_lo = nv;
    if (g->n == 0 || nv > g->numerics_hi) g->numerics_hi = nv;
    g->seed[g->n] = (long)seed->valuedouble;
    g->file[g->n] = path;
    g->acc_last[g->n] = 100.0 * acc->valuedouble;
    g->to_target_s[g->n] = time_to_target(j, lra_groups_target(gs, task->valuestring));
    g->acc[g->n++] = 100.0 * best_acc;
    g->steps_s += sps->valuedouble;
    g->tokens_s += tps->valuedouble;
    g->eval_tokens_s += eps->valuedouble;
    g->rss_mb += rss->valuedouble / 1048576.0;
    g->params += par->valuedouble;
    double wall_s, core_s;
    lra_run_report_cost(j, &wall_s, &core_s);
    g->wall_s += wall_s;
    g->core_s += core_s;
    cJSON_Delete(j);
    return LRA_OK;
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

int lra_columns(const groups *gs, const char **keys, const char **titles) {
    int n = 0;
    for (int t = 0; t < lra_task_count(); t++) { /* LRA's six always; another task where a report has it */
        const lra_task_i *task = lra_task_at(t);
        int present = !task->not_lra;
        for (int i = 0; i < gs->n && !present; i++) present = !strcmp(gs->g[i].task, task->name);
        if (present) { keys[n] = task->name; titles[n++] = task->title; }
    }
    for (int i = 0; i < gs->n && n < LRA_MAX_COLUMNS; i++) {
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = strcmp(keys[k], gs->g[i].task) == 0;
        if (!seen) { keys[n] = gs->g[i].task; titles[n++] = gs->g[i].task; }
    }
    return n;
}

static lra_estimate estimate(const group *g, int last) { return lra_estimate_mean(accuracies(g, last), g->n); }

/* "31.30 [25.21, 37.39] (n=3)"; "29.20 (n=1)†" where no interval or fewer than 3 seeds */
static void ci_cell(char *buf, size_t n, lra_estimate e, int *few) {
    const double h = lra_half95(e);
    const char *mark = e.n < 3 ? "†" : "";
    *few |= e.n < 3;
    if (isnan(h)) snprintf(buf, n, "%.2f (n=%d)%s", e.mean, e.n, mark);
    else /* an accuracy's interval shown within [0, 100], where t's symmetric one can reach past */
        snprintf(buf, n, "%.2f [%.2f, %.2f] (n=%d)%s", e.mean, fmax(e.mean - h, 0), fmin(e.mean + h, 100), e.n, mark);
}

/* "**-12.50 [-15.00, -10.00]** (paired, n=3)": bold where the interval excludes 0 */
static void diff_cell(char *buf, size_t n, lra_estimate d, int *significant) {
    const double h = lra_half95(d);
    const char *how = d.paired ? "paired" : "unpaired";
    if (isnan(h)) { snprintf(buf, n, "%+.2f (%s, n=%d: no interval)", d.mean, how, d.n); return; }
    const int sig = d.mean - h > 0 || d.mean + h < 0;
    *significant += sig;
    snprintf(buf, n, "%s%+.2f [%+.2f, %+.2f]%s (%s, n=%d)", sig ? "**" : "", d.mean, d.mean - h, d.mean + h,
             sig ? "**" : "", how, d.n);
}

static lra_estimate difference(const group *g, const group *b, int last) {
    return lra_estimate_diff(accuracies(g, last), g->seed, g->n, accuracies(b, last), b->seed, b->n);
}

/* The LRA tasks (those in its average) that every row has: their column indexes in cols, and the
 * average's title; returns how many (an average needs two) */
static int common_tasks(const groups *gs, const int *rows, int nr, const char **keys, int nc, int *cols, char *title,
                        size_t tn) {
    int n = 0, in_average = 0;
    for (int t = 0; t < lra_task_count(); t++) in_average += lra_task_at(t)->in_average;
    for (int t = 0; t < nc; t++) {
        const lra_task_i *task = lra_task_find(keys[t]);
        int all = task && task->in_average && nr > 0;
        for (int r = 0; r < nr && all; r++)
            all = lra_find_group((groups *)gs, keys[t], gs->g[rows[r]].backend, gs->g[rows[r]].profile, 0) != NULL;
        if (all) cols[n++] = t;
    }
    if (n == in_average) snprintf(title, tn, "LRA avg");
    else if (n >= 2) {
        size_t used = (size_t)snprintf(title, tn, "Avg (");
        for (int k = 0; k < n && used < tn; k++)
            used += (size_t)snprintf(title + used, tn - used, "%s%s", k ? ", " : "", lra_task_find(keys[cols[k]])->title);
        if (used < tn) snprintf(title + used, tn - used, ")");
    } else snprintf(title, tn, "Avg");
    return n >= 2 ? n : 0;
}

/* "| backend | profile | ListOps | ... | Avg |" and its rule */
static void table_head(const char **titles, int nc, const char *avg_title) {
    printf("| backend | profile |");
    for (int t = 0; t < nc; t++) printf(" %s |", titles[t]);
    printf(" %s |\n|---|---|", avg_title);
    for (int t = 0; t <= nc; t++) printf("---|");
    printf("\n");
}

static void print_accuracy(const groups *gs, const int *rows, int nr, int last) {
    const char *keys[LRA_MAX_COLUMNS], *titles[LRA_MAX_COLUMNS];
    const int nc = lra_columns(gs, keys, titles);
    int cols[LRA_MAX_COLUMNS], few = 0;
    char avg_title[256], c[128];
    const int na = common_tasks(gs, rows, nr, keys, nc, cols, avg_title, sizeof avg_title);
    printf("## Test accuracy (%%), %s: mean [95%% CI] over n seeds\n\n",
           last ? "at the last training step"
                : "at the best-validation step (the field's protocol; a report without model selection: its last step)");
    table_head(titles, nc, avg_title);
    for (int r = 0; r < nr; r++) {
        const group *k = &gs->g[rows[r]];
        printf("| %s | %s |", k->backend, k->profile);
        lra_estimate parts[LRA_MAX_COLUMNS];
        for (int t = 0; t < nc; t++) {
            const group *g = lra_find_group((groups *)gs, keys[t], k->backend, k->profile, 0);
            if (g) ci_cell(c, sizeof c, estimate(g, last), &few);
            printf(" %s |", g ? c : "-");
        }
        for (int i = 0; i < na; i++)
            parts[i] = estimate(lra_find_group((groups *)gs, keys[cols[i]], k->backend, k->profile, 0), last);
        if (na) ci_cell(c, sizeof c, lra_estimate_average(parts, na), &few);
        printf(" %s |\n", na ? c : "-");
    }
    printf("| Transformer (published, LRA paper; not measured here) | official |");
    double published_sum = 0;
    for (int t = 0; t < nc; t++) {
        const lra_task_i *task = lra_task_find(keys[t]);
        if (!task) printf(" - |");
        else if (task->not_lra) printf(" - |"); /* not in the paper */
        else isnan(task->published) ? printf(" FAIL |") : printf(" %.2f |", task->published);
    }
    for (int i = 0; i < na; i++) published_sum += lra_task_find(keys[cols[i]])->published;
    na ? printf(" %.2f |\n\n", published_sum / na) : printf(" - |\n\n");
    printf("The interval: mean +- t(0.975, n-1) x sd / sqrt(n) over the seeds (Student's t).\n");
    if (few) printf("† fewer than 3 seeds: n=1 has no interval, n=2 a very wide one.\n");
    if (na) printf("%s: the mean of the rows' task means over the LRA tasks every row has; its interval combines the "
                   "tasks' (Welch-Satterthwaite).\n", avg_title);
    else printf("Avg: not shown: fewer than two LRA tasks are in every row (an average over different tasks per row "
                "would compare nothing).\n");
}

/* Each row's difference to the baseline backend, task by task (same profile) */
static void print_differences(const groups *gs, const int *rows, int nr, int last, const char *base) {
    const char *keys[LRA_MAX_COLUMNS], *titles[LRA_MAX_COLUMNS];
    const int nc = lra_columns(gs, keys, titles);
    int cols[LRA_MAX_COLUMNS], significant = 0;
    char avg_title[256], c[160];
    const int na = common_tasks(gs, rows, nr, keys, nc, cols, avg_title, sizeof avg_title);
    printf("\n## Difference to %s, test accuracy in points, %s: mean [95%% CI]\n\n", base,
           last ? "at the last step" : "at the best-validation step");
    table_head(titles, nc, avg_title);
    for (int r = 0; r < nr; r++) {
        const group *k = &gs->g[rows[r]];
        if (!strcmp(k->backend, base)) continue;
        printf("| %s | %s |", k->backend, k->profile);
        lra_estimate parts[LRA_MAX_COLUMNS];
        int have = 0;
        for (int t = 0; t < nc; t++) {
            const group *g = lra_find_group((groups *)gs, keys[t], k->backend, k->profile, 0);
            const group *b = lra_find_group((groups *)gs, keys[t], base, k->profile, 0);
            if (g && b) diff_cell(c, sizeof c, difference(g, b, last), &significant);
            printf(" %s |", g && b ? c : "-");
        }
        for (int i = 0; i < na; i++) {
            const group *g = lra_find_group((groups *)gs, keys[cols[i]], k->backend, k->profile, 0);
            const group *b = lra_find_group((groups *)gs, keys[cols[i]], base, k->profile, 0);
            if (g && b) parts[have++] = difference(g, b, last);
        }
        if (na && have == na) diff_cell(c, sizeof c, lra_estimate_average(parts, na), &significant);
        printf(" %s |\n", na && have == na ? c : "-");
    }
    printf("\nPaired where two or more seeds match (the same seed: the same data order and initialisation): the mean "
           "of the per-seed differences +- t(0.975, pairs-1) x sd / sqrt(pairs); else unpaired (Welch). **Bold**: the "
           "interval excludes 0 (%d here). Each cell is its own test: with many cells, expect about 1 in 20 bold by "
           "chance where no difference is.\n", significant);
}

/* a before b in a grid: the first varying key that differs decides, as numbers where both are */
static int grid_before(char a[][32], char b[][32], const int *vary, int nk) {
    for (int k = 0; k < nk; k++) {
        if (!vary[k] || !strcmp(a[k], b[k])) continue;
        char *ea, *eb;
        const double x = strtod(a[k], &ea), y = strtod(b[k], &eb);
        if (!*ea && !*eb && ea != a[k] && eb != b[k]) return x < y;
        return strcmp(a[k], b[k]) < 0;
    }
    return 0;
}

/* One table per family of rows that differ only in --attn-opt (a grid: mita[m=16,k=64], ...),
 * by the options the runs resolved: long form, and rows x columns where exactly two vary. */
static void print_grids(const groups *gs, int last, const char *base) {
    enum { MAXK = 12 };
    int *done = calloc((size_t)gs->n + 1, sizeof(int));
    for (int i = 0; i < gs->n; i++) {
        if (done[i]) continue;
        const group *first = &gs->g[i];
        const size_t bl = strcspn(first->backend, "[");
        int member[64], nm = 0;
        for (int j = i; j < gs->n && nm < 64; j++) {
            const group *g = &gs->g[j];
            if (strcmp(g->task, first->task) || strcmp(g->profile, first->profile) || strncmp(g->backend, first->backend, bl) ||
                (g->backend[bl] && g->backend[bl] != '[') || !g->options[0])
                continue;
            member[nm++] = j;
            done[j] = 1;
        }
        if (nm < 2) continue;
        /* the keys whose values differ between members */
        char key[MAXK][32], val[64][MAXK][32];
        int nk = 0, vary[MAXK] = {0};
        for (int m = 0; m < nm; m++) {
            char opts[200];
            snprintf(opts, sizeof opts, "%s", gs->g[member[m]].options);
            char *save = NULL;
            for (char *kv = strtok_r(opts, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                if (!eq) continue;
                *eq = '\0';
                int k = 0;
                while (k < nk && strcmp(key[k], kv)) k++;
                if (k == nk && nk < MAXK) snprintf(key[nk++], sizeof key[0], "%s", kv);
                if (k < nk) snprintf(val[m][k], sizeof val[m][k], "%s", eq + 1);
            }
        }
        for (int k = 0; k < nk; k++)
            for (int m = 1; m < nm; m++) vary[k] |= strcmp(val[m][k], val[0][k]) != 0;
        for (int a = 1; a < nm; a++) /* by the varying values, numbers as numbers: m=16 before m=64 */
            for (int z = a; z > 0 && grid_before(val[z], val[z - 1], vary, nk); z--) {
                char tmp[MAXK][32];
                memcpy(tmp, val[z], sizeof tmp);
                memcpy(val[z], val[z - 1], sizeof tmp);
                memcpy(val[z - 1], tmp, sizeof tmp);
                int t = member[z]; member[z] = member[z - 1]; member[z - 1] = t;
            }
        printf("\n## Grid: %.*s on %s (%s), test accuracy (%%) %s: mean [95%% CI]\n\n|", (int)bl, first->backend,
               first->task, first->profile, last ? "at the last step" : "at the best-validation step");
        int varying[MAXK], nv = 0, few = 0, significant = 0;
        for (int k = 0; k < nk; k++)
            if (vary[k]) { varying[nv++] = k; printf(" %s |", key[k]); }
        const group *b = lra_find_group((groups *)gs, first->task, base, first->profile, 0);
        printf(" test accuracy |%s\n|", b ? " difference to the baseline |" : "");
        for (int k = 0; k < nv + 1 + (b != NULL); k++) printf("---|");
        printf("\n");
        char c[160];
        for (int m = 0; m < nm; m++) {
            const group *g = &gs->g[member[m]];
            printf("|");
            for (int k = 0; k < nv; k++) printf(" %s |", val[m][varying[k]]);
            ci_cell(c, sizeof c, estimate(g, last), &few);
            printf(" %s |", c);
            if (b) {
                diff_cell(c, sizeof c, difference(g, b, last), &significant);
                printf(" %s |", c);
            }
            printf("\n");
        }
        if (nv == 2) { /* rows: the first varying key's values, columns: the second's */
            const int kr = varying[0], kc = varying[1];
            int rv[64], cv[64], nr = 0, ncol = 0;
            for (int m = 0; m < nm; m++) {
                int seen = 0;
                for (int x = 0; x < nr && !seen; x++) seen = !strcmp(val[rv[x]][kr], val[m][kr]);
                if (!seen) rv[nr++] = m;
                seen = 0;
                for (int x = 0; x < ncol && !seen; x++) seen = !strcmp(val[cv[x]][kc], val[m][kc]);
                if (!seen) cv[ncol++] = m;
            }
            printf("\n| %s \\ %s |", key[kr], key[kc]);
            for (int x = 0; x < ncol; x++) printf(" %s=%s |", key[kc], val[cv[x]][kc]);
            printf("\n|---|");
            for (int x = 0; x < ncol; x++) printf("---|");
            printf("\n");
            for (int y = 0; y < nr; y++) {
                printf("| %s=%s |", key[kr], val[rv[y]][kr]);
                for (int x = 0; x < ncol; x++) {
                    int at = -1;
                    for (int m = 0; m < nm && at < 0; m++)
                        if (!strcmp(val[m][kr], val[rv[y]][kr]) && !strcmp(val[m][kc], val[cv[x]][kc])) at = m;
                    if (at >= 0) ci_cell(c, sizeof c, estimate(&gs->g[member[at]], last), &few);
                    printf(" %s |", at >= 0 ? c : "-");
                }
                printf("\n");
            }
        }
        if (b) printf("\nDifference to %s as in the table above (paired where seeds match; **bold**: the interval "
                      "excludes 0).\n", base);
        if (few) printf("† fewer than 3 seeds.\n");
    }
    free(done);
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

/* a note for each row whose seeds were computed under more than one numerics version */
static void print_numerics(const groups *gs) {
    for (int i = 0; i < gs->n; i++) {
        const group *g = &gs->g[i];
        if (g->numerics_lo != g->numerics_hi)
            printf("Note: %s/%s/%s pools seeds computed under numerics %d to %d (docs/manual.md, \"Checkpoints and resume\").\n", g->task,
                   g->backend, g->profile, g->numerics_lo, g->numerics_hi);
    }
}

static void print_markdown(const groups *gs, int select, const char *base) {
    int *rows = malloc(sizeof(int) * (size_t)(gs->n + 1)), nr = row_keys(gs, rows);
    for (int last = 0; last <= 1; last++) {
        if ((last ? SELECT_BEST : SELECT_LAST) == select) continue;
        if (last && select == SELECT_BOTH) printf("\n");
        print_accuracy(gs, rows, nr, last);
        if (base) print_differences(gs, rows, nr, last, base);
        print_grids(gs, last, base ? base : "");
    }
    print_numerics(gs);
    const int target = !isnan(gs->target) || gs->ntargets > 0;
    char tcol[64] = "";
    if (target && gs->ntargets == 0) snprintf(tcol, sizeof tcol, " wall time to val >= %.2f%% |", 100 * gs->target);
    else if (target) snprintf(tcol, sizeof tcol, " wall time to the task's target |");
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
    double wall = 0, core = 0;
    int runs = 0;
    for (int i = 0; i < gs->n; i++) wall += gs->g[i].wall_s, core += gs->g[i].core_s, runs += gs->g[i].n;
    printf("Compute: %d runs, %.1f wall hours, %.1f core-hours (each run's wall time over all its sittings, times the "
           "processes and threads its report records: a resumed run counts its last sitting's).\n", runs, wall / 3600,
           core / 3600);
    if (target)
        printf("Wall time: from the run's start (data loading, training and its periodic evaluations) to the first "
               "evaluation at or above the target.\n");
    if (gs->ntargets > 0) {
        printf("Targets (validation accuracy):");
        for (int i = 0; i < gs->ntargets; i++) printf(" %s %.2f%%,", gs->target_task[i], 100 * gs->target_of[i]);
        if (isnan(gs->target)) printf(" no other task.\n");
        else printf(" every other task %.2f%%.\n", 100 * gs->target);
    }
    free(rows);
}

static void print_csv(const groups *gs, const char *base) {
    printf("task,backend,profile,seeds,test_accuracy_mean,test_accuracy_std,train_steps_per_s,train_tokens_per_s,"
           "eval_tokens_per_s,peak_rss_mb,parameters,parameters_vs_full,last_step_test_accuracy_mean,"
           "last_step_test_accuracy_std,seconds_to_target,target_reached,test_accuracy_ci95_low,test_accuracy_ci95_high,"
           "baseline_backend,diff_vs_baseline,diff_ci95_low,diff_ci95_high,diff_method,diff_n,diff_significant,"
           "backend_options\n");
    for (int i = 0; i < gs->n; i++) {
        const group *g = &gs->g[i];
        const group *f = lra_find_group((groups *)gs, g->task, "full", g->profile, 0);
        char rel[32] = "", tt[48] = "", ci[64] = ",", diff[160] = ",,,,,,";
        if (f && f->params > 0) snprintf(rel, sizeof rel, "%.4f", g->params / f->params);
        double mean;
        const int reached = time_to_target_mean(g, &mean);
        if (reached) snprintf(tt, sizeof tt, "%.1f,%d", mean, reached);
        else snprintf(tt, sizeof tt, isnan(gs->target) ? "," : ",0");
        const lra_estimate e = estimate(g, 0);
        const double h = lra_half95(e);
        if (!isnan(h)) snprintf(ci, sizeof ci, "%.4f,%.4f", e.mean - h, e.mean + h);
        const group *b = base && strcmp(g->backend, base) ? lra_find_group((groups *)gs, g->task, base, g->profile, 0) : NULL;
        if (b) {
            const lra_estimate d = difference(g, b, 0);
            const double dh = lra_half95(d);
            if (isnan(dh)) snprintf(diff, sizeof diff, "%s,%.4f,,,%s,%d,", base, d.mean, d.paired ? "paired" : "unpaired", d.n);
            else snprintf(diff, sizeof diff, "%s,%.4f,%.4f,%.4f,%s,%d,%d", base, d.mean, d.mean - dh, d.mean + dh,
                          d.paired ? "paired" : "unpaired", d.n, d.mean - dh > 0 || d.mean + dh < 0);
        }
        printf("%s,%s,%s,%d,%.4f,%.4f,%.4f,%.1f,%.1f,%.1f,%.0f,%s,%.4f,%.4f,%s,%s,%s,\"%s\"\n", g->task, g->backend, g->profile,
               g->n, lra_mean(g->acc, g->n), lra_stdev(g->acc, g->n), g->steps_s, g->tokens_s, g->eval_tokens_s, g->rss_mb,
               g->params, rel, lra_mean(g->acc_last, g->n), lra_stdev(g->acc_last, g->n), tt, ci, diff, g->options);
    }
}

/* The gate's limits, in percent of the baseline; NAN: not checked */
typedef struct {
    double accuracy, slowdown, memory;
    int allow_missing;
} gate;

/* 1 when the gate fails: a group whose test accuracy fell, tokens/s fell or peak RSS grew by more
 * than its limit, or a baseline group with no completed current report (unless allow_missing).
 * Says what it checked either way, so a quiet gate is told from one that compared nothing. */
static int gate_fails(const groups *cur, const groups *base, const gate *lim) {
    int checked = 0, regressed = 0, missing = 0;
    for (int i = 0; i < base->n; i++) {
        const group *b = &base->g[i];
        const group *g = lra_find_group((groups *)cur, b->task, b->backend, b->profile, 0);
        if (!g) {
            fprintf(stderr, "%s: %s/%s/%s is in the baseline and has no completed report here (absent, unfinished or "
                    "diverged)\n", lim->allow_missing ? "note" : "missing", b->task, b->backend, b->profile);
            missing++;
            continue;
        }
        checked++;
        int found = 0;
        const double ba = lra_mean(b->acc, b->n), ca = lra_mean(g->acc, g->n);
        if (!isnan(lim->accuracy) && ba > 0 && 100 * (ba - ca) / ba > lim->accuracy) {
            fprintf(stderr, "regression: %s/%s/%s test accuracy %.2f%% -> %.2f%% (%.1f%% lower, limit %g%%)\n", g->task,
                    g->backend, g->profile, ba, ca, 100 * (ba - ca) / ba, lim->accuracy);
            found = 1;
        }
        if (!isnan(lim->slowdown) && b->tokens_s > 0 && 100 * (b->tokens_s - g->tokens_s) / b->tokens_s > lim->slowdown) {
            fprintf(stderr, "slowdown: %s/%s/%s training tokens/s %.0f -> %.0f (%.1f%% lower, limit %g%%)\n", g->task,
                    g->backend, g->profile, b->tokens_s, g->tokens_s, 100 * (b->tokens_s - g->tokens_s) / b->tokens_s,
                    lim->slowdown);
            found = 1;
        }
        if (!isnan(lim->memory) && b->rss_mb > 0 && 100 * (g->rss_mb - b->rss_mb) / b->rss_mb > lim->memory) {
            fprintf(stderr, "memory: %s/%s/%s peak RSS %.0f MB -> %.0f MB (%.1f%% more, limit %g%%)\n", g->task, g->backend,
                    g->profile, b->rss_mb, g->rss_mb, 100 * (g->rss_mb - b->rss_mb) / b->rss_mb, lim->memory);
            found = 1;
        }
        regressed += found;
    }
    const int fails = regressed > 0 || (missing > 0 && !lim->allow_missing) || checked == 0;
    fprintf(stderr, "lra-bench compare: %d baseline group%s checked, %d failed their limits, %d missing%s: %s\n", checked,
            checked == 1 ? "" : "s", regressed, missing, lim->allow_missing && missing ? " (allowed)" : "",
            fails ? "the gate fails (exit 3)" : "the gate passes");
    return fails;
}

/* "--name=P": a percentage >= 0 into *out; 0 when a is not that option; -1 (said) when malformed */
static int percent_opt(const char *a, const char *name, double *out) {
    const size_t n = strlen(name);
    if (strncmp(a, name, n) != 0 || a[n] != '=') return 0;
    char *end;
    *out = strtod(a + n + 1, &end);
    if (!a[n + 1] || *end || !(*out >= 0)) {
        fprintf(stderr, "lra-bench compare: %s='%s' must be a percentage >= 0\n", name, a + n + 1);
        return -1;
    }
    return 1;
}

/* --target=ACC, or per task: --target=listops=0.36,text=0.65 (chance differs: 10% on ListOps, 50%
 * on Text), or both: 0.5,listops=0.36 (every other task 0.5). Accuracies in (0, 1]. */
static lra_status parse_targets(groups *gs, const char *spec) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '='), *end;
        const char *num = eq ? eq + 1 : item;
        const double v = strtod(num, &end);
        if (!*num || *end || !(v > 0 && v <= 1)) {
            fprintf(stderr, "lra-bench compare: --target: '%s' is not a validation accuracy in (0, 1], e.g. 0.36 or "
                            "listops=0.36,text=0.65\n", num);
            return LRA_ERR_USAGE;
        }
        if (!eq) { gs->target = v; continue; }
        *eq = '\0';
        if (!lra_task_find(item) || gs->ntargets == 8 || strlen(item) >= sizeof gs->target_task[0]) {
            char names[256];
            lra_task_names(names, sizeof names);
            fprintf(stderr, "lra-bench compare: --target: unknown task '%s' (tasks: %s), or more than 8\n", item, names);
            return LRA_ERR_USAGE;
        }
        snprintf(gs->target_task[gs->ntargets], sizeof gs->target_task[0], "%s", item);
        gs->target_of[gs->ntargets++] = v;
    }
    return LRA_OK;
}

int lra_compare_main(int argc, char **argv) {
    int csv = 0, nfiles = 0, nbase = 0, select = SELECT_BEST;
    groups cur = {.target = NAN}, base = {.target = NAN}; /* targets only for the current reports */
    gate lim = {NAN, NAN, NAN, 0};
    int got;
    const char *base_backend = NULL; /* NULL: full, where there is a full row */
    char **files = calloc((size_t)argc + 1, sizeof(char *)), *base_list = NULL;
    char *base_files[256];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--format=csv") == 0) csv = 1;
        else if (strcmp(a, "--format=markdown") == 0) csv = 0;
        else if (strncmp(a, "--baseline=", 11) == 0) base_list = argv[i] + 11;
        else if (strncmp(a, "--baseline-backend=", 19) == 0) base_backend = a + 19;
        else if (strcmp(a, "--select=best") == 0) select = SELECT_BEST;
        else if (strcmp(a, "--select=last") == 0) select = SELECT_LAST;
        else if (strcmp(a, "--select=both") == 0) select = SELECT_BOTH;
        else if (strncmp(a, "--target=", 9) == 0) {
            if (parse_targets(&cur, a + 9) != LRA_OK) {
                free(files);
                return 2;
            }
        }
        else if (!strcmp(a, "--allow-missing")) lim.allow_missing = 1;
        else if ((got = percent_opt(a, "--max-regression", &lim.accuracy)) || (got = percent_opt(a, "--max-slowdown", &lim.slowdown)) ||
                 (got = percent_opt(a, "--max-memory-growth", &lim.memory))) {
            if (got < 0) { free(files); return 2; }
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "lra-bench compare: unknown option '%s' (--format=markdown|csv, --select=best|last|both, "
                            "--target=ACC, --baseline-backend=NAME|none, --baseline=FILES, --max-regression=P, --max-slowdown=P, "
                            "--max-memory-growth=P, --allow-missing)\n", a);
            free(files);
            return 2;
        } else files[nfiles++] = argv[i];
    }
    if (!nfiles) {
        fprintf(stderr, "lra-bench compare: no report files given (usage: lra-bench compare FILES...)\n");
        free(files);
        return 2;
    }
    const int limits = !isnan(lim.accuracy) || !isnan(lim.slowdown) || !isnan(lim.memory);
    if ((base_list != NULL) != limits || (lim.allow_missing && !base_list)) {
        fprintf(stderr, "lra-bench compare: --baseline goes with at least one of --max-regression (test accuracy), "
                        "--max-slowdown (training tokens/s) and --max-memory-growth (peak RSS), and they with it\n");
        free(files);
        return 2;
    }
    /* FILE,FILE,... where an item may be a pattern, which compare expands itself: the shell does
     * not expand --baseline=base/STAR.json, the pattern being part of one word */
    char *save = NULL;
    glob_t found = {0};
    int globbed = 0;
    for (char *t = base_list ? strtok_r(base_list, ",", &save) : NULL; t && nbase < 256; t = strtok_r(NULL, ",", &save)) {
        /* a file that exists is itself, even with pattern characters in its name (the matrix's
         * image[fashion-mnist]-full-ci-seed0.json) */
        if (!strpbrk(t, "*?[") || access(t, F_OK) == 0) { base_files[nbase++] = t; continue; }
        const size_t had = found.gl_pathc;
        const int grc = glob(t, globbed ? GLOB_APPEND : 0, NULL, &found);
        globbed = 1;
        if (grc != 0 || found.gl_pathc == had) {
            fprintf(stderr, "lra-bench compare: --baseline: '%s' matches no file\n", t);
            globfree(&found);
            free(files);
            return 2;
        }
        for (size_t k = had; k < found.gl_pathc && nbase < 256; k++) base_files[nbase++] = found.gl_pathv[k];
    }
    char err[LRA_ERR_LEN];
    int rc = 0;
    lra_status st = lra_groups_load(&cur, files, nfiles, err);
    if (st == LRA_OK && base_list) st = lra_groups_load(&base, base_files, nbase, err);
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench compare: %s\n", err);
        rc = 1;
    } else if (!cur.n && !base_list) {
        fprintf(stderr, "lra-bench compare: no completed report among the files given\n");
        rc = 1;
    } else if (!cur.n) { /* a gate over runs that all diverged or stopped: every baseline group is missing */
        fprintf(stderr, "lra-bench compare: no completed report among the files given\n");
        if (gate_fails(&cur, &base, &lim)) rc = 3;
    } else {
        const char *against = base_backend ? base_backend : "full";
        int have_base = 0;
        for (int i = 0; i < cur.n; i++) have_base |= !strcmp(cur.g[i].backend, against);
        if (base_backend && strcmp(base_backend, "none") && !have_base) {
            fprintf(stderr, "lra-bench compare: --baseline-backend=%s: no completed %s report among the files\n", base_backend,
                    base_backend);
            rc = 2;
        } else if (csv) print_csv(&cur, have_base ? against : NULL);
        else print_markdown(&cur, select, have_base ? against : NULL);
        if (rc == 0 && base_list && gate_fails(&cur, &base, &lim)) rc = 3;
    }
    free(cur.g);
    free(base.g);
    if (globbed) globfree(&found);
    free(files);
    return rc;
}
