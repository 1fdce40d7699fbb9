/* image.c - the Image task (lra.md, "Tasks"): CIFAR-10 as 1024 grayscale pixels, 10 classes.
 *
 * Tokens are the raw intensities 0-255 (vocabulary 256), row-major. Splits as the official
 * code: train = the first 90% of the 50000 training images (data_batch_1..5 in order), val =
 * the last 10%, test = test_batch. The official code masks token 0, which masks black pixels
 * too: that is --pad-mask=official (the default); --pad-mask=length keeps them.
 *
 * --dataset=fashion-mnist reads Fashion-MNIST's IDX files instead (Debian's dataset-fashion-mnist
 * package installs them; no download needed), padded from 28x28 to 32x32 with black: a clearly
 * labelled substitute for machines without the CIFAR-10 archive. Reports record it and compare
 * keeps it out of CIFAR-10 columns. */
#define _POSIX_C_SOURCE 200809L
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

#include <zlib.h>

#include "../common/sha256.h"
#include "../datasets/archive.h"
#include "../datasets/datadir.h"

enum { PIX = 1024, CIFAR_REC = 3073, CIFAR_PER_BATCH = 10000, CIFAR_TRAIN = 45000, CIFAR_ALL = 50000 };

uint8_t lra_gray(uint8_t r, uint8_t g, uint8_t b) {
    const float s = 1.0f / 255.0f;
    float y = (float)r * s * 0.2989f + (float)g * s * 0.5870f + (float)b * s * 0.1140f;
    return (uint8_t)(y * 255.5f);
}

/* All images are decoded whole into the first n * PIX tokens; image_open then cuts each to the
 * first max_len pixels (row-major) when --max-len asks for fewer than 1024. */
static lra_status split_alloc(lra_split *s, size_t n, const char *where, char *err) {
    s->n = n;
    s->pixels = malloc(n * PIX);
    s->offset = malloc((n + 1) * sizeof *s->offset);
    s->labels = malloc(n * sizeof *s->labels);
    if (!s->pixels || !s->offset || !s->labels) return lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", where);
    for (size_t i = 0; i <= n; i++) s->offset[i] = i * PIX;
    return LRA_OK;
}


/* ---- CIFAR-10 -------------------------------------------------------------------------- */

typedef struct {
    lra_split *s;
    int split;
    const char *source;
    int seen[6]; /* which of data_batch_1..5 (1..5) and test_batch (0) were read */
} cifar_loader;

/* Whether batch (1..5 train, 0 test) holds records of this split: train takes records
 * [0, 45000) of batches 1..5 in order, val [45000, 50000) (all in batch 5), test batch 0. */
static int cifar_uses(int split, int batch) {
    if (split == LRA_SPLIT_TEST) return batch == 0;
    if (split == LRA_SPLIT_VAL) return batch == 5;
    return batch >= 1;
}

/* The split index of record 0 of the batch (may be negative: records before the split's range). */
static long cifar_base(int split, int batch) {
    if (split == LRA_SPLIT_TEST) return 0;
    return (long)(batch - 1) * CIFAR_PER_BATCH - (split == LRA_SPLIT_VAL ? CIFAR_TRAIN : 0);
}

static lra_status cifar_records(cifar_loader *L, int batch, const char *name,
                                ssize_t (*rd)(void *, void *, size_t, char *), void *src, char *err) {
    unsigned char rec[CIFAR_REC];
    const long base = cifar_base(L->split, batch);
    long r = 0;
    for (;; r++) {
        size_t got = 0;
        while (got < CIFAR_REC) {
            ssize_t k = rd(src, rec + got, CIFAR_REC - got, err);
            if (k < 0) return LRA_ERR_FORMAT;
            if (k == 0) break;
            got += (size_t)k;
        }
        if (got == 0) break;
        if (got < CIFAR_REC || r == CIFAR_PER_BATCH)
            return lra_fail(err, LRA_ERR_FORMAT, "%s: %s: not 10000 records of 3073 bytes (label, 1024 R, G, B)",
                            L->source, name);
        if (rec[0] > 9)
            return lra_fail(err, LRA_ERR_FORMAT, "%s: %s: record %ld has label %d (CIFAR-10 labels are 0-9)", L->source,
                            name, r, rec[0]);
        const long at = base + r;
        if (at < 0 || at >= (long)L->s->n) continue;
        uint8_t *t = L->s->pixels + (size_t)at * PIX;
        for (int p = 0; p < PIX; p++) t[p] = lra_gray(rec[1 + p], rec[1 + PIX + p], rec[1 + 2 * PIX + p]);
        L->s->labels[at] = rec[0];
    }
    if (r != CIFAR_PER_BATCH)
        return lra_fail(err, LRA_ERR_FORMAT, "%s: %s: %ld records, expected 10000", L->source, name, r);
    L->seen[batch] = 1;
    return LRA_OK;
}

