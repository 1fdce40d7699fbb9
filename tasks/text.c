/* text.c - the Text task (lra.md, "Tasks"): IMDB movie reviews, byte-level, 2 classes.
 *
 * Tokens are the review's UTF-8 bytes + 1 (pad = 0, vocabulary 257), with no cleaning (the
 * "<br />" tags stay, as in the official pipeline), cut to max_len (official: 1000). Splits as
 * the official code uses them: train = IMDB train, and both val and test = IMDB test.
 * The reviews are read straight from the official archive (or any tar of the same layout) or
 * from an extracted aclImdb/ directory, in one streaming pass. */
#define _POSIX_C_SOURCE 200809L
#include "text.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "../common/sha256.h"
#include "../datasets/archive.h"
#include "../datasets/datadir.h"

enum { TEXT_VOCAB = 257, TEXT_OFFICIAL_LEN = 1000 };

int lra_text_find(const char *data_dir, char *out, size_t n) {
    static const char *const names[] = {"aclImdb", "aclImdb_v1.tar.gz", "aclImdb-reviews.tar.gz"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(out, n, "%s/%s", data_dir, names[i]);
        if (i == 0) {
            char probe[4200];
            snprintf(probe, sizeof probe, "%s/train/pos", out);
            DIR *d = opendir(probe);
            if (d) { closedir(d); return 1; }
        } else if (lra_file_exists(out)) {
            return 1;
        }
    }
    return 0;
}

/* One review as read: its sort key and where its tokens are in the pool. */
typedef struct {
    int32_t label;
    long id;
    size_t at, len;
} review;

typedef struct {
    const char *split; /* "train" or "test" */
    int max_len;
    review *r;
    size_t n, cap;
    uint16_t *pool;
    size_t used, pool_cap;
    unsigned char *buf; /* max_len bytes of one review */
} loader;

/* "SPLIT/pos/<id>_<rating>.txt" after the "aclImdb/" prefix: label and id, or 0 if the path is
 * not a labelled review of this split (unsup/, urls, imdb.vocab...). */
static int parse_member(const loader *L, const char *name, int32_t *label, long *id) {
    if (strncmp(name, "aclImdb/", 8) == 0) name += 8;
    size_t sl = strlen(L->split);
    if (strncmp(name, L->split, sl) != 0 || name[sl] != '/') return 0;
    name += sl + 1;
    if (strncmp(name, "pos/", 4) == 0) *label = 1;
    else if (strncmp(name, "neg/", 4) == 0) *label = 0;
    else return 0;
    name += 4;
    char *end;
    errno = 0;
    *id = strtol(name, &end, 10);
    if (end == name || errno || *end != '_') return 0;
    const char *dot = strrchr(end, '.');
    return dot && strcmp(dot, ".txt") == 0 && !strchr(end, '/');
}

static lra_status add_review(loader *L, int32_t label, long id, const unsigned char *bytes, size_t n,
                             const char *where, char *err) {
    if (L->n == L->cap) {
        size_t c = L->cap ? 2 * L->cap : 4096;
        review *p = realloc(L->r, c * sizeof *p);
        if (!p) return lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", where);
        L->r = p;
        L->cap = c;
    }
    if (L->used + n > L->pool_cap) {
        size_t c = L->pool_cap ? L->pool_cap : (size_t)1 << 20;
        while (c < L->used + n) c *= 2;
        uint16_t *p = realloc(L->pool, c * sizeof *p);
        if (!p) return lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", where);
        L->pool = p;
        L->pool_cap = c;
    }
    for (size_t i = 0; i < n; i++) L->pool[L->used + i] = (uint16_t)(bytes[i] + 1);
    L->r[L->n++] = (review){label, id, L->used, n};
    L->used += n;
    return LRA_OK;
}

static lra_status on_member(void *user, const char *name, int64_t size, lra_archive_member *m, char *err) {
    (void)size;
    loader *L = user;
    int32_t label;
    long id;
    if (!parse_member(L, name, &label, &id)) return LRA_OK;
    size_t got = 0;
    while (got < (size_t)L->max_len) {
        ssize_t r = lra_archive_read(m, L->buf + got, (size_t)L->max_len - got, err);
        if (r < 0) return LRA_ERR_FORMAT;
        if (r == 0) break;
        got += (size_t)r;
    }
    return add_review(L, label, id, L->buf, got, name, err);
}

/* An extracted tree: the two class directories, hashed as (name, bytes) in sorted order so that
 * the checksum does not depend on the file system's listing order. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static lra_status load_dir(loader *L, const char *root, char sha256[65], char *err) {
    lra_sha256 h;
    lra_sha256_init(&h);
    lra_status st = LRA_OK;
    for (int c = 0; c < 2 && st == LRA_OK; c++) {
        char dir[4300];
        snprintf(dir, sizeof dir, "%s/%s/%s", root, L->split, c ? "pos" : "neg");
        DIR *d = opendir(dir);
        if (!d) return lra_fail(err, LRA_ERR_IO, "%s: %s", dir, strerror(errno));
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d)) && st == LRA_OK) {
            if (e->d_name[0] == '.') continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 1024;
                char **p = realloc(names, cap * sizeof *p);
                if (!p) { st = lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", dir); break; }
                names = p;
            }
            if (!(names[n] = strdup(e->d_name))) { st = lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", dir); break; }
            n++;
        }
        closedir(d);
        if (names) qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n && st == LRA_OK; i++) {
            char rel[4400], path[8800];
            snprintf(rel, sizeof rel, "%s/%s/%s", L->split, c ? "pos" : "neg", names[i]);
            int32_t label;
            long id;
            if (!parse_member(L, rel, &label, &id)) continue;
            snprintf(path, sizeof path, "%s/%s", root, rel);
            FILE *f = fopen(path, "rb");
            if (!f) { st = lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno)); break; }
            lra_sha256_update(&h, rel, strlen(rel) + 1);
            size_t got = 0, r;
            unsigned char chunk[8192];
            while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) { /* hash all of it, keep max_len */
                lra_sha256_update(&h, chunk, r);
                size_t take = got < (size_t)L->max_len ? (size_t)L->max_len - got : 0;
                if (take > r) take = r;
                memcpy(L->buf + got, chunk, take);
                got += take;
            }
            if (ferror(f)) st = lra_fail(err, LRA_ERR_IO, "%s: read error", path);
            fclose(f);
            if (st == LRA_OK) st = add_review(L, label, id, L->buf, got, path, err);
        }
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
    }
    if (st == LRA_OK) lra_sha256_final_hex(&h, sha256);
    return st;
}

