/* pathfinder.c - Pathfinder (lra.md, "Tasks"): 32x32 images of dashed curves, 2 classes: are the
 * two markers on one curve? The LRA "hard" set, curv_contour_length_14; split by line order of
 * the metadata files, 80/10/10. Metadata files are plain text despite their .npy name.
 *
 * With no data found, the offline generator (datasets/pathfinder_gen.c) writes a set of the
 * official layout first; reports say the data was generated. Path-X is the same at 128 x 128. */
#define _POSIX_C_SOURCE 200809L
#include "pathfinder.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/sha256.h"
#include "../datasets/archive.h"
#include "../datasets/datadir.h"
#include "../datasets/pathfinder_gen.h"
#include "../datasets/png.h"

enum { PF_DEFAULT_IMAGES = 200000 };

int lra_pathfinder_find(const char *data_dir, int size, char *out, size_t n) {
    static const char *const pre[] = {"", "/lra_release", "/lra_release/lra_release"};
    for (int i = 0; i < 3; i++) {
        char probe[4400];
        snprintf(out, n, "%s%s/pathfinder%d/curv_contour_length_14", data_dir, pre[i], size);
        snprintf(probe, sizeof probe, "%s/metadata", out);
        DIR *d = opendir(probe);
        if (d) { closedir(d); return 1; }
    }
    return 0;
}

typedef struct { char *rel; int32_t label; } entry; /* rel: "imgs/<b>/sample_<k>.png" */

typedef struct { long num; char *name; } metafile;

static int cmp_meta(const void *a, const void *b) {
    const metafile *x = a, *y = b;
    return (x->num > y->num) - (x->num < y->num);
}

/* Reads every metadata line (in file-number order) into entries; hashes the metadata bytes. */
static lra_status read_metadata(const char *root, entry **out, size_t *count, lra_sha256 *h, char *err) {
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/metadata", root);
    DIR *d = opendir(dir);
    if (!d) return lra_fail(err, LRA_ERR_IO, "%s: %s", dir, strerror(errno));
    metafile *files = NULL;
    size_t nf = 0, capf = 0;
    lra_status st = LRA_OK;
    struct dirent *de;
    while ((de = readdir(d)) && st == LRA_OK) {
        const char *dot = strrchr(de->d_name, '.');
        char *end;
        long num = strtol(de->d_name, &end, 10);
        if (!dot || strcmp(dot, ".npy") != 0 || end != dot || end == de->d_name) continue;
        if (nf == capf) {
            capf = capf ? 2 * capf : 256;
            metafile *p = realloc(files, capf * sizeof *p);
            if (!p) { st = lra_fail(err, LRA_ERR_NOMEM, "out of memory"); break; }
            files = p;
        }
        files[nf].num = num;
        if (!(files[nf++].name = strdup(de->d_name))) st = lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    }
    closedir(d);
    if (st == LRA_OK && nf == 0) st = lra_fail(err, LRA_ERR_FORMAT, "%s: no metadata files (<n>.npy)", dir);
    if (files) qsort(files, nf, sizeof *files, cmp_meta);
    entry *e = NULL;
    size_t ne = 0, cape = 0, linecap = 0;
    char *line = NULL;
    for (size_t f = 0; f < nf && st == LRA_OK; f++) {
        char path[4700];
        snprintf(path, sizeof path, "%s/%s", dir, files[f].name);
        FILE *fp = fopen(path, "rb");
        if (!fp) { st = lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno)); break; }
        ssize_t got;
        long lineno = 0;
        while (st == LRA_OK && (got = getline(&line, &linecap, fp)) > 0) {
            lra_sha256_update(h, line, (size_t)got);
            lineno++;
            char *field[4], *save = NULL;
            int nfld = 0;
            for (char *t = strtok_r(line, " \t\r\n", &save); t && nfld < 4; t = strtok_r(NULL, " \t\r\n", &save))
                field[nfld++] = t;
            if (nfld == 0) continue;
            if (nfld < 4) {
                st = lra_fail(err, LRA_ERR_FORMAT, "%s:%ld: %d fields, expected 'imgs/<n> sample_<k>.png <k> <label> ...'",
                              path, lineno, nfld);
                break;
            }
            if (strcmp(field[3], "0") != 0 && strcmp(field[3], "1") != 0) {
                st = lra_fail(err, LRA_ERR_FORMAT, "%s:%ld: label '%s' is not 0 or 1", path, lineno, field[3]);
                break;
            }
            char rel[4200];
            snprintf(rel, sizeof rel, "%s/%s", field[0], field[1]);
            if (!lra_archive_name_safe(rel)) {
                st = lra_fail(err, LRA_ERR_FORMAT, "%s:%ld: image path '%s' leaves the data directory", path, lineno, rel);
                break;
            }
            if (ne == cape) {
                cape = cape ? 2 * cape : 4096;
                entry *p = realloc(e, cape * sizeof *p);
                if (!p) { st = lra_fail(err, LRA_ERR_NOMEM, "out of memory"); break; }
                e = p;
            }
            e[ne].label = field[3][0] - '0';
            if (!(e[ne++].rel = strdup(rel))) st = lra_fail(err, LRA_ERR_NOMEM, "out of memory");
        }
        fclose(fp);
    }
    free(line);
    for (size_t f = 0; f < nf; f++) free(files[f].name);
    free(files);
    if (st == LRA_OK && ne == 0) st = lra_fail(err, LRA_ERR_FORMAT, "%s: the metadata lists no images", dir);
    *out = e;
    *count = ne;
    return st;
}