/* "cifar-10-batches-bin/data_batch_N.bin" -> N, "test_batch.bin" -> 0, else -1 */
static int cifar_batch(const char *name) {
    const char *b = strrchr(name, '/');
    b = b ? b + 1 : name;
    if (strcmp(b, "test_batch.bin") == 0) return 0;
    if (strncmp(b, "data_batch_", 11) == 0 && b[11] >= '1' && b[11] <= '5' && strcmp(b + 12, ".bin") == 0)
        return b[11] - '0';
    return -1;
}

static ssize_t member_rd(void *m, void *buf, size_t n, char *err) { return lra_archive_read(m, buf, n, err); }
static ssize_t file_rd(void *f, void *buf, size_t n, char *err) {
    size_t k = fread(buf, 1, n, f);
    if (k == 0 && ferror(f)) { lra_fail(err, LRA_ERR_IO, "read error"); return -1; }
    return (ssize_t)k;
}

static lra_status cifar_member(void *user, const char *name, int64_t size, lra_archive_member *m, char *err) {
    (void)size;
    cifar_loader *L = user;
    int batch = cifar_batch(name);
    if (batch < 0 || !cifar_uses(L->split, batch)) return LRA_OK;
    return cifar_records(L, batch, name, member_rd, m, err);
}

lra_status lra_cifar_load(lra_split *s, const char *source, int split, char *err) {
    memset(s, 0, sizeof *s);
    const size_t n = split == LRA_SPLIT_TRAIN ? CIFAR_TRAIN : split == LRA_SPLIT_VAL ? CIFAR_ALL - CIFAR_TRAIN : CIFAR_PER_BATCH;
    lra_status st = split_alloc(s, n, source, err);
    cifar_loader L = {.s = s, .split = split, .source = source};
    DIR *d = st == LRA_OK ? opendir(source) : NULL;
    if (d) { /* an extracted cifar-10-batches-bin/: hash the files read, in batch order */
        closedir(d);
        lra_sha256 h;
        lra_sha256_init(&h);
        for (int b = 0; b <= 5 && st == LRA_OK; b++) {
            if (!cifar_uses(split, b)) continue;
            char path[4300];
            if (b) snprintf(path, sizeof path, "%s/data_batch_%d.bin", source, b);
            else snprintf(path, sizeof path, "%s/test_batch.bin", source);
            FILE *f = fopen(path, "rb");
            if (!f) { st = lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno)); break; }
            unsigned char chunk[1 << 16];
            size_t k;
            while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) lra_sha256_update(&h, chunk, k);
            rewind(f);
            st = cifar_records(&L, b, path, file_rd, f, err);
            fclose(f);
        }
        if (st == LRA_OK) lra_sha256_final_hex(&h, s->sha256);
    } else if (st == LRA_OK) {
        st = lra_archive_walk(source, cifar_member, &L, s->sha256, err);
    }
    for (int b = 0; b <= 5 && st == LRA_OK; b++)
        if (cifar_uses(split, b) && !L.seen[b])
            st = lra_fail(err, LRA_ERR_FORMAT, "%s: no cifar-10-batches-bin/%s%.0d.bin", source,
                          b ? "data_batch_" : "test_batch", b);
    if (st != LRA_OK) { lra_split_free(s); return st; }
    snprintf(s->path, sizeof s->path, "%s", source);
    return LRA_OK;
}

/* ---- Fashion-MNIST (IDX) ---------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens dir/name or dir/name.gz (zlib reads both); hashes what it reads. */
typedef struct { gzFile f; lra_sha256 *h; char path[4300]; } idx_file;

static lra_status idx_open(idx_file *x, const char *dir, const char *name, lra_sha256 *h, char *err) {
    x->h = h;
    snprintf(x->path, sizeof x->path, "%s/%s.gz", dir, name);
    if (!lra_file_exists(x->path)) snprintf(x->path, sizeof x->path, "%s/%s", dir, name);
    if (!(x->f = gzopen(x->path, "rb"))) return lra_fail(err, LRA_ERR_IO, "%s: %s", x->path, strerror(errno));
    return LRA_OK;
}

