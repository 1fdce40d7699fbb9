/* compare.h - the `lra-bench compare` command (see compare.c). */
#ifndef LRA_COMPARE_H
#define LRA_COMPARE_H

#include "../common/lra.h"

/* argv: the arguments after "compare". Returns the exit status. */
int lra_compare_main(int argc, char **argv);

/* ---- completed run reports grouped by (task, backend, profile), shared with plot ---- */
enum { LRA_NTASKS = 6 };
extern const char *const lra_task_order[LRA_NTASKS];  /* "listops" ... "pathx" */
extern const char *const lra_task_titles[LRA_NTASKS]; /* "ListOps" ... "Path-X" */

typedef struct {
    char task[32], backend[32], profile[32];
    int n;                       /* seeds */
    double acc[64];              /* test accuracy of each seed, % */
    long seed[64];
    const char *file[64];        /* the report of each seed (the caller's strings) */
    char data[65];               /* data checksum shared by every seed */
    double steps_s, tokens_s, eval_tokens_s, rss_mb, params; /* means over seeds */
} group;

typedef struct {
    group *g;
    int n, cap;
} groups;

/* Reads and groups the reports (their path strings must outlive gs); free gs->g after. Reports
 * of other schema versions, malformed ones, duplicate seeds and mixed data are errors naming
 * the file; reports not "completed" are named on stderr and left out. */
lra_status lra_groups_load(groups *gs, char **files, int n, char *err);
group *lra_find_group(groups *gs, const char *task, const char *backend, const char *profile, int create);
double lra_mean(const double *x, int n);

#endif