/* Whole file into a reusable buffer; -1 on error. */
static long slurp(const char *path, unsigned char **buf, size_t *cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = 0, k;
    for (;;) {
        if (n == *cap) {
            size_t c = *cap ? 2 * *cap : 4096;
            unsigned char *p = realloc(*buf, c);
            if (!p) { fclose(f); return -1; }
            *buf = p;
            *cap = c;
        }
        if ((k = fread(*buf + n, 1, *cap - n, f)) == 0) break;
        n += k;
    }
    int bad = ferror(f);
    fclose(f);
    return bad ? -1 : (long)n;
}

lra_status lra_pathfinder_load(lra_split *s, const char *root, int size, int split, int quiet, char *err) {
    memset(s, 0, sizeof *s);
    lra_sha256 h;
    lra_sha256_init(&h);
    entry *e = NULL;
    size_t ne = 0;
    lra_status st = read_metadata(root, &e, &ne, &h, err);
    const size_t cut1 = ne * 8 / 10, cut2 = ne * 9 / 10;
    const size_t lo = split == LRA_SPLIT_TRAIN ? 0 : split == LRA_SPLIT_VAL ? cut1 : cut2;
    const size_t hi = split == LRA_SPLIT_TRAIN ? cut1 : split == LRA_SPLIT_VAL ? cut2 : ne;
    const size_t P = (size_t)size * size;
    if (st == LRA_OK) {
        s->pixels = malloc((hi - lo) * P + 1);
        s->offset = malloc((hi - lo + 1) * sizeof *s->offset);
        s->labels = malloc((hi - lo) * sizeof *s->labels + 1);
        if (!s->pixels || !s->offset || !s->labels) st = lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", root);
    }
    unsigned char *buf = NULL, *px = malloc(P);
    size_t cap = 0;
    char first_bad[LRA_ERR_LEN] = "";
    if (!px && st == LRA_OK) st = lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    if (st == LRA_OK) s->offset[0] = 0;
    for (size_t i = lo; i < hi && st == LRA_OK; i++) {
        char path[4400], why[LRA_ERR_LEN];
        snprintf(path, sizeof path, "%s/%s", root, e[i].rel);
        long n = slurp(path, &buf, &cap);
        lra_status ok = n < 0 ? lra_fail(why, LRA_ERR_IO, "%s: %s", path, strerror(errno))
                              : lra_png_decode_gray(buf, (size_t)n, px, size, size, path, why);
        if (n > 0) lra_sha256_update(&h, buf, (size_t)n);
        if (ok != LRA_OK) { /* the official set has empty images (sample_172.png): skip, count */
            if (!s->skipped) snprintf(first_bad, sizeof first_bad, "%s", why);
            s->skipped++;
            continue;
        }
        memcpy(s->pixels + s->n * P, px, P);
        s->labels[s->n] = e[i].label;
        s->offset[s->n + 1] = (s->n + 1) * P;
        s->n++;
    }
    if (st == LRA_OK && s->n == 0)
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: no readable image in the %s split (%zu skipped; first: %s)", root,
                      lra_split_names[split], s->skipped, first_bad);
    if (st == LRA_OK && s->skipped && !quiet)
        fprintf(stderr, "lra-bench: warning: pathfinder %s: skipped %zu empty or unreadable image%s (first: %s)\n",
                lra_split_names[split], s->skipped, s->skipped > 1 ? "s" : "", first_bad);
    for (size_t i = 0; i < ne; i++) free(e[i].rel);
    free(e);
    free(buf);
    free(px);
    if (st != LRA_OK) { lra_split_free(s); return st; }
    lra_sha256_final_hex(&h, s->sha256);
    snprintf(s->path, sizeof s->path, "%s", root);
    return LRA_OK;
}