static lra_status idx_read(idx_file *x, void *buf, size_t n, const char *what, char *err) {
    int errnum;
    int k = gzread(x->f, buf, (unsigned)n);
    if (k < 0) return lra_fail(err, LRA_ERR_FORMAT, "%s: corrupt gzip data (%s)", x->path, gzerror(x->f, &errnum));
    if ((size_t)k != n) return lra_fail(err, LRA_ERR_FORMAT, "%s: truncated in the %s", x->path, what);
    lra_sha256_update(x->h, buf, n);
    return LRA_OK;
}

lra_status lra_fmnist_load(lra_split *s, const char *dir, int split, char *err) {
    memset(s, 0, sizeof *s);
    const char *stem = split == LRA_SPLIT_TEST ? "t10k" : "train";
    char iname[64], lname[64];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", stem);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", stem);
    lra_sha256 h;
    lra_sha256_init(&h);
    idx_file im = {0}, lb = {0};
    unsigned char hi[16], hl[8];
    lra_status st = idx_open(&im, dir, iname, &h, err);
    if (st == LRA_OK) st = idx_open(&lb, dir, lname, &h, err);
    if (st == LRA_OK) st = idx_read(&im, hi, 16, "header", err);
    if (st == LRA_OK) st = idx_read(&lb, hl, 8, "header", err);
    if (st == LRA_OK && (be32(hi) != 0x803 || be32(hi + 8) != 28 || be32(hi + 12) != 28))
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: not an IDX file of 28x28 uint8 images (magic 0x%x, %ux%u)", im.path,
                      be32(hi), be32(hi + 8), be32(hi + 12));
    if (st == LRA_OK && be32(hl) != 0x801)
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: not an IDX label file (magic 0x%x)", lb.path, be32(hl));
    uint32_t total = st == LRA_OK ? be32(hi + 4) : 0;
    if (st == LRA_OK && (total == 0 || total > 10000000))
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: its header claims %u images (1 to 10,000,000 expected): damaged", im.path,
                      total);
    if (st == LRA_OK && be32(hl + 4) != total)
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: %u images but %s: %u labels", im.path, total, lb.path, be32(hl + 4));
    /* train/val: the official 90/10 rule applied to the training file */
    size_t lo = 0, hiend = total;
    if (split != LRA_SPLIT_TEST) {
        size_t cut = (size_t)total * 9 / 10;
        lo = split == LRA_SPLIT_TRAIN ? 0 : cut;
        hiend = split == LRA_SPLIT_TRAIN ? cut : total;
    }
    /* storage grows with the images actually read: the header's count is a claim (found by
     * fuzz_idx: a header claiming 6.5 million images asked for 13 GB before reading one) */
    lra_split_caps cap = {0};
    for (size_t i = 0; i < total && st == LRA_OK; i++) {
        unsigned char px[784], label;
        if ((st = idx_read(&im, px, 784, "images", err)) != LRA_OK) break;
        if ((st = idx_read(&lb, &label, 1, "labels", err)) != LRA_OK) break;
        if (label > 9) { st = lra_fail(err, LRA_ERR_FORMAT, "%s: label %d of image %zu is not 0-9", lb.path, label, i); break; }
        if (i < lo || i >= hiend) continue;
        if (!lra_grow((void **)&s->pixels, &cap.tokens, (i - lo + 1) * PIX, 1) ||
            !lra_grow((void **)&s->labels, &cap.labels, i - lo + 1, sizeof *s->labels)) {
            st = lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", im.path);
            break;
        }
        uint8_t *t = s->pixels + (i - lo) * PIX;
        for (int p = 0; p < PIX; p++) {
            int y = p / 32 - 2, x = p % 32 - 2;
            t[p] = y >= 0 && y < 28 && x >= 0 && x < 28 ? px[y * 28 + x] : 0;
        }
        s->labels[i - lo] = label;
    }
    if (im.f) gzclose(im.f);
    if (lb.f) gzclose(lb.f);
    if (st == LRA_OK) {
        s->n = hiend - lo;
        if (!(s->offset = malloc((s->n + 1) * sizeof *s->offset))) st = lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", im.path);
        for (size_t i = 0; st == LRA_OK && i <= s->n; i++) s->offset[i] = i * PIX;
    }
    if (st != LRA_OK) { lra_split_free(s); return st; }
    lra_sha256_final_hex(&h, s->sha256);
    snprintf(s->path, sizeof s->path, "%.4000s", im.path);
    return LRA_OK;
}

