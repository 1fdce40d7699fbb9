/* pathfinder_gen.c - see pathfinder_gen.h. Drawing happens on a canvas at twice the output
 * resolution (the antialias scale 2 of lra.md) and is box-filtered down.
 *
 * LRA's 32 px parameters (lra.md), in output pixels: paddle length 2, gap (margin) 1, marker
 * radius 1.5, seed distance 7 (the least distance between the two markers), continuity 1.0 (here:
 * each paddle turns at most 36 degrees from the last), distractor length contour/3, number of
 * distractors 20 / distractor length, paddle intensity 0.75 (contrast), markers 1.0. Strokes are
 * one output pixel wide with flat ends: lra.md's "thickness 0.5 at antialias scale 2" drawn as
 * half a pixel comes out at a third of the reference images' brightness and without their visible
 * gaps (pathfinder32-reference.png); one pixel matches them. Path-X scales every length by size/32. */
#define _POSIX_C_SOURCE 200809L
#include "pathfinder_gen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "datadir.h"
#include "png.h"

enum { AA = 2, MAX_SIDE = 512 };

typedef struct {
    int W;                    /* canvas side = size * AA */
    float len, gap, thick, marker, seed_dist, max_turn, contrast;
    float *ink;               /* (W, W) stroke coverage, 0..1 */
    int32_t *owner;           /* (W, W) paddle id + 1 occupying a pixel (with the margin), 0 free */
} canvas;

/* Paints a segment's coverage (antialiased by distance) into ink, or only tests whether its
 * margin-dilated footprint is free of paddles other than ids skip..id (test != 0): a snake's
 * own last two paddles are its neighbours, not obstacles (at the full margin, the paddle two back
 * is exactly as far as a straight continuation allows, so any turn would hit it). Returns 0 when the
 * footprint leaves the canvas or hits another paddle. */
static int segment(canvas *cv, float x0, float y0, float x1, float y1, int id, int skip, int test) {
    const float r = cv->thick * 0.5f, reach = test ? r + 2 * cv->gap : r + 0.5f; /* see claim() */
    const float dx = x1 - x0, dy = y1 - y0, l2 = dx * dx + dy * dy;
    int xa = (int)floorf(fminf(x0, x1) - reach), xb = (int)ceilf(fmaxf(x0, x1) + reach);
    int ya = (int)floorf(fminf(y0, y1) - reach), yb = (int)ceilf(fmaxf(y0, y1) + reach);
    if (test && (fminf(x0, x1) - r < 1 || fminf(y0, y1) - r < 1 || fmaxf(x0, x1) + r > cv->W - 1 ||
                 fmaxf(y0, y1) + r > cv->W - 1))
        return 0;
    for (int y = ya < 0 ? 0 : ya; y <= yb && y < cv->W; y++)
        for (int x = xa < 0 ? 0 : xa; x <= xb && x < cv->W; x++) {
            const float px = x + 0.5f - x0, py = y + 0.5f - y0;
            const float tu = l2 > 0 ? (px * dx + py * dy) / l2 : 0, t = tu < 0 ? 0 : tu > 1 ? 1 : tu;
            const float ex = px - t * dx, ey = py - t * dy, d = sqrtf(ex * ex + ey * ey);
            int32_t *o = &cv->owner[y * cv->W + x];
            if (test) {
                if (d <= reach && *o && (*o - 1 < skip || *o - 1 > id)) return 0;
            } else {
                /* a flat-ended stroke: full inside, ramping to 0 over one canvas pixel across its
                 * sides and its ends, so the gaps between paddles stay dark */
                const float L = sqrtf(l2), along = tu * L, qx = px - tu * dx, qy = py - tu * dy;
                float side = r + 0.5f - sqrtf(qx * qx + qy * qy), end = fminf(0.5f + along, 0.5f + L - along);
                side = side > 1 ? 1 : side;
                end = end > 1 ? 1 : end;
                const float cover = side > 0 && end > 0 ? side * end : 0;
                if (cover * cv->contrast > cv->ink[y * cv->W + x]) cv->ink[y * cv->W + x] = cover * cv->contrast;
            }
        }
    return 1;
}

