/* datadir.h - where data lives: --data-dir, else $LRA_DATA_DIR, else $XDG_CACHE_HOME/lra-bench,
 * else ~/.cache/lra-bench. */
#ifndef LRA_DATADIR_H
#define LRA_DATADIR_H

#include "../common/fs.h"
#include "../common/lra.h"

/* Resolves the data directory into out (explicit may be NULL or ""). One the user named (explicit
 * or $LRA_DATA_DIR) must be an existing directory, else LRA_ERR_USAGE naming it; the default cache
 * is the callers' to create. */
lra_status lra_data_dir(char *out, size_t n, const char *explicit_dir, char *err);
/* A data set lra-bench generated carries dir/GENERATED_BY_LRA_BENCH with its generator seed, so a
 * later run can tell it from official files, and a line saying how the set departs from the
 * official one, if it does (note; NULL: it does not). lra_generated_mark writes it (whole or not at
 * all); lra_generated_seed reads it: 1 with *seed set, and note filled ("" for none; note may be
 * NULL), when dir holds one, else 0. */
lra_status lra_generated_mark(const char *dir, unsigned long long seed, const char *note, char *err);
int lra_generated_seed(const char *dir, unsigned long long *seed, char *note, size_t n);
#endif
