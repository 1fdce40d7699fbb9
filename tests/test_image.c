/* test_image.c - the Image task: the official grayscale by hand, CIFAR-10 binary records (a
 * directory and a tar.gz in the official layout) and Fashion-MNIST IDX files checked pixel by
 * pixel against what the fixture wrote, broken files, the pad-mask option, every backend end to
 * end on the labelled substitute, and compare keeping it out of the Image column. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <zlib.h>

#include "../attention/attention.h"
#include "../datasets/datadir.h"
#include "../tasks/image.h"
#include "../tasks/task.h"
#include "tests.h"

START_TEST(test_gray_by_hand) {
    /* trunc((0.2989 R + 0.5870 G + 0.1140 B) / 255 * 255.5) */
    ck_assert_int_eq(lra_gray(0, 0, 0), 0);
    ck_assert_int_eq(lra_gray(255, 255, 255), 255); /* 255.47 */
    ck_assert_int_eq(lra_gray(255, 0, 0), 76);      /* 76.37 */
    ck_assert_int_eq(lra_gray(0, 255, 0), 149);     /* 149.97 */
    ck_assert_int_eq(lra_gray(0, 0, 255), 29);      /* 29.13 */
    ck_assert_int_eq(lra_gray(100, 150, 200), 141); /* 141.02 */
    for (int v = 0; v < 256; v++) ck_assert_int_eq(lra_gray(v, v, v), v); /* v * 1.00186, truncated */
}
END_TEST

/* CIFAR fixture: record r of batch b (0 = test) has label (r + b) % 10 and R = G = B =
 * (r + p + b) & 255, except pixels 5, 6, 7: pure red, green, blue. */
static void cifar_record(unsigned char *rec, int b, int r) {
    rec[0] = (unsigned char)((r + b) % 10);
    for (int p = 0; p < 1024; p++) rec[1 + p] = rec[1025 + p] = rec[2049 + p] = (unsigned char)((r + p + b) & 255);
    for (int c = 0; c < 3; c++)
        for (int p = 5; p < 8; p++) rec[1 + c * 1024 + p] = p - 5 == c ? 255 : 0;
}

static char *cifar_batch_bytes(int b) {
    char *buf = malloc(10000 * 3073);
    for (int r = 0; r < 10000; r++) cifar_record((unsigned char *)buf + (size_t)r * 3073, b, r);
    return buf;
}

static void expect_cifar(const lra_split *s, size_t i, int b, int r) {
    ck_assert_int_eq(lra_split_len(s, i), 1024);
    ck_assert_msg(s->labels[i] == (r + b) % 10, "example %zu: label %d", i, s->labels[i]);
    ck_assert(s->pixels != NULL && s->tokens == NULL); /* a byte a pixel */
    const uint8_t *t = s->pixels + s->offset[i];
    ck_assert_int_eq(t[5], 76);
    ck_assert_int_eq(t[6], 149);
    ck_assert_int_eq(t[7], 29);
    for (int p = 0; p < 1024; p++)
        if (p < 5 || p > 7) ck_assert_msg(t[p] == ((r + p + b) & 255), "example %zu pixel %d: %d", i, p, t[p]);
}

