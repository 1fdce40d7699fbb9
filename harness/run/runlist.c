/* runlist.c - see runlist.h. */
#define _POSIX_C_SOURCE 200809L
#include "runlist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SEEDS = 64, MAX_KEYS = 16, MAX_VALUES = 64 };

typedef struct {
    int nkeys;
    char key[MAX_KEYS][64];
    int nval[MAX_KEYS];
    char val[MAX_KEYS][MAX_VALUES][64];
} grid;

static lra_status parse_seeds(const char *text, long *seeds, int *n, char *err) {
    const char *p = text;
    char *end;
    *n = 0;
    while (*p) {
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || (*end && *end != ',') || *n == MAX_SEEDS)
            return lra_fail(err, LRA_ERR_USAGE, "--seeds='%s' must be up to %d comma-separated seeds >= 0", text, MAX_SEEDS);
        seeds[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) return lra_fail(err, LRA_ERR_USAGE, "--seeds= names no seed");
    return LRA_OK;
}

/* key=v[,v...] separated by ',' or ';': a piece with '=' starts a key, one without adds a value */
static lra_status parse_grid(const char *text, grid *g, char *err) {
    memset(g, 0, sizeof *g);
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, ",;");
        const char *eq = memchr(p, '=', len);
        if (len == 0) return lra_fail(err, LRA_ERR_USAGE, "--attn-opt='%s': an empty option between separators", text);
        if (len >= 64 || (eq && (eq == p || eq + 1 == p + len)))
            return lra_fail(err, LRA_ERR_USAGE, "--attn-opt='%s': '%.*s' is no key=value or value", text, (int)len, p);
        if (eq) {
            if (g->nkeys == MAX_KEYS) return lra_fail(err, LRA_ERR_USAGE, "--attn-opt='%s': more than %d keys", text, MAX_KEYS);
            int k = g->nkeys++;
            snprintf(g->key[k], sizeof g->key[k], "%.*s", (int)(eq - p), p);
            for (int j = 0; j < k; j++)
                if (!strcmp(g->key[j], g->key[k]))
                    return lra_fail(err, LRA_ERR_USAGE, "--attn-opt='%s': %s given twice", text, g->key[k]);
            snprintf(g->val[k][g->nval[k]++], 64, "%.*s", (int)(p + len - eq - 1), eq + 1);
        } else {
            if (g->nkeys == 0)
                return lra_fail(err, LRA_ERR_USAGE, "--attn-opt='%s': value '%.*s' before any key=", text, (int)len, p);
            int k = g->nkeys - 1;
            if (g->nval[k] == MAX_VALUES)
                return lra_fail(err, LRA_ERR_USAGE, "--attn-opt='%s': more than %d values of %s", text, MAX_VALUES, g->key[k]);
            snprintf(g->val[k][g->nval[k]++], 64, "%.*s", (int)len, p);
        }
        p += len;
        if (*p) p++;
    }
    return LRA_OK;
}

static long grid_points(const grid *g) {
    long n = 1;
    for (int k = 0; k < g->nkeys && n <= LRA_RUNLIST_MAX; k++) n *= g->nval[k];
    return n;
}

/* point i of the product, the last key fastest: "k1=v,k2=v" */
static void grid_point(const grid *g, long i, char *out, size_t n) {
    int digit[MAX_KEYS];
    for (int k = g->nkeys - 1; k >= 0; k--) {
        digit[k] = (int)(i % g->nval[k]);
        i /= g->nval[k];
    }
    size_t used = 0;
    out[0] = '\0';
    for (int k = 0; k < g->nkeys && used < n; k++)
        used += (size_t)snprintf(out + used, n - used, "%s%s=%s", k ? "," : "", g->key[k], g->val[k][digit[k]]);
}

static char *dup_or_die(const char *s) {
    char *d = strdup(s);
    if (!d) abort();
    return d;
}

lra_status lra_run_list_expand(lra_run_list *l, int argc, char **argv, char *err) {
    memset(l, 0, sizeof *l);
    long seeds[MAX_SEEDS];
    int nseeds = 0, seed_given = -1, one_file = 0, grid_arg = -1;
    grid g = {0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--seeds=", 8)) {
            lra_status st = parse_seeds(a + 8, seeds, &nseeds, err);
            if (st != LRA_OK) return st;
        } else if (!strncmp(a, "--seed=", 7)) seed_given = i;
        else if (!strncmp(a, "--out=", 6) || !strncmp(a, "--checkpoint=", 13)) one_file = 1;
        else if (!strncmp(a, "--attn-opt=", 11)) {
            lra_status st = parse_grid(a + 11, &g, err);
            if (st != LRA_OK) return st;
            grid_arg = i;
        }
    }
    if (nseeds && seed_given >= 0)
        return lra_fail(err, LRA_ERR_USAGE, "%s and --seeds both given; use one", argv[seed_given]);
    const long points = grid_arg >= 0 ? grid_points(&g) : 1;
    /* a single point written with ';' is given to the backend as the one list it reads */
    const int is_grid = points > 1 || (grid_arg >= 0 && strchr(argv[grid_arg], ';'));
    if (points * (nseeds ? nseeds : 1) > LRA_RUNLIST_MAX)
        return lra_fail(err, LRA_ERR_USAGE, "%ld runs: more than %d in one command", points * (nseeds ? nseeds : 1),
                        LRA_RUNLIST_MAX);
    const int n = (int)points * (nseeds ? nseeds : 1);
    if (n > 1 && one_file)
        return lra_fail(err, LRA_ERR_USAGE, "--out and --checkpoint name one file and these options name %d runs; leave "
                        "them out (reports go to results/<task>/<backend>-<profile>-seed<N>-<hash>.json)", n);
    l->run = calloc((size_t)n, sizeof *l->run);
    if (!l->run) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    for (int r = 0; r < n; r++) {
        lra_run_args *ra = &l->run[r];
        ra->argv = calloc((size_t)argc + 1, sizeof(char *));
        if (!ra->argv) { lra_run_list_free(l); return lra_fail(err, LRA_ERR_NOMEM, "out of memory"); }
        l->n = r + 1;
        for (int i = 0; i < argc; i++) {
            char buf[1200];
            if (!strncmp(argv[i], "--seeds=", 8)) {
                snprintf(buf, sizeof buf, "--seed=%ld", seeds[r / points]);
                ra->argv[ra->argc++] = dup_or_die(buf);
            } else if (i == grid_arg && is_grid) {
                char point[1100];
                grid_point(&g, r % points, point, sizeof point);
                snprintf(buf, sizeof buf, "--attn-opt=%s", point);
                ra->argv[ra->argc++] = dup_or_die(buf);
            } else ra->argv[ra->argc++] = dup_or_die(argv[i]); /* a single --attn-opt stays as written */
        }
    }
    return LRA_OK;
}

void lra_run_args_free(lra_run_args *a) {
    for (int i = 0; i < a->argc; i++) free(a->argv[i]);
    free(a->argv);
    a->argv = NULL;
    a->argc = 0;
}

void lra_run_list_free(lra_run_list *l) {
    for (int r = 0; r < l->n; r++) lra_run_args_free(&l->run[r]);
    free(l->run);
    memset(l, 0, sizeof *l);
}
