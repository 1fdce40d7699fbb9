/* run.h - one training + evaluation run, from a resolved configuration to a JSON report. */
#ifndef LRA_RUN_H
#define LRA_RUN_H

#include "config.h"

/* Prepares the data, trains, evaluates val and test in full, writes the report (c->out, or the
 * default path). Without c->resume, the report's name is claimed at start and an existing report
 * or checkpoint is refused (LRA_ERR_USAGE, naming it) unless c->overwrite; report and checkpoint
 * are never written over another run's files (run.c, "claimed at start"). report_path receives
 * the report's final name, or "" where set-up failed before any report. Returns LRA_OK, or a
 * status with err set; a run that diverged or was interrupted writes a report saying so. */
lra_status lra_run(const lra_config *c, char *report_path, size_t n, char *err);

/* What a run's report says it cost: *wall_s its wall_time_s (every sitting of the run), *core_s
 * that times the processes and threads per process of its "parallel" block (1 each where absent
 * or below 1). Returns 0, both 0, where the report has no positive wall time. */
int lra_run_report_cost(const cJSON *report, double *wall_s, double *core_s);

/* The default report path: results/<task>/<backend>-<profile>-seed<N>-<hash>.json, the hash (8 hex
 * digits of a SHA-256) over every option that changes the numbers, so that runs whose options
 * differ (a sweep over --lr, --attn-opt, --max-len...) never share a name. */
void lra_run_default_report(const lra_config *c, char *path, size_t n);

/* The checkpoint's path of the run c whose report is report: c->checkpoint, or the one beside
 * the report (X.json -> X.ckpt). */
void lra_run_checkpoint_path(const lra_config *c, const char *report, char *path, size_t n);
void lra_run_checkpoint_beside(const char *report, char *path, size_t n);

/* 1 while a process runs the run whose report this is (it holds the run's lock, REPORT.lock, which
 * the kernel lets go when that process dies); a lock file left by a dead run is removed. */
int lra_run_in_use(const char *report);

/* The `run` command (main.c; `lra-bench resume` ends in it too): argv holds its options only,
 * --seeds included. Returns the exit status. */
int lra_run_main(int argc, char **argv);

#endif
