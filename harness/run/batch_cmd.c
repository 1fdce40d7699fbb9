/* batch.c - `lra-bench batch FILE`: a list of runs, run to the end while nobody watches.
 *
 * FILE holds one command per line: the options of `lra-bench run` (a leading `lra-bench` or
 * `lra-bench run` is allowed), with --seeds and --attn-opt lists naming several runs
 * (runlist.h); `#` starts a comment. Each run's report path (its --out, or the default hashed
 * name) is its identity: the batch looks at what is there and does what is left.
 *
 *   no report                                  start the run
 *   completed or diverged                      nothing: that run is done
 *   starting, running or interrupted, and
 *     its lock held                            nothing: another process runs it now
 *     its checkpoint there                     resume it (exactly: resume_cmd.h)
 *     no checkpoint                            start it again over the stale report
 *
 * A run's lock (run.c, fs.h) is let go by the kernel when its process dies, so a batch killed at
 * any moment, SIGKILL included, and started again, continues: the killed run resumes from its
 * last checkpoint or, with none yet, starts again. Two batches on one file run different runs.
 * Every line is checked before the first run starts, so a typo on line 40 is found at once, not
 * after the first 39 runs. */
#define _POSIX_C_SOURCE 200809L
#include "batch_cmd.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../../common/fs.h"
#include "../../common/json_file.h"
#include "config.h"
#include "resume_cmd.h"
#include "run.h"
#include "runlist.h"

enum { MAX_LINE = 8192, MAX_WORDS = 128, MAX_OVERRIDES = 8 };

typedef struct {
    int line;           /* in FILE */
    lra_run_args args;  /* owned */
    cJSON *identity;    /* owned: the options that make its numbers (config.h), against a report's */
    char report[4200];  /* the run's report path: its identity here */
    char ckpt[4200];
    char what[512];     /* task/backend seed N (options), for the log */
    char group[80];     /* task/backend: runs whose pace predicts this one's */
    int steps;          /* its training steps */
} batch_run;

typedef struct {
    batch_run *run; /* (n) */
    int n, cap;
} batch;

typedef enum { TO_START, TO_RESUME, TO_RESTART, DONE, BUSY, FOREIGN } run_state_kind;

static const char *const state_names[] = {"start", "resume", "start again", "done", "running elsewhere", "another run's"};

static void batch_free(batch *b) {
    for (int i = 0; i < b->n; i++) {
        lra_run_args_free(&b->run[i].args);
        cJSON_Delete(b->run[i].identity);
    }
    free(b->run);
}

static lra_status push(batch *b, int line, lra_run_args args, const char *file, char *err) {
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 16;
        batch_run *r = realloc(b->run, (size_t)cap * sizeof *r);
        if (!r) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
        b->run = r;
        b->cap = cap;
    }
    batch_run *r = &b->run[b->n++];
    memset(r, 0, sizeof *r);
    r->line = line;
    r->args = args;
    lra_config c;
    int help = 0;
    char why[LRA_ERR_LEN];
    if (lra_config_parse(&c, args.argc, args.argv, &help, why) != LRA_OK || help)
        return lra_fail(err, LRA_ERR_USAGE, "%s:%d: %s", file, line, help ? "--help is no run" : why);
    if (c.resume) return lra_fail(err, LRA_ERR_USAGE, "%s:%d: --resume: the batch resumes what stopped by itself", file, line);
    if (!(r->identity = lra_config_identity_json(&c))) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    if (c.out[0]) snprintf(r->report, sizeof r->report, "%s", c.out);
    else lra_run_default_report(&c, r->report, sizeof r->report);
    lra_run_checkpoint_path(&c, r->report, r->ckpt, sizeof r->ckpt);
    snprintf(r->what, sizeof r->what, "%s/%s seed %ld%s%s%s", c.task, c.backend, c.seed, c.attn_opts[0] ? " (" : "",
             c.attn_opts, c.attn_opts[0] ? ")" : "");
    snprintf(r->group, sizeof r->group, "%s/%s", c.task, c.backend);
    r->steps = c.steps;
    for (int i = 0; i + 1 < b->n; i++)
        if (!strcmp(b->run[i].report, r->report))
            return lra_fail(err, LRA_ERR_USAGE, "%s:%d and line %d name one run (report %s): give one of them "
                            "another --out or other options", file, b->run[i].line, line, r->report);
    return LRA_OK;
}