/* Marks a paddle's footprint (with the margin) as taken. */
static void claim(canvas *cv, float x0, float y0, float x1, float y1, int id) {
    const float reach = cv->thick * 0.5f + cv->gap;
    const float dx = x1 - x0, dy = y1 - y0, l2 = dx * dx + dy * dy;
    for (int y = (int)floorf(fminf(y0, y1) - reach); y <= (int)ceilf(fmaxf(y0, y1) + reach); y++)
        for (int x = (int)floorf(fminf(x0, x1) - reach); x <= (int)ceilf(fmaxf(x0, x1) + reach); x++) {
            if (x < 0 || y < 0 || x >= cv->W || y >= cv->W) continue;
            const float px = x + 0.5f - x0, py = y + 0.5f - y0;
            float t = l2 > 0 ? (px * dx + py * dy) / l2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            const float ex = px - t * dx, ey = py - t * dy;
            if (ex * ex + ey * ey <= reach * reach && !cv->owner[y * cv->W + x]) cv->owner[y * cv->W + x] = id + 1;
        }
}

typedef struct { float x0, y0, x1, y1; } paddle;

/* Grows one snake of n paddles from a random start: each paddle turns from the last by at most
 * max_turn, the next starts one gap further on; a paddle that would touch another snake (or its
 * own earlier paddles) is redrawn, and the snake is abandoned after too many redraws. On success
 * the paddles are drawn and claimed, and the two end points are returned. */
static int snake(canvas *cv, lra_rng *r, int n, int *next_id, float ends[4]) {
    paddle p[64];
    if (n > 64) return 0;
    float x = 1 + (float)lra_rng_uniform(r) * (cv->W - 2), y = 1 + (float)lra_rng_uniform(r) * (cv->W - 2);
    float th = (float)(2 * LRA_PI * lra_rng_uniform(r));
    const int base = *next_id;
    for (int i = 0; i < n; i++) {
        int ok = 0;
        for (int tries = 0; tries < 16 && !ok; tries++) {
            float t = i == 0 ? th : th + (float)((2 * lra_rng_uniform(r) - 1) * cv->max_turn);
            float sx = i == 0 ? x : p[i - 1].x1 + cv->gap * cosf(t), sy = i == 0 ? y : p[i - 1].y1 + cv->gap * sinf(t);
            paddle c = {sx, sy, sx + cv->len * cosf(t), sy + cv->len * sinf(t)};
            if (segment(cv, c.x0, c.y0, c.x1, c.y1, base + i, base + (i >= 2 ? i - 2 : 0), 1)) {
                p[i] = c;
                th = t;
                ok = 1;
                claim(cv, c.x0, c.y0, c.x1, c.y1, base + i); /* its own next paddle may touch it */
            }
        }
        if (!ok) { /* give the claimed footprint back */
            for (int k = 0; k < cv->W * cv->W; k++)
                if (cv->owner[k] > base) cv->owner[k] = 0;
            return 0;
        }
    }
    for (int i = 0; i < n; i++) segment(cv, p[i].x0, p[i].y0, p[i].x1, p[i].y1, base + i, base + i, 0);
    *next_id = base + n;
    ends[0] = p[0].x0; ends[1] = p[0].y0; ends[2] = p[n - 1].x1; ends[3] = p[n - 1].y1;
    return 1;
}

static void disk(canvas *cv, float cx, float cy, float rad) {
    for (int y = (int)(cy - rad - 1); y <= (int)(cy + rad + 1); y++)
        for (int x = (int)(cx - rad - 1); x <= (int)(cx + rad + 1); x++) {
            if (x < 0 || y < 0 || x >= cv->W || y >= cv->W) continue;
            float d = hypotf(x + 0.5f - cx, y + 0.5f - cy), cover = rad + 0.5f - d;
            cover = cover > 1 ? 1 : cover;
            if (cover > cv->ink[y * cv->W + x]) cv->ink[y * cv->W + x] = cover;
        }
}

/* Whether a marker's disk (with the margin) stays clear of every snake but its own (paddle ids
 * lo..hi); then claims it for paddle `own`, so that later distractors keep their distance too. */
static int marker_fits(canvas *cv, float cx, float cy, int lo, int hi, int own) {
    const float rad = cv->marker + cv->gap;
    for (int pass = 0; pass < 2; pass++)
        for (int y = (int)floorf(cy - rad); y <= (int)ceilf(cy + rad); y++)
            for (int x = (int)floorf(cx - rad); x <= (int)ceilf(cx + rad); x++) {
                if (x < 0 || y < 0 || x >= cv->W || y >= cv->W || hypotf(x + 0.5f - cx, y + 0.5f - cy) > rad) continue;
                int32_t *o = &cv->owner[y * cv->W + x];
                if (pass == 0 && *o && (*o - 1 < lo || *o - 1 > hi)) return 0;
                if (pass == 1 && !*o) *o = own + 1;
            }
    return 1;
}