START_TEST(test_cifar_directory_and_archive) {
    const char *dir = t_tmpdir();
    char path[512], err[LRA_ERR_LEN];
    for (int b = 0; b <= 5; b++) {
        char *bytes = cifar_batch_bytes(b);
        if (b) snprintf(path, sizeof path, "%s/cifar-10-batches-bin/data_batch_%d.bin", dir, b);
        else snprintf(path, sizeof path, "%s/cifar-10-batches-bin/test_batch.bin", dir);
        t_write_file(path, bytes, 10000 * 3073);
        free(bytes);
    }
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin", dir);
    lra_split s;
    ck_assert_msg(lra_cifar_load(&s, path, LRA_SPLIT_TRAIN, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 45000);
    expect_cifar(&s, 0, 1, 0);
    expect_cifar(&s, 12345, 2, 2345);
    expect_cifar(&s, 44999, 5, 4999);
    lra_split_free(&s);
    ck_assert_msg(lra_cifar_load(&s, path, LRA_SPLIT_VAL, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 5000);
    expect_cifar(&s, 0, 5, 5000);
    expect_cifar(&s, 4999, 5, 9999);
    lra_split_free(&s);
    /* the archive: only batch 5 and the test batch, in that order */
    char *b5 = cifar_batch_bytes(5), *b0 = cifar_batch_bytes(0);
    const size_t lens[2] = {10000 * 3073, 10000 * 3073};
    snprintf(path, sizeof path, "%s/cifar-10-binary.tar.gz", dir);
    t_tar_gz(path, 2, (const char *const[]){"cifar-10-batches-bin/data_batch_5.bin", "cifar-10-batches-bin/test_batch.bin"},
             (const char *const[]){b5, b0}, lens);
    free(b5);
    free(b0);
    ck_assert_msg(lra_cifar_load(&s, path, LRA_SPLIT_TEST, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 10000);
    expect_cifar(&s, 0, 0, 0);
    expect_cifar(&s, 9999, 0, 9999);
    lra_split_free(&s);
    ck_assert_msg(lra_cifar_load(&s, path, LRA_SPLIT_VAL, err) == LRA_OK, "%s", err);
    expect_cifar(&s, 17, 5, 5017);
    lra_split_free(&s);
    ck_assert_int_eq(lra_cifar_load(&s, path, LRA_SPLIT_TRAIN, err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "data_batch_1"), "%s", err);
}
END_TEST

START_TEST(test_cifar_bad_records) {
    const char *dir = t_tmpdir();
    char path[512], err[LRA_ERR_LEN];
    lra_split s;
    char *bytes = cifar_batch_bytes(0);
    snprintf(path, sizeof path, "%s/short/test_batch.bin", dir);
    t_write_file(path, bytes, 10000 * 3073 - 100); /* a record cut short */
    snprintf(path, sizeof path, "%s/short", dir);
    ck_assert_int_eq(lra_cifar_load(&s, path, LRA_SPLIT_TEST, err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "test_batch.bin") && strstr(err, "3073"), "%s", err);
    bytes[3073 * 7] = 11; /* record 7's label */
    snprintf(path, sizeof path, "%s/label/test_batch.bin", dir);
    t_write_file(path, bytes, 10000 * 3073);
    snprintf(path, sizeof path, "%s/label", dir);
    ck_assert_int_eq(lra_cifar_load(&s, path, LRA_SPLIT_TEST, err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "record 7") && strstr(err, "11"), "%s", err);
    free(bytes);
}
END_TEST

/* Fashion-MNIST fixture: n images, image i has label i % 10 and pixel (y, x) = (i + 28 y + x) & 255. */
static void write_idx(const char *dir, const char *stem, int n, int bad) {
    char path[512];
    unsigned char h[16] = {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28};
    /* bad 4: both headers claim 6.5 million; bad 5: 0, and bad 6: 0xFFFFFFFF */
    const uint32_t claim = bad == 4 ? 6500000u : bad == 5 ? 0u : bad == 6 ? 0xFFFFFFFFu : (uint32_t)n;
    for (int k = 0; k < 4; k++) h[4 + k] = (unsigned char)(claim >> (24 - 8 * k));
    if (bad == 1) h[3] = 9; /* wrong magic */
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, stem);
    gzFile f = gzopen(path, "wb");
    ck_assert(f != NULL);
    gzwrite(f, h, 16);
    for (int i = 0; i < n - (bad == 2); i++) { /* bad 2: one image missing */
        unsigned char px[784];
        for (int p = 0; p < 784; p++) px[p] = (unsigned char)((i + p) & 255);
        gzwrite(f, px, 784);
    }
    gzclose(f);
    t_corpus("idx", path, 0, 0);
    unsigned char hl[8] = {0, 0, 8, 1, h[4], h[5], h[6], h[7]};
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, stem);
    f = gzopen(path, "wb");
    gzwrite(f, hl, 8);
    for (int i = 0; i < n; i++) {
        unsigned char l = (unsigned char)(bad == 3 && i == 4 ? 10 : i % 10);
        gzwrite(f, &l, 1);
    }
    gzclose(f);
    t_corpus("idx", path, 0, 0);
}

static const char *fmnist_data(void) {
    static char dir[64];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s", t_tmpdir());
    char sub[128], err[LRA_ERR_LEN];
    snprintf(sub, sizeof sub, "%s/fashion-mnist", dir);
    ck_assert(lra_mkdirs(sub, err) == LRA_OK);
    write_idx(sub, "train", 200, 0);
    write_idx(sub, "t10k", 30, 0);
    return dir;
}

START_TEST(test_fmnist_pixels_and_splits) {
    char sub[256], err[LRA_ERR_LEN];
    snprintf(sub, sizeof sub, "%s/fashion-mnist", fmnist_data());
    lra_split s;
    ck_assert_msg(lra_fmnist_load(&s, sub, LRA_SPLIT_VAL, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 20); /* the last 10% of 200 */
    for (size_t e = 0; e < s.n; e++) {
        const int i = 180 + (int)e;
        ck_assert_int_eq(s.labels[e], i % 10);
        const size_t t0 = s.offset[e];
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                int inside = y >= 2 && y < 30 && x >= 2 && x < 30;
                int want = inside ? (i + 28 * (y - 2) + (x - 2)) & 255 : 0;
                const int got = lra_split_token(&s, t0 + (size_t)(y * 32 + x));
                ck_assert_msg(got == want, "image %d (%d,%d): %d != %d", i, y, x, got, want);
            }
    }
    /* the official mask drops zero pixels (the border and any black pixel), length keeps them */
    int32_t tok[1024], label;
    uint8_t mask[1024];
    lra_split_example(&s, 0, 1024, tok, mask, &label);
    ck_assert_int_eq(mask[0], 0);
    ck_assert_int_eq(mask[2 * 32 + 2], (180 & 255) != 0);
    s.mask_by_length = 1;
    lra_split_example(&s, 0, 1024, tok, mask, &label);
    ck_assert_int_eq(mask[0], 1);
    lra_split_free(&s);
    ck_assert_msg(lra_fmnist_load(&s, sub, LRA_SPLIT_TRAIN, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 180);
    lra_split_free(&s);
    ck_assert_msg(lra_fmnist_load(&s, sub, LRA_SPLIT_TEST, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 30);
    lra_split_free(&s);
}
END_TEST

START_TEST(test_fmnist_bad_files) {
    const char *dir = t_tmpdir();
    char err[LRA_ERR_LEN];
    lra_split s;
    static const char *const expect[7] = {NULL, "magic", "truncated", "label 10", "truncated in the images",
                                          "its header claims 0 images (1 to 10,000,000 expected): damaged",
                                          "its header claims 4294967295 images"};
#if !defined(__SANITIZE_ADDRESS__) /* ASan reserves terabytes of address space */
    /* a header's count is a claim: 6.5 million images (6.7 GB of pixels) must not be allocated
     * before they are read (fuzz_idx found that they were) */
    struct rlimit as = {(rlim_t)2 << 30, (rlim_t)2 << 30};
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &as), 0);
#endif
    for (int bad = 1; bad <= 6; bad++) {
        write_idx(dir, "t10k", 12, bad);
        lra_status st = lra_fmnist_load(&s, dir, LRA_SPLIT_TEST, err);
        ck_assert_msg(st == LRA_ERR_FORMAT && strstr(err, expect[bad]) && strstr(err, "t10k"), "bad %d: %s", bad, err);
    }
}
END_TEST

START_TEST(test_image_every_backend_end_to_end) {
    const char *data = fmnist_data(), *out = t_tmpdir();
    char msg[8192], path[512];
    for (int bi = 0; bi < lra_attn_count(); bi++) {
        snprintf(path, sizeof path, "%s/%s.json", out, lra_attn_name_at(bi));
        int rc = t_run(msg, sizeof msg,
                       "%s --task=image --dataset=fashion-mnist --profile=ci --steps=3 --backend=%s --data-dir=%s --out=%s",
                       t_bench(), lra_attn_name_at(bi), data, path);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", lra_attn_name_at(bi), rc, msg);
    }
    /* the substitute is its own column in compare, never LRA's Image */
    snprintf(path, sizeof path, "%s/full.json", out);
    int rc = t_run(msg, sizeof msg, "%s compare %s", t_bench(), path);
    ck_assert_msg(rc == 0 && strstr(msg, "image[fashion-mnist]"), "%s", msg);
    /* without CIFAR-10 the message says where to get it and names the substitute */
    rc = t_run(msg, sizeof msg, "%s --task=image --profile=ci --data-dir=%s --out=%s/x.json", t_bench(), out, out);
    ck_assert_msg(rc == 1 && strstr(msg, "cifar-10-binary.tar.gz") && strstr(msg, "fashion-mnist"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s --task=image --dataset=mnist --profile=ci --data-dir=%s", t_bench(), out);
    ck_assert_msg(rc == 2 && strstr(msg, "mnist"), "%s", msg);
}
END_TEST

Suite *image_suite(void) {
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_gray_by_hand);
    tcase_add_test(tc, test_cifar_directory_and_archive);
    tcase_add_test(tc, test_cifar_bad_records);
    tcase_add_test(tc, test_fmnist_pixels_and_splits);
    tcase_add_test(tc, test_fmnist_bad_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_image_every_backend_end_to_end);
    suite_add_tcase(s, tc);
    return s;
}