/* One line into words; a leading `lra-bench` and `run` go. Quotes are refused rather than
 * misread: no option value needs them. */
static lra_status split_line(char *text, char **words, int *n, const char *file, int line, char *err) {
    *n = 0;
    if (strpbrk(text, "'\"\\"))
        return lra_fail(err, LRA_ERR_USAGE, "%s:%d: quotes and backslashes are not read here: write the options "
                        "without them", file, line);
    for (char *p = text; *p;) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        if (*n == MAX_WORDS) return lra_fail(err, LRA_ERR_USAGE, "%s:%d: more than %d options", file, line, MAX_WORDS);
        words[(*n)++] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p) *p++ = '\0';
    }
    int skip = 0;
    if (skip < *n && (!strcmp(words[skip], "lra-bench") || strstr(words[skip], "/lra-bench"))) skip++;
    if (skip < *n && !strcmp(words[skip], "run")) skip++;
    if (skip < *n && strncmp(words[skip], "--", 2) != 0)
        return lra_fail(err, LRA_ERR_USAGE, "%s:%d: '%s': a line holds the options of one `lra-bench run`", file, line,
                        words[skip]);
    memmove(words, words + skip, (size_t)(*n - skip) * sizeof *words);
    *n -= skip;
    return LRA_OK;
}

/* FILE's lines, each expanded into its runs, with the batch's own options after each */
static lra_status read_batch(batch *b, const char *file, char **overrides, int nover, char *err) {
    FILE *f = fopen(file, "r");
    if (!f) return lra_fail(err, LRA_ERR_USAGE, "cannot read %s: %s", file, strerror(errno));
    char text[MAX_LINE];
    lra_status st = LRA_OK;
    for (int line = 1; st == LRA_OK && fgets(text, sizeof text, f); line++) {
        if (!strchr(text, '\n') && !feof(f)) {
            st = lra_fail(err, LRA_ERR_USAGE, "%s:%d: longer than %d characters", file, line, MAX_LINE - 2);
            break;
        }
        char *hash = strchr(text, '#');
        if (hash) *hash = '\0';
        char *words[MAX_WORDS + MAX_OVERRIDES];
        int n;
        if ((st = split_line(text, words, &n, file, line, err)) != LRA_OK || n == 0) continue;
        for (int i = 0; i < nover; i++) words[n++] = overrides[i];
        lra_run_list runs;
        char why[LRA_ERR_LEN];
        if (lra_run_list_expand(&runs, n, words, why) != LRA_OK) {
            st = lra_fail(err, LRA_ERR_USAGE, "%s:%d: %s", file, line, why);
            break;
        }
        for (int k = 0; k < runs.n; k++) { /* each run's argv moves into the batch */
            if (st == LRA_OK) st = push(b, line, runs.run[k], file, err);
            else lra_run_args_free(&runs.run[k]);
        }
        free(runs.run);
    }
    if (st == LRA_OK && ferror(f)) st = lra_fail(err, LRA_ERR_IO, "cannot read %s: %s", file, strerror(errno));
    fclose(f);
    if (st == LRA_OK && b->n == 0) st = lra_fail(err, LRA_ERR_USAGE, "%s names no run", file);
    return st;
}

/* What a run's report says of its cost (lra_run_report_cost), the step its checkpoint holds (0
 * without one) and when it completed (ISO 8601; "" if it has not, or diverged before its last
 * step). All 0 and "" without a report. */