void lra_pathfinder_gen_defaults(lra_pathfinder_gen_cfg *c, int size, long n) {
    c->size = size;
    c->contour_length = 14;
    c->n_images = n;
    c->per_batch = 1000;
    c->seed = 1;
}

int lra_pathfinder_draw(lra_rng *r, const lra_pathfinder_gen_cfg *c, int label, uint8_t *img) {
    static _Thread_local float ink[MAX_SIDE * MAX_SIDE];
    static _Thread_local int32_t owner[MAX_SIDE * MAX_SIDE];
    const float s = (float)c->size / 32.0f * AA;
    canvas cv = {c->size * AA, 2 * s, 1 * s, 1.0f * s, 1.5f * s, 7 * s, 1.0f * (float)(LRA_PI / 5), 0.75f, ink, owner};
    if (cv.W > MAX_SIDE) return -1;
    const int dlen = c->contour_length / 3 > 0 ? c->contour_length / 3 : 1, ndis = 20 / dlen;
    for (int attempt = 0; attempt < 50; attempt++) {
        memset(ink, 0, sizeof(float) * cv.W * cv.W);
        memset(owner, 0, sizeof(int32_t) * cv.W * cv.W);
        int id = 0, ok = 1;
        float a[4], b[4], d[4];
        for (int t = 0; t < 20 && !snake(&cv, r, c->contour_length, &id, a); t++)
            if (t == 19) ok = 0;
        for (int t = 0; ok && t < 20 && !snake(&cv, r, c->contour_length, &id, b); t++)
            if (t == 19) ok = 0;
        if (!ok) continue;
        /* markers: both ends of snake a (label 1), or one end of each (label 0), far enough apart */
        const int L = c->contour_length, bend = (int)(lra_rng_u64(r) & 1);
        const float *m1 = a, *m2 = label ? a + 2 : b + 2 * bend;
        if (hypotf(m1[0] - m2[0], m1[1] - m2[1]) < cv.seed_dist) continue;
        /* a marker touching the other snake would join the two curves: place the image again */
        if (!marker_fits(&cv, m1[0], m1[1], 0, L - 1, 0)) continue;
        if (label ? !marker_fits(&cv, m2[0], m2[1], 0, L - 1, L - 1)
                  : !marker_fits(&cv, m2[0], m2[1], L, 2 * L - 1, bend ? 2 * L - 1 : L))
            continue;
        for (int k = 0; k < ndis; k++) /* distractors: placed where they fit, never required */
            for (int t = 0; t < 10 && !snake(&cv, r, dlen, &id, d); t++) {}
        disk(&cv, m1[0], m1[1], cv.marker);
        disk(&cv, m2[0], m2[1], cv.marker);
        for (int y = 0; y < c->size; y++)
            for (int x = 0; x < c->size; x++) {
                float v = 0;
                for (int dy = 0; dy < AA; dy++)
                    for (int dx = 0; dx < AA; dx++) v += ink[(y * AA + dy) * cv.W + x * AA + dx];
                img[y * c->size + x] = (uint8_t)lrintf(v / (AA * AA) * 255.0f);
            }
        return 0;
    }
    return -1;
}

/* One batch: imgs/<b>/sample_<k>.png and metadata/<b>.npy under part. */
static lra_status write_batch(const char *part, const lra_pathfinder_gen_cfg *c, long b, uint8_t *img, char *err) {
    char path[4400];
    snprintf(path, sizeof path, "%s/imgs/%ld", part, b);
    lra_status st = lra_mkdirs(path, err);
    if (st != LRA_OK) return st;
    snprintf(path, sizeof path, "%s/metadata/%ld.npy", part, b);
    FILE *meta = fopen(path, "wb");
    if (!meta) return lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno));
    for (long k = 0; k < c->per_batch && b * c->per_batch + k < c->n_images && st == LRA_OK; k++) {
        const long i = b * c->per_batch + k;
        if (lra_stop_requested()) { /* polled per image (a few ms): Ctrl-C answers within a second */
            st = lra_fail(err, LRA_ERR_INTERRUPTED, "interrupted while generating %s; nothing of it was kept", part);
            break;
        }
        const int label = (int)((i + 1) & 1);
        lra_rng r;
        lra_rng_seed(&r, lra_stream(c->seed, 0x9a7f, (uint64_t)i)); /* image i is a function of (seed, i) */
        while (lra_pathfinder_draw(&r, c, label, img) != 0) {}
        snprintf(path, sizeof path, "%s/imgs/%ld/sample_%ld.png", part, b, k);
        if ((st = lra_png_write_gray(path, img, c->size, c->size, err)) != LRA_OK) break;
        /* the official columns: subpath, file, index, label, continuity, contour length,
         * distractor length, paddle length, thickness, margin, number of contrasts */
        fprintf(meta, "imgs/%ld sample_%ld.png %ld %d 1.0 %d %d 2 1.0 1 1\n", b, k, k, label, c->contour_length,
                c->contour_length / 3);
    }
    if (fclose(meta) != 0 && st == LRA_OK) st = lra_fail(err, LRA_ERR_IO, "%s/metadata/%ld.npy: write failed", part, b);
    return st;
}

