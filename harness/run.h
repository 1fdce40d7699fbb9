/* run.h - one training + evaluation run, from a resolved configuration to a JSON report. */
#ifndef LRA_RUN_H
#define LRA_RUN_H

#include "config.h"

/* Prepares the data, trains, evaluates val and test in full, writes the report (c->out, or the
 * default path, written into report_path). Returns LRA_OK, or a status with err set; a run that
 * diverged writes a report with "status": "diverged" and returns LRA_ERR_DIVERGED. */
lra_status lra_run(const lra_config *c, char *report_path, size_t n, char *err);

#endif