typedef struct {
    double wall, cores;
    int step;
    char completed[40];
} run_cost;

static run_cost cost_in(const cJSON *report) {
    run_cost c = {0};
    if (!lra_run_report_cost(report, &c.wall, &c.cores)) return c;
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "checkpoint"), "step");
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(report, "finished_at");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(report, "status");
    c.step = cJSON_IsNumber(ck) ? (int)ck->valuedouble : 0;
    if (cJSON_IsString(status) && !strcmp(status->valuestring, "completed") && cJSON_IsString(fin))
        snprintf(c.completed, sizeof c.completed, "%s", fin->valuestring);
    return c;
}

/* What is left of run r: the table at the top; detail says why where it helps (the status, or
 * how the report there differs from this run); cost (if not NULL) what its report says it cost. */
static run_state_kind state_of(const batch_run *r, char *detail, size_t n, run_cost *cost) {
    detail[0] = '\0';
    if (cost) *cost = (run_cost){0};
    if (!lra_file_exists(r->report)) return lra_file_exists(r->ckpt) ? TO_RESUME : TO_START;
    lra_status st;
    char err[LRA_ERR_LEN];
    cJSON *j = lra_read_json(r->report, &st, err);
    if (cost && j) *cost = cost_in(j);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
    if (!cJSON_IsString(status)) {
        snprintf(detail, n, "%s", j ? "it holds no run's status" : err);
        cJSON_Delete(j);
        return FOREIGN;
    }
    /* the report must be this line's run: a hand-written --out may name another's */
    lra_config theirs;
    int help = 0, foreign = 1;
    char *args[160];
    int na = lra_config_args_from_json(cJSON_GetObjectItemCaseSensitive(j, "config"), args, 150);
    if (na >= 0 && lra_config_parse(&theirs, na, args, &help, err) == LRA_OK) {
        cJSON *id = lra_config_identity_json(&theirs);
        /* as resume compares: floats as floats, an option added later by the value its absence meant */
        foreign = lra_config_diff(id, "the report", r->identity, detail, n) > 0;
        cJSON_Delete(id);
    } else snprintf(detail, n, "%s", na < 0 ? "it holds no run configuration" : err);
    for (int i = 0; i < na; i++) free(args[i]);
    const char *s = status->valuestring;
    run_state_kind k = foreign ? FOREIGN
                     : !strcmp(s, "completed") || !strcmp(s, "diverged") ? DONE
                     : TO_RESTART;
    if (k == DONE) snprintf(detail, n, "%s", s);
    cJSON_Delete(j);
    if (k != TO_RESTART) return k;
    if (lra_run_in_use(r->report)) return BUSY;
    return lra_file_exists(r->ckpt) ? TO_RESUME : TO_RESTART;
}

/* seconds as a person reads them: "40.2 s", "25 min", "21.3 h" */
static const char *duration(char *buf, size_t n, double s) {
    if (s < 120) snprintf(buf, n, "%.1f s", s);
    else if (s < 7200) snprintf(buf, n, "%.0f min", s / 60);
    else snprintf(buf, n, "%.1f h", s / 3600);
    return buf;
}

/* wall seconds per step of the latest completed run of run i's task and backend: the pace of the
 * machine and binary the batch runs on now, as near as the batch knows it; 0 if none is */
static double pace_of(const batch *b, const run_cost *cost, int i) {
    int latest = -1;
    for (int k = 0; k < b->n; k++)
        if (cost[k].completed[0] && b->run[k].steps > 0 && !strcmp(b->run[k].group, b->run[i].group) &&
            (latest < 0 || strcmp(cost[k].completed, cost[latest].completed) > 0))
            latest = k;
    return latest < 0 ? 0.0 : cost[latest].wall / b->run[latest].steps;
}

