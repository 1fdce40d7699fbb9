/* sysinfo.h - what a report says about the machine and the build. */
#ifndef LRA_SYSINFO_H
#define LRA_SYSINFO_H

#include <cjson/cJSON.h>
#include <stddef.h>

size_t lra_peak_rss_bytes(void);
/* {"cpu", "cores", "threads", "compiler", "cflags", "openblas_config", "openblas_core",
 *  "OPENBLAS_CORETYPE"}; caller owns. */
cJSON *lra_machine_json(int threads);
const char *lra_git_commit(void);
/* ISO 8601 UTC of a time(NULL) value into buf[32]. */
void lra_iso_time(long t, char *buf);

#endif
