/* listops_gen.c - see listops_gen.h. The recursion mirrors the official generate_tree():
 *
 *   if depth < max_depth: r = random() else r = 1
 *   if r > 0.25: leaf, a digit 0-9, length 1
 *   else: n = randint(2, max_args) children at depth + 1, then op = choice(MIN MAX MED SM),
 *         t = (op, v0); t = (t, v_i) ...; t = (t, ']'), length = 2 + sum of child lengths
 *
 * and to_string() writes a pair (a, b) as "( a b )". Values follow to_value(): MIN, MAX,
 * MED = int(np.median) (mean of the middle two when even, truncated), SM = sum mod 10. */
#define _POSIX_C_SOURCE 200809L
#include "listops_gen.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "../common/atomic_file.h"
#include "../common/test_hook.h"
#include "datadir.h"

static const char *const OPS[4] = {"[MIN", "[MAX", "[MED", "[SM"};

void lra_listops_gen_defaults(lra_listops_gen_cfg *c) {
    c->n_train = 96000;
    c->n_val = 2000;
    c->n_test = 2000;
    c->min_length = 500;
    c->max_length = 2000;
    c->max_depth = 10;
    c->max_args = 10;
    c->seed = 1;
}

typedef struct {
    char *buf;
    size_t cap, len;
    int length; /* tokens so far (the official length) */
    int overflow;
    const lra_listops_gen_cfg *c;
    lra_rng *r;
} gen_state;