/* One line before the runs: what the done runs took, and about how long the rest will take at
 * the pace (wall seconds per step, evaluations included) of the latest completed run of their
 * task and backend, a stopped or running run from its checkpoint; a run left with none to go by
 * is counted apart. kinds: each run's state. */
static void print_bill(const batch *b, const run_state_kind *kinds, const run_cost *cost, const char *file) {
    double done_wall = 0, done_cores = 0, left_s = 0;
    int done = 0, left = 0, blind = 0;
    char blind_groups[256] = "";
    for (int i = 0; i < b->n; i++) {
        if (kinds[i] == DONE) {
            done++;
            done_wall += cost[i].wall;
            done_cores += cost[i].cores;
            continue;
        }
        if (kinds[i] == FOREIGN) continue;
        left++;
        const double pace = pace_of(b, cost, i);
        if (pace > 0.0) {
            const int from = kinds[i] == TO_RESUME || kinds[i] == BUSY ? cost[i].step : 0;
            left_s += (b->run[i].steps - from) * pace;
            continue;
        }
        int named = 0; /* each group once */
        for (int k = 0; k < i; k++)
            named |= kinds[k] != DONE && kinds[k] != FOREIGN && !strcmp(b->run[k].group, b->run[i].group);
        if (!named)
            snprintf(blind_groups + strlen(blind_groups), sizeof blind_groups - strlen(blind_groups), "%s%s",
                     blind ? ", " : "", b->run[i].group);
        blind++;
    }
    char a[32], c[32], l[32];
    fprintf(stderr, "lra-bench batch: %s: %d of %d runs done", file, done, b->n);
    if (done) fprintf(stderr, " in %s (%s on the cores)", duration(a, sizeof a, done_wall),
                      duration(c, sizeof c, done_cores));
    if (left > blind)
        fprintf(stderr, "; %d left, about %s at the pace of the latest completed run of their task and backend", left,
                duration(l, sizeof l, left_s));
    else if (left) fprintf(stderr, "; %d left", left);
    if (blind) fprintf(stderr, "%s%d with no completed run of their task and backend to go by (%s)",
                       left > blind ? ", and " : ": ", blind, blind_groups);
    fprintf(stderr, "\n");
}

/* Runs r as its state says; the run's own lock and claim refuse it if another process got
 * there in between. */
static void run_one(const batch_run *r, run_state_kind k, char **overrides, int nover) {
    if (k == TO_RESUME) {
        char *args[MAX_OVERRIDES + 2];
        args[0] = (char *)r->ckpt;
        for (int i = 0; i < nover; i++) args[1 + i] = overrides[i];
        lra_resume_main(1 + nover, args);
        return;
    }
    char **args = calloc((size_t)r->args.argc + 2, sizeof(char *));
    if (!args) return;
    memcpy(args, r->args.argv, (size_t)r->args.argc * sizeof(char *));
    int n = r->args.argc;
    if (k == TO_RESTART) args[n++] = "--overwrite"; /* the killed run's placeholder, no result */
    lra_run_main(n, args);
    free(args);
}

const char lra_batch_help[] =
    "usage: lra-bench batch FILE [--dry-run] [--threads=N] [--progress=on|off] [--log-every=N]\n"
    "                          [--checkpoint-every=N] [--data-dir=DIR]\n\n"
    "Runs every run FILE names to the end, one after another. A line holds the options of one\n"
    "`lra-bench run` (--seeds=0,1,2 and --attn-opt lists such as m=16,64,k=64,256 name several runs;\n"
    "# starts a comment). A run whose report is complete is skipped, a stopped one resumes from its\n"
    "checkpoint, one killed before its first checkpoint starts again, and one that another process runs\n"
    "now is left to it. Kill the batch at any moment (SIGKILL included) and start it again: it goes on\n"
    "where it was. The options here apply to every run and change no result. --dry-run says what each\n"
    "run needs and runs nothing. Every line is checked before the first run starts. The first line out\n"
    "says what the done runs took (wall time, and time on the cores) and about how long the rest will\n"
    "take at the pace of the latest completed run of their task and backend. Exit status: 0 every run\n"
    "done, 1 some not, 2 a mistake in FILE (file:line named; nothing run).\n";