/* ---- the task ---------------------------------------------------------------------------- */

static int find_cifar(const char *root, char *out, size_t n) {
    snprintf(out, n, "%s/cifar-10-batches-bin", root);
    DIR *d = opendir(out);
    if (d) { closedir(d); return 1; }
    snprintf(out, n, "%s/cifar-10-binary.tar.gz", root);
    return lra_file_exists(out);
}

static int find_fmnist(const char *root, char *out, size_t n) {
    const char *const dirs[2] = {root, "/usr/share/datasets"};
    for (int i = 0; i < 2; i++) {
        char probe[4400];
        snprintf(out, n, "%s/fashion-mnist", dirs[i]);
        snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", out);
        if (lra_file_exists(probe)) return 1;
        snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte", out);
        if (lra_file_exists(probe)) return 1;
    }
    return 0;
}

static int is_fmnist(const lra_task_cfg *cfg) { return cfg->dataset && strcmp(cfg->dataset, "fashion-mnist") == 0; }

static lra_status image_prepare(const lra_task_cfg *cfg, char *source, size_t n, char *err) {
    char path[4300];
    if (is_fmnist(cfg)) { /* the one alternative in the task's table; config.c refused any other */
        if (!find_fmnist(cfg->data_dir, path, sizeof path))
            return lra_fail(err, LRA_ERR_IO, "no Fashion-MNIST IDX files in %s/fashion-mnist or /usr/share/datasets/"
                            "fashion-mnist: install Debian's dataset-fashion-mnist package (scripts/setup.sh does)",
                            cfg->data_dir);
        snprintf(source, n, "%s (Fashion-MNIST, a substitute for CIFAR-10: not comparable)", path);
        return LRA_OK;
    }
    if (!find_cifar(cfg->data_dir, path, sizeof path))
        return lra_fail(err, LRA_ERR_IO, "no CIFAR-10 under %s (looked for cifar-10-binary.tar.gz and "
                        "cifar-10-batches-bin/): run `lra-bench fetch --task=image` (downloads https://www.cs.toronto.edu/"
                        "~kriz/cifar-10-binary.tar.gz, 163 MB, md5-verified), or run offline on the labelled "
                        "substitute --dataset=fashion-mnist",
                        cfg->data_dir);
    snprintf(source, n, "%s", path);
    return LRA_OK;
}

static lra_status image_open(lra_split *out, const lra_task_cfg *cfg, int split, char *err) {
    char path[4300];
    lra_status st;
    if (is_fmnist(cfg)) {
        if (!find_fmnist(cfg->data_dir, path, sizeof path)) return lra_fail(err, LRA_ERR_IO, "no Fashion-MNIST files");
        st = lra_fmnist_load(out, path, split, err);
    } else {
        if (!find_cifar(cfg->data_dir, path, sizeof path)) return lra_fail(err, LRA_ERR_IO, "%s: no CIFAR-10", cfg->data_dir);
        st = lra_cifar_load(out, path, split, err);
    }
    if (st == LRA_OK) lra_split_keep_first(out, PIX, cfg->max_len);
    return st;
}

const lra_task_i lra_task_image = {
    .name = "image",
    .title = "Image",
    .help = "CIFAR-10 grayscale, 10 classes, 45000/5000/10000, from cifar-10-binary.tar.gz (fetch\n"
            "           --task=image), --pad-mask=official|length; or\n"
            "           --dataset=fashion-mnist (Debian's dataset-fashion-mnist, a labelled substitute)",
    .published = 42.44,
    .in_average = 1,
    .datasets = (const lra_task_dataset[]){{"fashion-mnist", "fashion-mnist: a stand-in for CIFAR-10, not comparable "
                                                              "with LRA Image", 0},
                                            {0}},
    .official = {1, 8, 128, 64, 128, 256, 1024, 5e-4, 175, 35000, 0, "cls", "learned", "cosine", 0.3f, 0.2f, 0},
    .repro = {1024, 256, 175, 35000, 175, 175},
    /* the CI size (docs/ci.md): the common small model on the first 256 pixels, 3000 steps; full
     * reaches about 52% on Fashion-MNIST (chance 10%) in under a minute */
    .ci = {.steps = 3000, .warmup = 100, .lr = 3e-3},
    .source = {"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", NULL},
    .vocab = 256,
    .classes = 10,
    .max_len = PIX,
    .prepare = image_prepare,
    .open = image_open,
};