static void put(gen_state *g, const char *s) {
    size_t n = strlen(s);
    if (g->len + n + 1 > g->cap) { g->overflow = 1; return; }
    memcpy(g->buf + g->len, s, n);
    g->len += n;
    g->buf[g->len] = '\0';
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Writes the subtree and returns its value; sets overflow once max_length is reached. */
static int gen(gen_state *g, int depth) {
    if (g->overflow) return 0;
    double r = depth < g->c->max_depth ? lra_rng_uniform(g->r) : 1.0;
    if (r > 0.25) {
        int v = (int)lra_rng_range(g->r, 0, 9);
        char d[2] = {(char)('0' + v), 0};
        put(g, d);
        if (++g->length >= g->c->max_length) g->overflow = 1;
        return v;
    }
    int n = (int)lra_rng_range(g->r, 2, g->c->max_args);
    /* "( " once per pair: n children + the closing ']' make n + 1 nested pairs */
    for (int i = 0; i <= n; i++) put(g, "( ");
    size_t op_at = g->len;
    put(g, "[OPX "); /* placeholder, the operator is drawn after the children */
    g->length += 2;
    int vals[16];
    for (int i = 0; i < n && !g->overflow; i++) {
        if (i > 0) put(g, " ");
        vals[i] = gen(g, depth + 1);
        put(g, " )");
    }
    if (g->overflow) return 0;
    put(g, " ] )");
    if (g->length >= g->c->max_length) g->overflow = 1;
    if (g->overflow) return 0;
    int op = (int)lra_rng_range(g->r, 0, 3);
    /* the placeholder is 5 bytes; operators are 3 or 4 bytes: shift the tail left */
    size_t oplen = strlen(OPS[op]);
    memmove(g->buf + op_at + oplen + 1, g->buf + op_at + 5, g->len - (op_at + 5) + 1);
    memcpy(g->buf + op_at, OPS[op], oplen);
    g->buf[op_at + oplen] = ' ';
    g->len -= 5 - (oplen + 1);
    int v = 0;
    switch (op) {
    case 0: v = vals[0]; for (int i = 1; i < n; i++) v = vals[i] < v ? vals[i] : v; break;
    case 1: v = vals[0]; for (int i = 1; i < n; i++) v = vals[i] > v ? vals[i] : v; break;
    case 2: {
        int s[16];
        memcpy(s, vals, sizeof(int) * n);
        qsort(s, (size_t)n, sizeof(int), cmp_int);
        v = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; /* int(np.median): truncation */
        break;
    }
    default: for (int i = 0; i < n; i++) v += vals[i]; v %= 10; break;
    }
    return v;
}

int lra_listops_tree(lra_rng *r, const lra_listops_gen_cfg *c, char *buf, size_t bufsize, int *length) {
    gen_state g = {buf, bufsize, 0, 0, 0, c, r};
    buf[0] = '\0';
    int v = gen(&g, 1);
    *length = g.overflow ? -1 : g.length;
    return g.overflow ? 0 : v;
}

/* ---- de-duplication: an open-addressing set of 64-bit string hashes ---- */
static uint64_t hash_str(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return lra_mix64(h ^ n);
}

/* Writes one split in the official TSV layout to a's temporary file, finished and on disk;
 * returns 0 or errno (the temporary file then removed). */
static int write_split(lra_atomic_file *a, char *const *rows, const int *vals, long n) {
    int ok = fputs("Source\tTarget\r\n", a->f) != EOF;
    for (long i = 0; i < n && ok; i++) ok = fprintf(a->f, "%s\t%d\r\n", rows[i], vals[i]) >= 0;
    return lra_atomic_finish(a, ok, LRA_ATOMIC_SYNC);
}

/* The STOP_IN_GENERATE=K test hook: SIGSTOP once K splits (4: and the mark) are staged, for a
 * test to SIGKILL there. */
static void stop_for_test(int k) {
    const char *e = lra_test_hook("STOP_IN_GENERATE");
    if (e && atoi(e) == k) raise(SIGSTOP);
}

/* DIR.partial/basic_{train,val,test}.tsv and the GENERATED mark, then DIR.partial renamed to DIR
 * (DIR absent or an empty directory). A DIR holding other files (generate --out=DIR) gets the
 * files one by one instead, the mark last. On failure DIR.partial is removed. */
static lra_status write_staged(const char *dir, const lra_listops_gen_cfg *c, char *const *rows, const int *vals,
                               char *err) {
    static const char *const names[3] = {"train", "val", "test"};
    const long counts[3] = {c->n_train, c->n_val, c->n_test}, first[3] = {0, c->n_train, c->n_train + c->n_val};
    char part[4200], from[4400], to[4400];
    snprintf(part, sizeof part, "%s.partial", dir);
    lra_status st = lra_mkdirs(part, err);
    lra_atomic_file *out = malloc(sizeof *out); /* 12 KB: off the stack */
    if (st == LRA_OK && !out) st = lra_fail(err, LRA_ERR_NOMEM, "out of memory generating ListOps");
    for (int k = 0; k < 3 && st == LRA_OK; k++) {
        snprintf(from, sizeof from, "%s/basic_%s.tsv", part, names[k]);
        if ((st = lra_atomic_open(out, from, err)) != LRA_OK) break;
        int e = write_split(out, rows + first[k], vals + first[k], counts[k]);
        if (!e) e = lra_atomic_rename(out, LRA_ATOMIC_SYNC);
        if (e) st = lra_fail(err, LRA_ERR_IO, "%s: write failed: %s", from, strerror(e));
        stop_for_test(k + 1);
    }
    free(out);
    lra_listops_gen_cfg official;
    lra_listops_gen_defaults(&official);
    char note[96]; /* a set of other lengths says so, and every run on it does (its data source) */
    snprintf(note, sizeof note, "lengths %d < length < %d, not the official 500 < length < 2000", c->min_length,
             c->max_length);
    const int other = c->min_length != official.min_length || c->max_length != official.max_length;
    if (st == LRA_OK) st = lra_generated_mark(part, (unsigned long long)c->seed, other ? note : NULL, err);
    stop_for_test(4);
    if (st == LRA_OK && rename(part, dir) != 0) {
        if (errno != ENOTEMPTY && errno != EEXIST) {
            st = lra_fail(err, LRA_ERR_IO, "rename %s to %s: %s", part, dir, strerror(errno));
        } else { /* DIR holds other files: the splits first, the mark last */
            static const char *const files[4] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv",
                                                 "GENERATED_BY_LRA_BENCH"};
            for (int k = 0; k < 4 && st == LRA_OK; k++) {
                snprintf(from, sizeof from, "%s/%s", part, files[k]);
                snprintf(to, sizeof to, "%s/%s", dir, files[k]);
                if (rename(from, to) != 0) st = lra_fail(err, LRA_ERR_IO, "rename %s: %s", from, strerror(errno));
            }
        }
    }
    if (st != LRA_OK || lra_file_exists(part)) {
        char ignored[LRA_ERR_LEN];
        lra_rmtree(part, ignored);
    }
    return st;
}