static int usage(FILE *f) {
    fputs(lra_batch_help, f);
    return f == stdout ? 0 : 2;
}

static const char *const allowed[] = {"--threads=", "--progress=", "--log-every=", "--checkpoint-every=", "--data-dir=", NULL};

int lra_batch_main(int argc, char **argv) {
    const char *file = NULL;
    char *overrides[MAX_OVERRIDES];
    int nover = 0, dry = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout);
        if (!strcmp(argv[i], "--dry-run")) { dry = 1; continue; }
        int ok = 0;
        for (int k = 0; allowed[k]; k++) ok |= !strncmp(argv[i], allowed[k], strlen(allowed[k]));
        if (ok && nover < MAX_OVERRIDES) overrides[nover++] = argv[i];
        else if (!file && strncmp(argv[i], "--", 2) != 0) file = argv[i];
        else {
            fprintf(stderr, "lra-bench batch: %s: not an option here (options that change a result belong in FILE)\n",
                    argv[i]);
            return usage(stderr);
        }
    }
    if (!file) return usage(stderr);
    batch b = {0};
    char err[LRA_ERR_LEN];
    if (read_batch(&b, file, overrides, nover, err) != LRA_OK) {
        fprintf(stderr, "lra-bench batch: %s\n", err);
        batch_free(&b);
        return 2;
    }
    run_state_kind *kinds = malloc((size_t)b.n * sizeof *kinds);
    run_cost *cost = malloc((size_t)b.n * sizeof *cost);
    if (kinds && cost) {
        char detail[600];
        for (int i = 0; i < b.n; i++) kinds[i] = state_of(&b.run[i], detail, sizeof detail, &cost[i]);
        print_bill(&b, kinds, cost, file);
    }
    free(kinds);
    free(cost);
    /* SIGINT/SIGTERM stop the run at hand with its checkpoint (run.c), then the batch */
    lra_stop_install();
    int count[FOREIGN + 1] = {0};
    for (int i = 0; i < b.n && !lra_stop_requested(); i++) { /* stopped: the rest stays as it is */
        const batch_run *r = &b.run[i];
        char detail[600];
        run_state_kind k = state_of(r, detail, sizeof detail, NULL);
        fprintf(stderr, "lra-bench batch: [%d/%d] %s:%d %s: %s%s%s%s %s\n", i + 1, b.n, file, r->line, r->what,
                state_names[k], detail[0] ? " (" : "", detail, detail[0] ? ")" : "", r->report);
        if (!dry && k != DONE && k != BUSY && k != FOREIGN) {
            run_one(r, k, overrides, nover);
            k = state_of(r, detail, sizeof detail, NULL);
            if (k != DONE) fprintf(stderr, "lra-bench batch: [%d/%d] %s: not done\n", i + 1, b.n, r->what);
        }
        count[k]++;
    }
    const int stopped = lra_stop_requested() != 0;
    lra_stop_restore();
    fprintf(stderr, "lra-bench batch: %s: %d of %d runs done", file, count[DONE], b.n);
    if (count[BUSY]) fprintf(stderr, ", %d running in another process", count[BUSY]);
    if (count[FOREIGN]) fprintf(stderr, ", %d whose report path holds another run's report", count[FOREIGN]);
    const int left = b.n - count[DONE] - count[BUSY] - count[FOREIGN];
    if (left) fprintf(stderr, ", %d %s", left, dry ? "to run" : stopped ? "left (stopped: the same command goes on)"
                                                                      : "not done (see each run's message above)");
    fprintf(stderr, "\n");
    const int all_done = count[DONE] == b.n;
    batch_free(&b);
    return all_done ? 0 : 1;
}
