/* test_pathfinder.c - Pathfinder: PNG decoding through our wrapper (round trip, empty, corrupt,
 * wrong size), the loader on a hand-written set in the official layout (metadata in numeric
 * order, the 80/10/10 split, an empty image skipped and counted, hostile metadata), the
 * generator (determinism, markers, labels that agree with an independent connectivity check),
 * and every backend end to end on generated data. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <unistd.h>

#include "../attention/attention.h"
#include "../datasets/datadir.h"
#include "../datasets/pathfinder_gen.h"
#include "../datasets/png.h"
#include "../tasks/pathfinder.h"
#include "tests.h"

static size_t read_all(const char *path, unsigned char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

START_TEST(test_png_round_trip_and_bad_files) {
    const char *dir = t_tmpdir();
    char path[512], err[LRA_ERR_LEN];
    uint8_t px[32 * 32], back[32 * 32];
    for (int i = 0; i < 32 * 32; i++) px[i] = (uint8_t)(i * 7 + 3);
    snprintf(path, sizeof path, "%s/a.png", dir);
    ck_assert_msg(lra_png_write_gray(path, px, 32, 32, err) == LRA_OK, "%s", err);
    t_corpus("png", path, 0, 0);
    static unsigned char buf[1 << 16];
    size_t n = read_all(path, buf, sizeof buf);
    ck_assert_msg(lra_png_decode_gray(buf, n, back, 32, 32, path, err) == LRA_OK, "%s", err);
    ck_assert_int_eq(memcmp(px, back, sizeof px), 0);
    ck_assert_int_eq(lra_png_decode_gray(buf, n, back, 28, 28, "x.png", err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "x.png") && strstr(err, "32x32"), "%s", err);
    ck_assert_int_eq(lra_png_decode_gray(buf, 0, back, 32, 32, "e.png", err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "empty"), "%s", err);
    ck_assert_int_eq(lra_png_decode_gray(buf, n / 2, back, 32, 32, "half.png", err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "half.png"), "%s", err);
    ck_assert_int_eq(lra_png_decode_gray("GIF89a", 6, back, 32, 32, "g.png", err), LRA_ERR_FORMAT);
    for (size_t i = 40; i < n - 12; i += 3) buf[i] ^= 0x5a; /* corrupt the compressed data */
    ck_assert_int_eq(lra_png_decode_gray(buf, n, back, 32, 32, "bad.png", err), LRA_ERR_FORMAT);
}
END_TEST

/* A hand-written set: metadata/2.npy (images 0-9) and metadata/10.npy (10-19), so that numeric
 * order differs from name order; image i has pixels (3 i + p) & 255 and label i % 3 == 0;
 * image 5 is an empty file (as the release's sample_172.png). */
static const char *fixture_set(void) {
    static char root[256];
    if (root[0]) return root;
    snprintf(root, sizeof root, "%s/pathfinder32/curv_contour_length_14", t_tmpdir());
    char path[512], err[LRA_ERR_LEN];
    for (int f = 0; f < 2; f++) {
        char meta[2048] = "";
        for (int k = 0; k < 10; k++) {
            int i = f * 10 + k;
            uint8_t px[1024];
            for (int p = 0; p < 1024; p++) px[p] = (uint8_t)((3 * i + p) & 255);
            snprintf(path, sizeof path, "%s/imgs/%d/sample_%d.png", root, f, k);
            t_write_file(path, "", 0);
            if (i != 5) ck_assert_msg(lra_png_write_gray(path, px, 32, 32, err) == LRA_OK, "%s", err);
            char line[128];
            snprintf(line, sizeof line, "imgs/%d sample_%d.png %d %d 1.0 14 4 2 0.5 1 1\r\n", f, k, k, i % 3 == 0);
            strcat(meta, line);
        }
        snprintf(path, sizeof path, "%s/metadata/%d.npy", root, f ? 10 : 2);
        t_write_file(path, meta, strlen(meta));
    }
    return root;
}

static void expect_image(const lra_split *s, size_t e, int i) {
    ck_assert_int_eq(s->labels[e], i % 3 == 0);
    for (int p = 0; p < 1024; p++)
        ck_assert_msg(lra_split_token(s, s->offset[e] + p) == ((3 * i + p) & 255), "example %zu (image %d) pixel %d", e, i, p);
}