static int cmp_review(const void *a, const void *b) {
    const review *x = a, *y = b;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

lra_status lra_text_load(lra_split *s, const char *source, const char *imdb_split, int max_len, char *err) {
    memset(s, 0, sizeof *s);
    loader L = {.split = imdb_split, .max_len = max_len};
    if (!(L.buf = malloc((size_t)max_len))) return lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", source);
    DIR *d = opendir(source);
    lra_status st;
    if (d) {
        closedir(d);
        st = load_dir(&L, source, s->sha256, err);
    } else {
        st = lra_archive_walk(source, on_member, &L, s->sha256, err);
    }
    if (st == LRA_OK && L.n == 0)
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: no reviews under aclImdb/%s/pos or aclImdb/%s/neg", source,
                      imdb_split, imdb_split);
    if (st == LRA_OK) {
        /* the archive's member order is the archiver's: sort so that every source gives one order */
        qsort(L.r, L.n, sizeof *L.r, cmp_review);
        for (size_t i = 1; i < L.n && st == LRA_OK; i++)
            if (!cmp_review(&L.r[i - 1], &L.r[i]))
                st = lra_fail(err, LRA_ERR_FORMAT, "%s: review %s/%s/%ld_* appears twice", source, imdb_split,
                              L.r[i].label ? "pos" : "neg", L.r[i].id);
    }
    if (st == LRA_OK) {
        s->n = L.n;
        s->tokens = malloc((L.used + 1) * sizeof *s->tokens);
        s->offset = malloc((L.n + 1) * sizeof *s->offset);
        s->labels = malloc(L.n * sizeof *s->labels);
        if (!s->tokens || !s->offset || !s->labels) st = lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", source);
    }
    if (st == LRA_OK) {
        size_t at = 0;
        s->offset[0] = 0;
        for (size_t i = 0; i < L.n; i++) {
            memcpy(s->tokens + at, L.pool + L.r[i].at, L.r[i].len * sizeof *s->tokens);
            at += L.r[i].len;
            s->offset[i + 1] = at;
            s->labels[i] = L.r[i].label;
        }
        snprintf(s->path, sizeof s->path, "%s", source);
    }
    free(L.r);
    free(L.pool);
    free(L.buf);
    if (st != LRA_OK) lra_split_free(s);
    return st;
}

static lra_status text_prepare(const lra_task_cfg *cfg, char *source, size_t n, char *err) {
    char path[4300];
    if (!lra_text_find(cfg->data_dir, path, sizeof path))
        return lra_fail(err, LRA_ERR_IO,
                        "no IMDB reviews under %s (looked for aclImdb/, aclImdb_v1.tar.gz, aclImdb-reviews.tar.gz): "
                        "run `lra-bench fetch --task=text --data-dir=%s` (downloads https://ai.stanford.edu/~amaas/data/"
                        "sentiment/aclImdb_v1.tar.gz, 84 MB, md5-verified, into that directory), or pass --data-dir=DIR "
                        "where DIR holds one of them",
                        cfg->data_dir, cfg->data_dir);
    snprintf(source, n, "%s", path);
    return LRA_OK;
}

static lra_status text_open(lra_split *out, const lra_task_cfg *cfg, int split, char *err) {
    char path[4300];
    if (!lra_text_find(cfg->data_dir, path, sizeof path))
        return lra_fail(err, LRA_ERR_IO, "%s: no IMDB reviews", cfg->data_dir);
    /* the official code evaluates on IMDB test for both validation and test */
    return lra_text_load(out, path, split == LRA_SPLIT_TRAIN ? "train" : "test", cfg->max_len, err);
}

const lra_task_i lra_task_text = {
    .name = "text",
    .title = "Text",
    .help = "IMDB reviews as bytes (+1), 2 classes; train = IMDB train, val = test = IMDB test;\n"
            "           reads aclImdb_v1.tar.gz, aclImdb-reviews.tar.gz or an extracted aclImdb/ in the data\n"
            "           directory (`lra-bench fetch --task=text` downloads the official archive)",
    .published = 64.27,
    .in_average = 1,
    .official = {4, 4, 256, 256, 1024, 32, 1000, 0.05, 8000, 20000, 0.1, "cls", "sin", "rsqrt", 0.1f, 0.1f, 0},
    .repro = {1000, 32, 8000, 20000, 500, 1000}, /* val = test, 25,000 reviews (about 200 s here) */
    .source = {"https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz", "aclImdb_v1.tar.gz", "7c2ac02c03563afcf9b574c7e56c153a", NULL},
    .vocab = TEXT_VOCAB,
    .classes = 2,
    .max_len = TEXT_OFFICIAL_LEN,
    .val_is_test = 1,
    .prepare = text_prepare,
    .open = text_open,
};