/* A set directory without metadata/ is a partial set (a deleted folder, an interrupted copy), not
 * a missing one: generating over it would fail late on the rename, or mix two sets. */
static lra_status refuse_partial(const char *data_dir, int size, char *err) {
    static const char *const pre[] = {"", "/lra_release", "/lra_release/lra_release"};
    for (int i = 0; i < 3; i++) {
        char root[4400];
        snprintf(root, sizeof root, "%s%s/pathfinder%d/curv_contour_length_14", data_dir, pre[i], size);
        DIR *d = opendir(root);
        if (!d) continue;
        char held[256] = "";
        size_t used = 0;
        for (struct dirent *e; (e = readdir(d)) && used < sizeof held - 40;)
            if (e->d_name[0] != '.') {
                char sub[4700];
                struct stat sb;
                snprintf(sub, sizeof sub, "%s/%s", root, e->d_name);
                const int is_dir = stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode);
                used += (size_t)snprintf(held + used, sizeof held - used, "%s%s%s", used ? ", " : "", e->d_name,
                                         is_dir ? "/" : "");
            }
        closedir(d);
        return lra_fail(err, LRA_ERR_FORMAT, "%s holds %s but no metadata/: a partial Pathfinder set (complete it, or "
                        "remove it and lra-bench generates a new one)", root, used ? held : "nothing");
    }
    return LRA_OK;
}

static lra_status prepare_size(const lra_task_cfg *cfg, int size, char *source, size_t n, char *err) {
    char root[4300];
    unsigned long long seed;
    if (lra_pathfinder_find(cfg->data_dir, size, root, sizeof root)) {
        if (lra_generated_seed(root, &seed, NULL, 0))
            snprintf(source, n, "generated by lra-bench's Pathfinder generator (%d px, seed %llu) in %s", size, seed, root);
        else snprintf(source, n, "%s", root);
        return LRA_OK;
    }
    lra_status st = refuse_partial(cfg->data_dir, size, err);
    if (st != LRA_OK) return st;
    if (cfg->no_generate)
        return lra_fail(err, LRA_ERR_USAGE, "no pathfinder%d data under %s, and the run being resumed read files "
                        "lra-bench did not generate (its checkpoint's data_source): give --data-dir= where they are; "
                        "nothing was generated", size, cfg->data_dir);
    snprintf(root, sizeof root, "%s/pathfinder%d/curv_contour_length_14", cfg->data_dir, size);
    lra_pathfinder_gen_cfg g;
    lra_pathfinder_gen_defaults(&g, size, PF_DEFAULT_IMAGES);
    g.seed = cfg->data_seed;
    if (!cfg->quiet)
        fprintf(stderr, "lra-bench: no pathfinder%d data found under %s; generating %ld images (%d px, contour "
                        "length 14, generator seed %llu) into %s\n",
                size, cfg->data_dir, g.n_images, size, (unsigned long long)g.seed, root);
    st = lra_pathfinder_generate(root, &g, cfg->quiet, err);
    if (st != LRA_OK) return st;
    snprintf(source, n, "generated by lra-bench's Pathfinder generator (%d px, seed %llu) in %s", size,
             (unsigned long long)g.seed, root);
    return LRA_OK;
}

static lra_status open_size(lra_split *out, const lra_task_cfg *cfg, int size, int split, char *err) {
    char root[4300];
    const int P = size * size;
    if (!lra_pathfinder_find(cfg->data_dir, size, root, sizeof root))
        return lra_fail(err, LRA_ERR_IO, "%s: no pathfinder%d/curv_contour_length_14", cfg->data_dir, size);
    lra_status st = lra_pathfinder_load(out, root, size, split, cfg->quiet, err);
    if (st == LRA_OK) lra_split_keep_first(out, P, cfg->max_len); /* the first max_len pixels (ci profile) */
    return st;
}

static lra_status pf_prepare(const lra_task_cfg *cfg, char *source, size_t n, char *err) {
    return prepare_size(cfg, 32, source, n, err);
}
static lra_status pf_open(lra_split *out, const lra_task_cfg *cfg, int split, char *err) {
    return open_size(out, cfg, 32, split, err);
}
static lra_status px_prepare(const lra_task_cfg *cfg, char *source, size_t n, char *err) {
    return prepare_size(cfg, 128, source, n, err);
}
static lra_status px_open(lra_split *out, const lra_task_cfg *cfg, int split, char *err) {
    return open_size(out, cfg, 128, split, err);
}

