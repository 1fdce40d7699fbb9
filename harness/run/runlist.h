/* runlist.h - one command line's options expanded into the runs they name. --seeds=0,1,2 runs
 * the options once per seed; an --attn-opt whose keys list several values (m=16,64,k=64,256, or
 * m=16,64;k=64,256) runs every point of their product; together, every point at every seed,
 * seeds outermost. Each run gets its own argv: the options with --seeds replaced by --seed=N and
 * the grid by one point (m=16,k=64), so each is an ordinary run with its own report. */
#ifndef LRA_RUNLIST_H
#define LRA_RUNLIST_H

#include "../../common/lra.h"

enum { LRA_RUNLIST_MAX = 1024 };

typedef struct {
    int argc;
    char **argv; /* owned, with every string in it */
} lra_run_args;

typedef struct {
    lra_run_args *run; /* (n) */
    int n;
} lra_run_list;

/* argv: options only. LRA_ERR_USAGE with err naming the option for a malformed --seeds or grid,
 * --seed beside --seeds, or --out / --checkpoint beside more than one run. */
lra_status lra_run_list_expand(lra_run_list *l, int argc, char **argv, char *err);
void lra_run_list_free(lra_run_list *l);
void lra_run_args_free(lra_run_args *a);

#endif