lra_status lra_pathfinder_generate(const char *dir, const lra_pathfinder_gen_cfg *c, int quiet, char *err) {
    if (c->size < 8 || c->size * AA > MAX_SIDE || c->contour_length < 1 || c->contour_length > 64 || c->n_images < 1 ||
        c->per_batch < 1)
        return lra_fail(err, LRA_ERR_USAGE, "pathfinder generator: size %d, contour length %d, %ld images: out of range",
                        c->size, c->contour_length, c->n_images);
    char part[4200], path[4400];
    snprintf(part, sizeof part, "%s.partial", dir);
    snprintf(path, sizeof path, "%s/metadata", part);
    lra_status st = lra_rmtree(part, err); /* what an interrupted generation left */
    if (st == LRA_OK) st = lra_mkdirs(path, err);
    if (st != LRA_OK) return st;
    const long nb = (c->n_images + c->per_batch - 1) / c->per_batch;
    long done = 0;
    int failed = 0;
    double t0 = lra_now();
    /* batches in parallel: every image depends only on (seed, index), so the files do not
     * depend on the thread count; the first error (in batch order) is the one reported */
#pragma omp parallel
    {
        uint8_t *img = malloc((size_t)c->size * c->size);
        char e[LRA_ERR_LEN];
#pragma omp for schedule(dynamic)
        for (long b = 0; b < nb; b++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop) continue;
            lra_status s = img ? write_batch(part, c, b, img, e) : lra_fail(e, LRA_ERR_NOMEM, "out of memory");
#pragma omp critical
            {
                if (s != LRA_OK && !failed) {
                    failed = 1;
                    st = s;
                    if (err) snprintf(err, LRA_ERR_LEN, "%s", e);
                }
                done++;
                if (!quiet && done % 10 == 0)
                    fprintf(stderr, "\rpathfinder: %ld/%ld images (%.0f s)", done * c->per_batch, c->n_images,
                            lra_now() - t0);
            }
        }
        free(img);
    }
    if (!quiet && nb >= 10) fprintf(stderr, "\n");
    if (st == LRA_OK) st = lra_generated_mark(part, (unsigned long long)c->seed, NULL, err);
    if (st == LRA_OK && rename(part, dir) != 0)
        st = lra_fail(err, LRA_ERR_IO, "rename %s -> %s: %s", part, dir, strerror(errno));
    if (st != LRA_OK) lra_rmtree(part, NULL); /* a full disk: give the space back, leave nothing half-made */
    return st;
}

lra_status lra_pathfinder_contact_sheet(const char *path, const lra_pathfinder_gen_cfg *c, int scale, int *labels,
                                        char *err) {
    const int S = c->size, cell = S * scale + 4, W = 4 * cell;
    uint8_t *sheet = malloc((size_t)W * W), *img = malloc((size_t)S * S);
    if (!sheet || !img) { free(sheet); free(img); return lra_fail(err, LRA_ERR_NOMEM, "out of memory"); }
    memset(sheet, 48, (size_t)W * W);
    for (int i = 0; i < 16; i++) { /* exactly the first 16 images lra_pathfinder_generate writes */
        const int label = (i + 1) & 1;
        lra_rng r;
        lra_rng_seed(&r, lra_stream(c->seed, 0x9a7f, (uint64_t)i));
        while (lra_pathfinder_draw(&r, c, label, img) != 0) {}
        if (labels) labels[i] = label;
        const int ox = (i % 4) * cell + 2, oy = (i / 4) * cell + 2;
        for (int y = 0; y < S * scale; y++)
            for (int x = 0; x < S * scale; x++) sheet[(size_t)(oy + y) * W + ox + x] = img[(y / scale) * S + x / scale];
    }
    lra_status st = lra_png_write_gray(path, sheet, W, W, err);
    free(sheet);
    free(img);
    return st;
}