lra_status lra_listops_generate(const char *dir, const lra_listops_gen_cfg *c, char *err) {
    char stale[4200];
    snprintf(stale, sizeof stale, "%s.partial", dir);
    if (lra_file_exists(stale) && lra_rmtree(stale, err) != LRA_OK) return LRA_ERR_IO; /* a killed generation's */
    const long total = c->n_train + c->n_val + c->n_test;
    size_t cap = 1;
    while (cap < (size_t)total * 2 + 16) cap <<= 1;
    uint64_t *set = calloc(cap, sizeof(uint64_t));
    char **rows = calloc((size_t)total, sizeof(char *));
    int *vals = calloc((size_t)total, sizeof(int));
    const size_t bufsize = (size_t)c->max_length * 8 + 64;
    char *buf = malloc(bufsize);
    lra_status st = LRA_OK;
    if (!set || !rows || !vals || !buf) { st = lra_fail(err, LRA_ERR_NOMEM, "out of memory generating ListOps"); goto done; }
    lra_rng r;
    lra_rng_seed(&r, c->seed);
    long have = 0;
    while (have < total) {
        if (lra_stop_requested()) { /* nothing is on disk yet: the splits are written at the end */
            st = lra_fail(err, LRA_ERR_INTERRUPTED, "interrupted while generating ListOps (%ld of %ld examples); nothing "
                          "was written to %s", have, total, dir);
            goto done;
        }
        int length;
        int v = lra_listops_tree(&r, c, buf, bufsize, &length);
        if (!(length > c->min_length && length < c->max_length)) continue;
        size_t n = strlen(buf);
        uint64_t h = hash_str(buf, n) | 1; /* 0 marks an empty slot */
        size_t i = h & (cap - 1);
        while (set[i] && set[i] != h) i = (i + 1) & (cap - 1);
        if (set[i] == h) continue; /* duplicate */
        set[i] = h;
        rows[have] = malloc(n + 1);
        if (!rows[have]) { st = lra_fail(err, LRA_ERR_NOMEM, "out of memory generating ListOps"); goto done; }
        memcpy(rows[have], buf, n + 1);
        vals[have++] = v;
    }
    /* all three and the GENERATED mark into DIR.partial, then published with one rename of that
     * directory: a full disk or a kill at any point leaves no split under DIR (a lone one would look
     * like a damaged download, three without the mark like official files), only DIR.partial,
     * which the next generation removes first */
    st = write_staged(dir, c, rows, vals, err);
done:
    if (rows)
        for (long i = 0; i < total; i++) free(rows[i]);
    free(rows); free(vals); free(set); free(buf);
    return st;
}

/* ---- independent evaluator: a stack machine over the whitespace-separated tokens ---- */
int lra_listops_eval(const char *src) {
    enum { MAXD = 64, MAXV = 4096 };
    int op[MAXD], start[MAXD], depth = 0;
    static _Thread_local int vals[MAXV];
    int nv = 0;
    const char *p = src;
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '\r' || *p == '\n') break;
        const char *q = p;
        while (*q && *q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') q++;
        size_t n = (size_t)(q - p);
        if (n == 1 && (*p == '(' || *p == ')')) { p = q; continue; }
        if (n == 1 && *p >= '0' && *p <= '9') {
            if (nv >= MAXV) return -1;
            vals[nv++] = *p - '0';
        } else if (n == 1 && *p == ']') {
            if (depth == 0) return -1;
            depth--;
            int s = start[depth], cnt = nv - s;
            if (cnt < 1) return -1;
            int *a = vals + s, v;
            if (op[depth] == 0 || op[depth] == 1) {
                v = a[0];
                for (int i = 1; i < cnt; i++) v = op[depth] == 0 ? (a[i] < v ? a[i] : v) : (a[i] > v ? a[i] : v);
            } else if (op[depth] == 2) {
                /* counting sort: values are digits */
                int hist[10] = {0}, seen = 0, lo = -1, hi = -1;
                for (int i = 0; i < cnt; i++) hist[a[i]]++;
                for (int d = 0; d < 10; d++) {
                    for (int k = 0; k < hist[d]; k++, seen++) {
                        if (seen == (cnt - 1) / 2) lo = d;
                        if (seen == cnt / 2) hi = d;
                    }
                }
                v = (lo + hi) / 2;
            } else {
                v = 0;
                for (int i = 0; i < cnt; i++) v += a[i];
                v %= 10;
            }
            nv = s;
            vals[nv++] = v;
        } else {
            int o = -1;
            for (int i = 0; i < 4; i++)
                if (strlen(OPS[i]) == n && strncmp(p, OPS[i], n) == 0) o = i;
            if (o < 0 || depth >= MAXD) return -1;
            op[depth] = o;
            start[depth++] = nv;
        }
        p = q;
    }
    return depth == 0 && nv == 1 ? vals[0] : -1;
}