/* `lra-bench generate --task=pathfinder|pathx`: a set of size-px images (--images, --contour) under
 * o->out/pathfinder<size>/curv_contour_length_<contour>, or with --preview a sheet of the first 16. */
static lra_status generate_size(const lra_generate_opts *o, int size, char *err) {
    lra_pathfinder_gen_cfg pf;
    lra_pathfinder_gen_defaults(&pf, size, o->images ? o->images : PF_DEFAULT_IMAGES);
    pf.seed = o->seed;
    if (o->contour) pf.contour_length = o->contour;
    if (o->preview) { /* the first 16 images on one sheet, for eyes */
        int labels[16];
        lra_status st = lra_pathfinder_contact_sheet(o->preview, &pf, size >= 128 ? 2 : 8, labels, err);
        if (st != LRA_OK) return st;
        fprintf(stderr, "lra-bench: wrote %s; labels row by row:", o->preview);
        for (int i = 0; i < 16; i++) fprintf(stderr, "%s%d", i % 4 ? " " : i ? " | " : " ", labels[i]);
        fprintf(stderr, "\n");
        return LRA_OK;
    }
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/pathfinder%d/curv_contour_length_%d", o->out, size, pf.contour_length);
    struct stat sb;
    if (stat(dir, &sb) == 0) /* whole or partial: generating over it would fail late */
        return lra_fail(err, LRA_ERR_IO, "%s exists; remove it first", dir);
    lra_status st = lra_mkdirs(o->out, err);
    if (st != LRA_OK) return st;
    fprintf(stderr, "lra-bench: generating pathfinder into %s (Ctrl-C stops it, keeping nothing)\n", dir);
    if ((st = lra_pathfinder_generate(dir, &pf, 0, err)) != LRA_OK) return st;
    fprintf(stderr, "lra-bench: wrote %ld images (%d px, contour length %d, seed %llu) to %s\n", pf.n_images, size,
            pf.contour_length, (unsigned long long)pf.seed, dir);
    return LRA_OK;
}
static lra_status pf_generate(const lra_generate_opts *o, char *err) { return generate_size(o, 32, err); }
static lra_status px_generate(const lra_generate_opts *o, char *err) { return generate_size(o, 128, err); }

static const char *const pathfinder_part[] = {"/pathfinder32/curv_contour_length_14/", NULL};
const lra_task_i lra_task_pathfinder = {
    .name = "pathfinder",
    .title = "Pathfinder",
    .help = "pathfinder32/curv_contour_length_14 (metadata/*.npy + imgs/), 80/10/10 by line;\n"
            "           when none is found, lra-bench's generator writes 200000 images there first",
    .published = 71.40,
    .in_average = 1,
    .official = {4, 4, 32, 16, 32, 512, 1024, 1e-3, 312, 62400, 0, "mean", "sin", "cosine", 0.2f, 0.1f, 0},
    .repro = {1024, 256, 312, 62400, 312, 312},
    .source = {LRA_RELEASE_URL, "lra_release.gz", NULL, pathfinder_part},
    .vocab = 256,
    .classes = 2,
    .max_len = 1024,
    .generate_options = "images,contour,preview",
    .generate = pf_generate,
    .prepare = pf_prepare,
    .open = pf_open,
};

/* Path-X: the same task at 128 x 128 (T = 16384), pathfinder128/curv_contour_length_14. */
static const char *const pathx_part[] = {"/pathfinder128/curv_contour_length_14/", NULL};
const lra_task_i lra_task_pathx = {
    .name = "pathx",
    .title = "Path-X",
    .help = "the same at 128 x 128 (T = 16384): pathfinder128/curv_contour_length_14, generated the\n"
            "           same way when absent (geometry scaled from 32 px; about 16 ms an image)",
    .published = NAN,
    .in_average = 0,
    .official = {1, 2, 32, 16, 32, 64, 16384, 1e-3, 2500, 500000, 0, "mean", "learned", "cosine", 0.1f, 0.1f, 1.0},
    .repro = {16384, 32, 312, 62400, 312, 1248}, /* not in the recipe: Pathfinder's run, batch 32 */
    .source = {LRA_RELEASE_URL, "lra_release.gz", NULL, pathx_part},
    .vocab = 256,
    .classes = 2,
    .max_len = 16384,
    .generate_options = "images,contour,preview",
    .generate = px_generate,
    .prepare = px_prepare,
    .open = px_open,
};
