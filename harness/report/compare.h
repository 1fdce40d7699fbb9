/* compare.h - the `lra-bench compare` command (see compare.c). */
#ifndef LRA_COMPARE_H
#define LRA_COMPARE_H

#include "../../common/lra.h"

/* argv: the arguments after "compare". Returns the exit status. */
int lra_compare_main(int argc, char **argv);

/* ---- completed run reports grouped by (task, backend, profile), shared with plot ---- */
enum { LRA_MAX_COLUMNS = 32 }; /* the tasks, then substitutes such as image[fashion-mnist] */

typedef struct {
    char task[32], profile[32];
    char backend[96];            /* "mita", or with options "mita[m=32,k=128]": runs that differ in
                                    --attn-opt are different rows, not seeds of one */
    int n;                       /* seeds */
    double acc[64];              /* test accuracy of each seed at its best-validation step, % (a
                                    report without model selection: its last step's) */
    double acc_last[64];         /* test accuracy of each seed at its last step, % */
    double to_target_s[64];      /* wall seconds until validation first reached groups.target, NAN
                                    when it never did (or no target) */
    long seed[64];
    const char *file[64];        /* the report of each seed (the caller's strings) */
    char data[65];               /* data checksum shared by every seed */
    char options[200];           /* the backend's options as the run resolved them ("m=64,k=64,...",
                                    the report's backend_options; "" in reports without them) */
    int numerics_lo, numerics_hi; /* the numerics versions its seeds were computed under (0: unknown) */
    double steps_s, tokens_s, eval_tokens_s, rss_mb, params; /* means over seeds */
    double wall_s, core_s;       /* sums over seeds: each run's wall seconds (all its sittings), and
                                    those times the cores its report records (processes x threads) */
} group;

typedef struct {
    group *g;
    int n, cap;
    double target;               /* validation accuracy (0-1) for to_target_s; NAN for none */
    int ntargets;                /* per-task targets, which override it (--target=listops=0.36,...) */
    char target_task[8][32];
    double target_of[8];
} groups;

/* The target for a group's task (its key, "image[fashion-mnist]" counting as image): the task's
 * own, else the common one; NAN for none. */
double lra_groups_target(const groups *gs, const char *task);

/* Reads and groups the reports (their path strings must outlive gs); free gs->g after. Reports
 * of other schema versions, malformed ones, duplicate seeds and mixed data are errors naming
 * the file; what is not a comparable run (another kind of report, a run not "completed", one
 * without timed steps) is named on stderr, one line each, and left out. */
lra_status lra_groups_load(groups *gs, char **files, int n, char *err);
group *lra_find_group(groups *gs, const char *task, const char *backend, const char *profile, int create);
/* The tables' columns: every registered task, then any substitute among the groups
 * (image[fashion-mnist]), as keys (group task names) and titles; returns how many (at most
 * LRA_MAX_COLUMNS). */
int lra_columns(const groups *gs, const char **keys, const char **titles);

#endif