START_TEST(test_pathfinder_loader) {
    const char *root = fixture_set();
    char err[LRA_ERR_LEN], found[512];
    lra_split s;
    ck_assert_msg(lra_pathfinder_load(&s, root, 32, LRA_SPLIT_TRAIN, 1, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 15); /* lines 0-15, image 5 skipped */
    ck_assert_int_eq((int)s.skipped, 1);
    expect_image(&s, 0, 0);
    expect_image(&s, 4, 4);
    expect_image(&s, 5, 6); /* after the skipped one */
    expect_image(&s, 14, 15);
    lra_split_free(&s);
    ck_assert_msg(lra_pathfinder_load(&s, root, 32, LRA_SPLIT_VAL, 1, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 2);
    expect_image(&s, 0, 16);
    expect_image(&s, 1, 17);
    lra_split_free(&s);
    ck_assert_msg(lra_pathfinder_load(&s, root, 32, LRA_SPLIT_TEST, 1, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 2);
    expect_image(&s, 1, 19);
    lra_split_free(&s);
    /* found under the release's nested layout too */
    const char *dir = t_tmpdir();
    char nested[512];
    snprintf(nested, sizeof nested, "%s/lra_release/lra_release/pathfinder32/curv_contour_length_14/metadata", dir);
    ck_assert(lra_mkdirs(nested, err) == LRA_OK);
    ck_assert(lra_pathfinder_find(dir, 32, found, sizeof found));
    ck_assert_msg(strstr(found, "lra_release/lra_release/pathfinder32"), "%s", found);
}
END_TEST

START_TEST(test_pathfinder_bad_metadata) {
    static const struct { const char *line, *expect; } cases[] = {
        {"imgs/0 sample_0.png 0\n", ":1: 3 fields"},
        {"imgs/0 sample_0.png 0 2 1.0\n", "label '2'"},
        {"../../etc passwd 0 1\n", "leaves the data directory"},
        {"/etc passwd 0 1\n", "leaves the data directory"},
    };
    char path[512], err[LRA_ERR_LEN];
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *root = t_tmpdir();
        snprintf(path, sizeof path, "%s/metadata/0.npy", root);
        t_write_file(path, cases[c].line, strlen(cases[c].line));
        lra_split s;
        ck_assert_int_eq(lra_pathfinder_load(&s, root, 32, LRA_SPLIT_TRAIN, 1, err), LRA_ERR_FORMAT);
        ck_assert_msg(strstr(err, cases[c].expect) && strstr(err, "0.npy"), "case %zu: %s", c, err);
    }
    /* every image unreadable: an error, not an empty split */
    const char *root = t_tmpdir();
    snprintf(path, sizeof path, "%s/metadata/0.npy", root);
    t_write_file(path, "imgs/0 a.png 0 1\n", 17);
    lra_split s;
    ck_assert_int_eq(lra_pathfinder_load(&s, root, 32, LRA_SPLIT_TEST, 1, err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "no readable image"), "%s", err);
}
END_TEST

/* Components of pixels above thr (8-connected) after dilating by d pixels; comp gets ids 1... */
static int components(const uint8_t *img, int S, int thr, int d, int *comp) {
    uint8_t on[128 * 128];
    for (int p = 0; p < S * S; p++) {
        on[p] = 0;
        for (int dy = -d; dy <= d && !on[p]; dy++)
            for (int dx = -d; dx <= d && !on[p]; dx++) {
                int y = p / S + dy, x = p % S + dx;
                if (y >= 0 && x >= 0 && y < S && x < S && img[y * S + x] > thr) on[p] = 1;
            }
        comp[p] = 0;
    }
    int n = 0, stack[128 * 128];
    for (int p = 0; p < S * S; p++) {
        if (!on[p] || comp[p]) continue;
        int top = 0;
        stack[top++] = p;
        comp[p] = ++n;
        while (top) {
            int q = stack[--top];
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int y = q / S + dy, x = q % S + dx;
                    if (y < 0 || x < 0 || y >= S || x >= S) continue;
                    int r = y * S + x;
                    if (on[r] && !comp[r]) { comp[r] = n; stack[top++] = r; }
                }
        }
    }
    return n;
}

START_TEST(test_generator_images) {
    lra_pathfinder_gen_cfg c;
    lra_pathfinder_gen_defaults(&c, 32, 100);
    uint8_t img[1024], again[1024];
    int comp[1024], agree = 0, n = 100;
    for (int i = 0; i < n; i++) {
        const int label = i & 1;
        lra_rng r, r2;
        lra_rng_seed(&r, 100 + i);
        lra_rng_seed(&r2, 100 + i);
        while (lra_pathfinder_draw(&r, &c, label, img)) {}
        while (lra_pathfinder_draw(&r2, &c, label, again)) {}
        ck_assert_int_eq(memcmp(img, again, sizeof img), 0); /* a function of the seed */
        /* markers are the only pixels brighter than the paddles' 0.75: exactly two blobs, at
         * least the seed distance (7 px) apart */
        int nm = components(img, 32, 200, 0, comp), cx[8] = {0}, cy[8] = {0}, cnt[8] = {0};
        ck_assert_msg(nm == 2, "image %d: %d marker blobs", i, nm);
        for (int p = 0; p < 1024; p++)
            if (comp[p]) { cx[comp[p]] += p % 32; cy[comp[p]] += p / 32; cnt[comp[p]]++; }
        double ax = (double)cx[1] / cnt[1], ay = (double)cy[1] / cnt[1], bx = (double)cx[2] / cnt[2], by = (double)cy[2] / cnt[2];
        ck_assert_msg((ax - bx) * (ax - bx) + (ay - by) * (ay - by) >= 36.0, "image %d: markers too close", i);
        /* the label, checked independently: over every lit pixel (the antialiased gaps between
         * paddles are not fully dark at 32 px), the two markers lie in one connected curve iff
         * label 1. Snakes keep a margin from each other; the rare miss is two snakes whose
         * antialiasing still touches. */
        components(img, 32, 0, 0, comp);
        int pa = (int)(ay + 0.5) * 32 + (int)(ax + 0.5), pb = (int)(by + 0.5) * 32 + (int)(bx + 0.5);
        agree += (comp[pa] == comp[pb]) == label;
    }
    ck_assert_msg(agree >= 90, "labels agree with connectivity in %d of %d images", agree, n);
    fprintf(stderr, "pathfinder generator: label agrees with pixel connectivity in %d/%d images\n", agree, n);
}
END_TEST

/* Generation through the CLI: the official layout, balanced labels, the same bytes for the same
 * seed whatever the thread count, and every backend end to end on it. */
START_TEST(test_pathfinder_generate_and_every_backend) {
    const char *a = t_tmpdir(), *b = t_tmpdir(), *out = t_tmpdir();
    char msg[8192], path[512];
    int rc = t_run(msg, sizeof msg, "OMP_NUM_THREADS=1 %s generate --task=pathfinder --images=300 --out=%s", t_bench(), a);
    ck_assert_msg(rc == 0, "%s", msg);
    rc = t_run(msg, sizeof msg, "OMP_NUM_THREADS=2 %s generate --task=pathfinder --images=300 --out=%s", t_bench(), b);
    ck_assert_msg(rc == 0, "%s", msg);
    rc = t_run(msg, sizeof msg, "diff -r %s/pathfinder32 %s/pathfinder32 && cat %s/pathfinder32/curv_contour_length_14/metadata/0.npy | "
               "awk '{n[$4]++} END {print n[0], n[1]}'", a, b, a);
    ck_assert_msg(rc == 0 && strstr(msg, "150 150"), "%s", msg);
    ck_assert_int_eq(t_run(msg, sizeof msg, "ls %s/pathfinder32/curv_contour_length_14/imgs/0/sample_299.png", a), 0);
    ck_assert_int_eq(t_run(msg, sizeof msg, "ls -d %s/pathfinder32/curv_contour_length_14.partial", a), 2);
    rc = t_run(msg, sizeof msg, "%s generate --task=pathfinder --images=abc --out=%s", t_bench(), out);
    ck_assert_msg(rc == 2 && strstr(msg, "abc"), "%s", msg);
    for (int bei = 0; bei < lra_attn_count(); bei++) {
        snprintf(path, sizeof path, "%s/%s.json", out, lra_attn_name_at(bei));
        rc = t_run(msg, sizeof msg, "%s --task=pathfinder --profile=ci --steps=3 --backend=%s --data-dir=%s --out=%s",
                   t_bench(), lra_attn_name_at(bei), a, path);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", lra_attn_name_at(bei), rc, msg);
        rc = t_run(msg, sizeof msg, "grep -c '\"examples\":\\s*30' %s", path);
        ck_assert_msg(rc == 0, "%s: expected 30 val and test examples", lra_attn_name_at(bei));
    }
}
END_TEST

/* Path-X: 128 px images in pathfinder128/, every backend at the ci profile's 256 tokens, and mita
 * over the whole 16384-pixel sequence. */
START_TEST(test_pathx_end_to_end) {
    const char *data = t_tmpdir(), *out = t_tmpdir();
    char msg[8192], path[512];
    int rc = t_run(msg, sizeof msg, "%s generate --task=pathx --images=30 --out=%s && "
                   "ls %s/pathfinder128/curv_contour_length_14/imgs/0/sample_29.png", t_bench(), data, data);
    ck_assert_msg(rc == 0, "%s", msg);
    for (int bei = 0; bei < lra_attn_count(); bei++) {
        snprintf(path, sizeof path, "%s/%s.json", out, lra_attn_name_at(bei));
        rc = t_run(msg, sizeof msg, "%s --task=pathx --profile=ci --steps=2 --batch=4 --backend=%s --data-dir=%s --out=%s",
                   t_bench(), lra_attn_name_at(bei), data, path);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", lra_attn_name_at(bei), rc, msg);
    }
    rc = t_run(msg, sizeof msg, "%s --task=pathx --profile=ci --steps=2 --batch=2 --max-len=16384 --backend=mita "
               "--data-dir=%s --out=%s/long.json && grep -cE '\"length\":[[:space:]]*16384' %s/long.json",
               t_bench(), data, out, out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
}
END_TEST

/* A partial set (imgs/ without metadata/) is named, not generated over; `generate` never replaces
 * a set, Pathfinder's or ListOps'. */
START_TEST(test_partial_sets_refused) {
    const char *dir = t_tmpdir();
    char msg[8192];
    int rc = t_run(msg, sizeof msg, "%s generate --task=pathfinder --images=50 --out=%s && rm -r "
                   "%s/pathfinder32/curv_contour_length_14/metadata && %s --task=pathfinder --profile=ci --data-dir=%s "
                   "--out=%s/r.json", t_bench(), dir, dir, t_bench(), dir, dir);
    ck_assert_msg(rc == 1 && strstr(msg, "imgs/") && strstr(msg, "but no metadata/: a partial Pathfinder set") &&
                  !strstr(msg, "; generating"), "exit %d: %s", rc, msg);
    rc = t_run(msg, sizeof msg, "%s generate --task=pathfinder --images=50 --out=%s", t_bench(), dir);
    ck_assert_msg(rc == 1 && strstr(msg, "exists; remove it first"), "exit %d: %s", rc, msg);
    rc = t_run(msg, sizeof msg, "%s generate --task=listops --sizes=30,10,10 --out=%s/l && "
               "%s generate --task=listops --sizes=30,10,10 --out=%s/l", t_bench(), dir, t_bench(), dir);
    ck_assert_msg(rc == 1 && strstr(msg, "basic_train.tsv exists"), "exit %d: %s", rc, msg);
    /* the task says which generate options apply */
    rc = t_run(msg, sizeof msg, "%s generate --task=listops --images=50 --out=%s/l2", t_bench(), dir);
    ck_assert_msg(rc == 2 && strstr(msg, "--images is not an option of listops's generator (its options: sizes,lengths)"),
                  "exit %d: %s", rc, msg);
}
END_TEST

/* A generated set says so in the report (generator_seed, source); the same files without the
 * generator's marker, as official files are, do not. */
START_TEST(test_generated_marker) {
    const char *dir = t_tmpdir();
    char msg[8192], path[512];
    snprintf(path, sizeof path, "%s/r.json", dir);
    int rc = t_run(msg, sizeof msg, "%s generate --task=pathfinder --images=200 --data-seed=7 --out=%s && %s --task=pathfinder "
                   "--profile=ci --steps=2 --data-seed=7 --data-dir=%s --out=%s", t_bench(), dir, t_bench(), dir, path);
    ck_assert_msg(rc == 0, "%s", msg);
    cJSON *j = t_load_json(path);
    ck_assert_int_eq((int)t_num(j, "data.generator_seed"), 7);
    ck_assert_msg(strstr(t_str(j, "data.source"), "generated by lra-bench's Pathfinder generator (32 px, seed 7)"), "%s",
                  t_str(j, "data.source"));
    cJSON_Delete(j);
    rc = t_run(msg, sizeof msg, "rm %s/pathfinder32/curv_contour_length_14/GENERATED_BY_LRA_BENCH && %s --task=pathfinder "
               "--profile=ci --steps=2 --data-seed=7 --data-dir=%s --out=%s --overwrite", dir, t_bench(), dir, path);
    ck_assert_msg(rc == 0, "%s", msg);
    j = t_load_json(path);
    ck_assert(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"), "generator_seed") == NULL);
    cJSON_Delete(j);
}
END_TEST

Suite *pathfinder_suite(void) {
    Suite *s = suite_create("pathfinder");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_png_round_trip_and_bad_files);
    tcase_add_test(tc, test_pathfinder_loader);
    tcase_add_test(tc, test_pathfinder_bad_metadata);
    tcase_add_test(tc, test_generator_images);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_pathfinder_generate_and_every_backend);
    tcase_add_test(tc, test_pathx_end_to_end);
    tcase_add_test(tc, test_partial_sets_refused);
    tcase_add_test(tc, test_generated_marker);
    suite_add_tcase(s, tc);
    return s;
}
