/* retrieval.c - Retrieval (lra.md, "Tasks"): are two ACL Anthology papers linked by a citation?
 * The AAN TSVs of the LRA release, tsv_data/new_aan_pairs.{train,eval,test}.tsv: no header, five
 * tab-separated columns "label id1 id2 text1 text2", no quoting, the label a float ("1.0") cast
 * to int. Each document is its bytes + 1 (vocabulary 257), cut to 10000 bytes as the official
 * pipeline does and then to max_len (official 4000). Two sequences per example: the dual encoder
 * (harness/encoder/model.c) encodes both with the same weights. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <sys/types.h>

#include "../common/sha256.h"
#include "../datasets/datadir.h"
#include "retrieval.h"

enum { RETRIEVAL_CUT = 10000 };

static const char *const split_file[3] = {"train", "eval", "test"};

/* The directory holding the three TSVs: DIR/tsv_data, or under lra_release/[lra_release/]. */
static int find_dir(const char *root, char *out, size_t n) {
    static const char *const sub[] = {"/tsv_data", "/lra_release/tsv_data", "/lra_release/lra_release/tsv_data"};
    for (int i = 0; i < 3; i++) {
        snprintf(out, n, "%s%s", root, sub[i]);
        int ok = 1;
        for (int s = 0; s < 3 && ok; s++) {
            char probe[4400];
            snprintf(probe, sizeof probe, "%s/new_aan_pairs.%s.tsv", out, split_file[s]);
            ok = lra_file_exists(probe);
        }
        if (ok) return 1;
    }
    return 0;
}

lra_status lra_retrieval_load_file(lra_split *s, const char *path, int max_len, char *err) {
    memset(s, 0, sizeof *s);
    s->docs = 2;
    snprintf(s->path, sizeof s->path, "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f) return lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno));
    const size_t keep = (size_t)(max_len < RETRIEVAL_CUT ? max_len : RETRIEVAL_CUT);
    lra_split_caps cap = {0, 0, 0};
    lra_sha256 h;
    lra_sha256_init(&h);
    char *line = NULL;
    size_t linecap = 0;
    ssize_t got;
    long lineno = 0;
    lra_status st = LRA_OK;
    size_t ntok = 0;
    if (!lra_grow((void **)&s->offset, &cap.offsets, 1, sizeof(size_t))) st = lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    else s->offset[0] = 0;
    while (st == LRA_OK && (got = getline(&line, &linecap, f)) > 0) {
        lra_sha256_update(&h, line, (size_t)got);
        lineno++;
        char *eol = line + got;
        if (eol[-1] == '\n') eol--;
        if (eol > line && eol[-1] == '\r') eol--;
        if (eol == line) continue;
        char *col[5] = {line};
        int nc = 1;
        for (char *p = line; nc < 5; nc++) { /* the first four tabs end the first four columns */
            char *tab = memchr(p, '\t', (size_t)(eol - p));
            if (!tab) break;
            col[nc] = p = tab + 1;
        }
        if (nc < 5) {
            st = lra_fail(err, LRA_ERR_FORMAT, "%s:%ld: %d tab-separated columns, expected 5 (label id1 id2 text1 text2)",
                          path, lineno, nc);
            break;
        }
        /* text1 ends at the fifth column's tab; text2 runs to the end of the line (no quoting) */
        char *end;
        errno = 0;
        double lab = strtod(col[0], &end);
        if (end == col[0] || *end != '\t' || errno || !(lab == 0.0 || lab == 1.0)) {
            st = lra_fail(err, LRA_ERR_FORMAT, "%s:%ld: label '%.*s' is not 0 or 1 (e.g. 1.0)", path, lineno,
                          (int)(strchr(col[0], '\t') ? strchr(col[0], '\t') - col[0] : 10), col[0]);
            break;
        }
        const char *t1 = col[3], *e1 = col[4] - 1, *t2 = col[4], *e2 = eol;
        size_t n1 = (size_t)(e1 - t1), n2 = (size_t)(e2 - t2);
        n1 = n1 < keep ? n1 : keep;
        n2 = n2 < keep ? n2 : keep;
        if (!lra_grow((void **)&s->tokens, &cap.tokens, ntok + n1 + n2 + 1, sizeof(uint16_t)) ||
            !lra_grow((void **)&s->offset, &cap.offsets, 2 * s->n + 3, sizeof(size_t)) ||
            !lra_grow((void **)&s->labels, &cap.labels, s->n + 1, sizeof(int32_t))) {
            st = lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        for (size_t i = 0; i < n1; i++) s->tokens[ntok++] = (uint16_t)((unsigned char)t1[i] + 1);
        s->offset[2 * s->n + 1] = ntok;
        for (size_t i = 0; i < n2; i++) s->tokens[ntok++] = (uint16_t)((unsigned char)t2[i] + 1);
        s->offset[2 * s->n + 2] = ntok;
        s->labels[s->n++] = (int32_t)lab;
    }
    if (st == LRA_OK && ferror(f)) st = lra_fail(err, LRA_ERR_IO, "%s: read error", path);
    fclose(f);
    free(line);
    if (st == LRA_OK && s->n == 0) st = lra_fail(err, LRA_ERR_FORMAT, "%s: no document pairs", path);
    if (st != LRA_OK) {
        lra_split_free(s);
        return st;
    }
    lra_sha256_final_hex(&h, s->sha256);
    return LRA_OK;
}

static lra_status retrieval_prepare(const lra_task_cfg *cfg, char *source, size_t n, char *err) {
    char dir[4300];
    if (!find_dir(cfg->data_dir, dir, sizeof dir))
        return lra_fail(err, LRA_ERR_IO, "no AAN pairs under %s (looked for tsv_data/new_aan_pairs.{train,eval,test}.tsv, "
                        "also under lra_release/ and lra_release/lra_release/): run `lra-bench fetch --task=retrieval` "
                        "(downloads the 7.7 GB LRA release and extracts tsv_data/), or pass --data-dir=DIR",
                        cfg->data_dir);
    snprintf(source, n, "%s", dir);
    return LRA_OK;
}

static lra_status retrieval_open(lra_split *out, const lra_task_cfg *cfg, int split, char *err) {
    char dir[4300], path[4400];
    if (!find_dir(cfg->data_dir, dir, sizeof dir)) return lra_fail(err, LRA_ERR_IO, "%s: no AAN pairs", cfg->data_dir);
    snprintf(path, sizeof path, "%s/new_aan_pairs.%s.tsv", dir, split_file[split]);
    return lra_retrieval_load_file(out, path, cfg->max_len, err);
}

static const char *const retrieval_part[] = {"/tsv_data/new_aan_pairs.", NULL};
const lra_task_i lra_task_retrieval = {
    .name = "retrieval",
    .title = "Retrieval",
    .help = "AAN document pairs tsv_data/new_aan_pairs.{train,eval,test}.tsv (fetch --task=retrieval),\n"
            "           bytes (+1), dual encoder; --retrieval-head=official [u,v] | paper [u,v,u*v,u-v] | repro",
    .published = 57.46,
    .in_average = 1,
    .official = {4, 4, 128, 128, 512, 32, 4000, 0.05, 8000, 5000, 0.1, "cls", "sin", "rsqrt", 0.1f, 0.1f, 0},
    .repro = {4000, 32, 800, 30000, 300, 1200}, /* val 18,090 pairs */
    .source = {LRA_RELEASE_URL, "lra_release.gz", NULL, retrieval_part},
    .vocab = 257,
    .classes = 2,
    .max_len = 4000,
    .docs = 2,
    .prepare = retrieval_prepare,
    .open = retrieval_open,
};
