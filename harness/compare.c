/* compare.c - `lra-bench compare FILES...`: comparison tables from reports.
 *
 * Reports are grouped by (task, backend, profile); several seeds of one group give mean and
 * sample standard deviation. Tables: test accuracy per backend x task with the LRA average over
 * the five tasks (only when all five are there) and the LRA paper's Transformer row, marked as
 * published; throughput and memory; the official fair-comparison rule (at most 10% more
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

#include "report.h"

const char *const lra_task_order[LRA_NTASKS] = {"listops", "text", "retrieval", "image", "pathfinder", "pathx"};
const char *const lra_task_titles[LRA_NTASKS] = {"ListOps", "Text", "Retrieval", "Image", "Pathfinder", "Path-X"};
/* LRA paper, Table 1: Transformer (Path-X: FAIL, not in the average) */
static const double published[LRA_NTASKS] = {36.37, 64.27, 57.46, 42.44, 71.40, NAN};
static const double published_avg = 54.39;

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

/* Reads one report into the groups; only completed runs count (others are named on stderr). */
static lra_status add_report(groups *gs, const char *path, char *err) {
    lra_status st;
    cJSON *j = lra_read_json(path, &st, err);
    if (!j) return st;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "run") != 0) {
        lra_fail(err, LRA_ERR_FORMAT, "%s: a '%s' report; compare reads the reports of training runs", path, kind->valuestring);
        cJSON_Delete(j);
        return LRA_ERR_FORMAT;
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
        fprintf(stderr, "lra-bench compare: %s: status '%s', left out of the tables\n", path, status->valuestring);
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
    if (!(acc->valuedouble >= 0 && acc->valuedouble <= 1)) { /* the message before the delete (fuzz_report) */
        lra_fail(err, LRA_ERR_FORMAT, "%s: test accuracy %g is not in [0, 1]", path, acc->valuedouble);
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
    group *g = lra_find_group(gs, task_key, backend->valuestring, profile->valuestring, 1);
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
    g->acc[g->n++] = 100.0 * acc->valuedouble;
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
static double stdev(const double *x, int n) { /* sample standard deviation */
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

static void cell(char *buf, size_t n, const group *g) {
    if (!g) snprintf(buf, n, "-");
    else if (g->n == 1) snprintf(buf, n, "%.2f", g->acc[0]);
    else snprintf(buf, n, "%.2f ± %.2f (n=%d)", lra_mean(g->acc, g->n), stdev(g->acc, g->n), g->n);
}

static void print_markdown(const groups *gs) {
    int *rows = malloc(sizeof(int) * (size_t)(gs->n + 1)), nr = row_keys(gs, rows);
    printf("## Test accuracy (%%)\n\n| backend | profile |");
    for (int t = 0; t < LRA_NTASKS; t++) printf(" %s |", lra_task_titles[t]);
    printf(" Avg |\n|---|---|");
    for (int t = 0; t <= LRA_NTASKS; t++) printf("---|");
    printf("\n");
    for (int r = 0; r < nr; r++) {
        const group *k = &gs->g[rows[r]];
        printf("| %s | %s |", k->backend, k->profile);
        double sum = 0;
        int have = 0;
        for (int t = 0; t < LRA_NTASKS; t++) {
            const group *g = lra_find_group((groups *)gs, lra_task_order[t], k->backend, k->profile, 0);
            char c[64];
            cell(c, sizeof c, g);
            printf(" %s |", c);
            if (g && t < 5) { sum += lra_mean(g->acc, g->n); have++; }
        }
        if (have == 5) printf(" %.2f |\n", sum / 5);
        else printf(" - |\n");
    }
    printf("| Transformer (published, LRA paper; not measured here) | official |");
    for (int t = 0; t < LRA_NTASKS; t++) isnan(published[t]) ? printf(" FAIL |") : printf(" %.2f |", published[t]);
    printf(" %.2f |\n\nAvg: the mean over ListOps, Text, Retrieval, Image and Pathfinder, shown when all five are present.\n",
           published_avg);

    printf("\n## Throughput and memory (means over seeds)\n\n"
           "| task | backend | profile | seeds | train steps/s | train tokens/s | eval tokens/s | peak RSS MB | parameters | vs full |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    int flagged = 0;
    for (int i = 0; i < gs->n; i++) {
        const group *g = &gs->g[i];
        const group *f = lra_find_group((groups *)gs, g->task, "full", g->profile, 0);
        char rel[48] = "-";
        if (f && f->params > 0) {
            double ratio = g->params / f->params;
            int over = ratio > 1.10;
            flagged += over;
            snprintf(rel, sizeof rel, "%+.1f%%%s", 100 * (ratio - 1), over ? " **over 10%**" : "");
        }
        printf("| %s | %s | %s | %d | %.3f | %.0f | %.0f | %.0f | %.0f | %s |\n", g->task, g->backend, g->profile, g->n,
               g->steps_s, g->tokens_s, g->eval_tokens_s, g->rss_mb, g->params, rel);
    }
    printf("\nParameter rule (official LRA README): at most 10%% more parameters than full on the same task.%s\n",
           flagged ? " Rows marked **over 10%** break it." : " No row breaks it.");
    free(rows);
}

static void print_csv(const groups *gs) {
    printf("task,backend,profile,seeds,test_accuracy_mean,test_accuracy_std,train_steps_per_s,train_tokens_per_s,"
           "eval_tokens_per_s,peak_rss_mb,parameters,parameters_vs_full\n");
    for (int i = 0; i < gs->n; i++) {
        const group *g = &gs->g[i];
        const group *f = lra_find_group((groups *)gs, g->task, "full", g->profile, 0);
        char rel[32] = "";
        if (f && f->params > 0) snprintf(rel, sizeof rel, "%.4f", g->params / f->params);
        printf("%s,%s,%s,%d,%.4f,%.4f,%.4f,%.1f,%.1f,%.1f,%.0f,%s\n", g->task, g->backend, g->profile, g->n,
               lra_mean(g->acc, g->n), stdev(g->acc, g->n), g->steps_s, g->tokens_s, g->eval_tokens_s, g->rss_mb, g->params, rel);
    }
}

/* 1 when any group regressed by more than max_pct against the baseline */
static int regressions(const groups *cur, const groups *base, double max_pct) {
    int found = 0;
    for (int i = 0; i < cur->n; i++) {
        const group *g = &cur->g[i];
        const group *b = lra_find_group((groups *)base, g->task, g->backend, g->profile, 0);
        if (!b) continue;
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
    }
    return found;
}

int lra_compare_main(int argc, char **argv) {
    int csv = 0, nfiles = 0, nbase = 0;
    double max_pct = NAN;
    char **files = calloc((size_t)argc + 1, sizeof(char *)), *base_list = NULL;
    char *base_files[256];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--format=csv") == 0) csv = 1;
        else if (strcmp(a, "--format=markdown") == 0) csv = 0;
        else if (strncmp(a, "--baseline=", 11) == 0) base_list = argv[i] + 11;
        else if (strncmp(a, "--max-regression=", 17) == 0) {
            char *end;
            max_pct = strtod(a + 17, &end);
            if (!a[17] || *end || !(max_pct >= 0)) {
                fprintf(stderr, "lra-bench compare: --max-regression='%s' must be a percentage >= 0\n", a + 17);
                free(files);
                return 2;
            }
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "lra-bench compare: unknown option '%s' (--format=markdown|csv, --baseline=FILES, "
                            "--max-regression=P)\n", a);
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
        else print_markdown(&cur);
        if (base_list && regressions(&cur, &base, max_pct)) rc = 3;
    }
    free(cur.g);
    free(base.g);
    free(files);
    return rc;
}
