/* test_text.c - the Text task: archives and extracted trees in the official aclImdb layout,
 * checked token by token against hand-computed ids; hostile archives; every backend end to end;
 * and, where LRA_IMDB_DIR names a directory holding the real reviews, a few training steps on them. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <unistd.h>

#include "../attention/attention.h"
#include "../datasets/archive.h"
#include "../tasks/task.h"
#include "../tasks/text.h"
#include "tests.h"

/* The fixture: labelled reviews of both splits out of id order, plus what a loader must skip. */
enum { NFIX = 9 };
static const char *const fix_names[NFIX] = {
    "aclImdb/train/pos/10_8.txt", "aclImdb/train/unsup/0_0.txt", "aclImdb/train/neg/5_1.txt",
    "aclImdb/train/pos/2_9.txt",  "aclImdb/imdb.vocab",          "aclImdb/test/neg/3_2.txt",
    "aclImdb/test/pos/0_10.txt",  "aclImdb/train/labeledBow.feat", "aclImdb/train/urls_pos.txt"};
static const char *const fix_data[NFIX] = {"Good<br />film", "ignored", "Bad.", "A\xc3\xa9", "the\n",
                                           "No\n", "Yes", "0 1:2", "http://x"};

static void expect_example(const lra_split *s, size_t i, int label, const int *ids, int n) {
    ck_assert_int_eq(s->labels[i], label);
    ck_assert_int_eq(lra_split_len(s, i), n);
    for (int t = 0; t < n; t++) ck_assert_msg(s->tokens[s->offset[i] + t] == ids[t], "example %zu token %d: %d != %d",
                                              i, t, s->tokens[s->offset[i] + t], ids[t]);
}

/* ids = byte + 1; order neg before pos, then by review id (2 before 10) */
static void expect_fixture_train(const lra_split *s) {
    ck_assert_int_eq((int)s->n, 3);
    expect_example(s, 0, 0, (const int[]){'B' + 1, 'a' + 1, 'd' + 1, '.' + 1}, 4);
    expect_example(s, 1, 1, (const int[]){'A' + 1, 0xC3 + 1, 0xA9 + 1}, 3);
    expect_example(s, 2, 1, (const int[]){'G' + 1, 'o' + 1, 'o' + 1, 'd' + 1, '<' + 1, 'b' + 1}, 6); /* cut at 6 */
}

START_TEST(test_text_archive_tokens) {
    const char *dir = t_tmpdir();
    char path[512], err[LRA_ERR_LEN], out[512];
    snprintf(path, sizeof path, "%s/aclImdb_v1.tar.gz", dir);
    t_tar_gz(path, NFIX, fix_names, fix_data, NULL);
    lra_split s;
    ck_assert_msg(lra_text_load(&s, path, "train", 6, err) == LRA_OK, "%s", err);
    expect_fixture_train(&s);
    /* the recorded checksum is the archive file's, computed by an independent tool */
    ck_assert_int_eq(t_run(out, sizeof out, "sha256sum %s", path), 0);
    ck_assert_msg(strncmp(out, s.sha256, 64) == 0, "%s vs %s", out, s.sha256);
    lra_split_free(&s);
    ck_assert_msg(lra_text_load(&s, path, "test", 6, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 2);
    expect_example(&s, 0, 0, (const int[]){'N' + 1, 'o' + 1, '\n' + 1}, 3); /* no cleaning */
    expect_example(&s, 1, 1, (const int[]){'Y' + 1, 'e' + 1, 's' + 1}, 3);
    lra_split_free(&s);
}
END_TEST

/* an extracted tree reads the same examples */
START_TEST(test_text_directory) {
    const char *dir = t_tmpdir();
    char path[512], err[LRA_ERR_LEN], found[512];
    for (int i = 0; i < NFIX; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, fix_names[i]);
        t_write_file(path, fix_data[i], strlen(fix_data[i]));
    }
    ck_assert(lra_text_find(dir, found, sizeof found));
    snprintf(path, sizeof path, "%s/aclImdb", dir);
    ck_assert_str_eq(found, path);
    lra_split s;
    ck_assert_msg(lra_text_load(&s, found, "train", 6, err) == LRA_OK, "%s", err);
    expect_fixture_train(&s);
    lra_split_free(&s);
}
END_TEST

/* Hostile and broken input: clear errors naming the file or member, nothing half-loaded. */
START_TEST(test_text_bad_archives) {
    const char *dir = t_tmpdir();
    char path[512], err[LRA_ERR_LEN];
    lra_split s;
    /* a member that climbs out of the directory */
    snprintf(path, sizeof path, "%s/evil.tar.gz", dir);
    t_tar_gz(path, 2, (const char *const[]){"aclImdb/train/pos/1_9.txt", "../../x"},
             (const char *const[]){"fine", "evil"}, NULL);
    ck_assert_int_eq(lra_text_load(&s, path, "train", 100, err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "../../x") && strstr(err, "evil.tar.gz"), "%s", err);
    ck_assert(s.tokens == NULL && s.n == 0);
    ck_assert(!lra_archive_name_safe("/etc/passwd") && !lra_archive_name_safe("a/../../b") &&
              lra_archive_name_safe("a/b..c/d") && lra_archive_name_safe("aclImdb/x.txt"));
    /* truncated gzip: the first half of a good archive (big enough to span several blocks) */
    static char big[200000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + (i * 7919 % 26));
    const size_t lens[2] = {sizeof big, sizeof big};
    snprintf(path, sizeof path, "%s/cut.tar.gz", dir);
    t_tar_gz(path, 2, (const char *const[]){"aclImdb/train/pos/1_9.txt", "aclImdb/train/neg/2_1.txt"},
             (const char *const[]){big, big}, lens);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    ck_assert_int_eq(truncate(path, size / 2), 0);
    lra_status st = lra_text_load(&s, path, "train", 100, err);
    ck_assert_msg(st == LRA_ERR_FORMAT && strstr(err, "cut.tar.gz") && strstr(err, "truncated"), "%d %s", st, err);
    /* a damaged header mid-archive (issue 27: 1000 random bytes inside the IMDB archive were
     * reported as "no reviews"): the second member's name and checksum overwritten */
    const char *names3[3] = {"aclImdb/train/pos/1_9.txt", "aclImdb/train/neg/2_1.txt", "aclImdb/train/pos/3_8.txt"};
    snprintf(path, sizeof path, "%s/good.tar.gz", dir);
    t_tar_gz(path, 3, names3, (const char *const[]){"one", "two", "three"}, NULL);
    char msg[1024];
    ck_assert_msg(t_run(msg, sizeof msg, "cd %s && gzip -dc good.tar.gz > d.tar && printf 'XXXXXXXXXXXXXXXX' | "
                        "dd of=d.tar bs=1 seek=1024 conv=notrunc 2>/dev/null && printf '99999' | "
                        "dd of=d.tar bs=1 seek=1172 conv=notrunc 2>/dev/null && gzip -c d.tar > damaged.tar.gz", dir) == 0,
                  "%s", msg);
    snprintf(path, sizeof path, "%s/damaged.tar.gz", dir);
    st = lra_text_load(&s, path, "train", 100, err);
    ck_assert_msg(st == LRA_ERR_FORMAT && strstr(err, "damaged.tar.gz") && strstr(err, "corrupt"), "%d %s", st, err);
    /* an end-of-archive marker read early, with most of the file after it (damaged data can decode
     * to one): the first member, 1024 zero bytes, then 600 KB that libarchive never reaches */
    ck_assert_msg(t_run(msg, sizeof msg, "cd %s && head -c 1024 d.tar > e.tar && head -c 1024 /dev/zero >> e.tar && "
                        "head -c 600000 /dev/urandom >> e.tar && gzip -c e.tar > early.tar.gz", dir) == 0, "%s", msg);
    snprintf(path, sizeof path, "%s/early.tar.gz", dir);
    st = lra_text_load(&s, path, "train", 100, err);
    ck_assert_msg(st == LRA_ERR_FORMAT && strstr(err, "early.tar.gz") && strstr(err, "end-of-archive marker comes"), "%d %s",
                  st, err);
    /* the sound archive loads */
    snprintf(path, sizeof path, "%s/good.tar.gz", dir);
    ck_assert_msg(lra_text_load(&s, path, "train", 100, err) == LRA_OK && s.n == 3, "%s", err);
    lra_split_free(&s);
    /* not an archive at all */
    snprintf(path, sizeof path, "%s/junk.tar.gz", dir);
    t_write_file(path, "this is not gzip\n", 17);
    ck_assert_int_eq(lra_text_load(&s, path, "train", 100, err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "junk.tar.gz"), "%s", err);
    /* an archive without reviews of the split */
    snprintf(path, sizeof path, "%s/empty.tar.gz", dir);
    t_tar_gz(path, 1, (const char *const[]){"aclImdb/README"}, (const char *const[]){"x"}, NULL);
    ck_assert_int_eq(lra_text_load(&s, path, "train", 100, err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "no reviews"), "%s", err);
    /* the same review twice */
    snprintf(path, sizeof path, "%s/twice.tar.gz", dir);
    t_tar_gz(path, 2, (const char *const[]){"aclImdb/train/pos/1_9.txt", "./aclImdb/train/pos/1_9.txt"},
             (const char *const[]){"a", "b"}, NULL);
    ck_assert_int_eq(lra_text_load(&s, path, "train", 100, err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "twice"), "%s", err);
}
END_TEST

/* No data: the CLI says where it looked and how to get the archive (exit 1, not a usage error). */
START_TEST(test_text_missing_data_message) {
    char msg[4096];
    const char *dir = t_tmpdir();
    int rc = t_run(msg, sizeof msg, "%s --task=text --profile=ci --data-dir=%s --out=%s/r.json", t_bench(), dir, dir);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(msg, dir) && strstr(msg, "aclImdb_v1.tar.gz") && strstr(msg, "https://"), "%s", msg);
    /* the fetch command it suggests downloads to the directory the user named */
    char want[512];
    snprintf(want, sizeof want, "lra-bench fetch --task=text --data-dir=%s`", dir);
    ck_assert_msg(strstr(msg, want), "%s", msg);
}
END_TEST

/* A synthetic archive big enough to train on: 48 train and 24 test reviews of 40..400 bytes. */
static const char *synthetic_imdb(void) {
    static char dir[64];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s", t_tmpdir());
    enum { N = 72 };
    static char names[N][64], bodies[N][401];
    const char *np[N], *bp[N];
    lra_rng r;
    lra_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        int pos = i % 2, len = (int)lra_rng_range(&r, 40, 400);
        snprintf(names[i], sizeof names[i], "aclImdb/%s/%s/%d_%d.txt", i < 48 ? "train" : "test", pos ? "pos" : "neg",
                 i, pos ? 9 : 2);
        for (int t = 0; t < len; t++) bodies[i][t] = (char)(pos ? "good film "[t % 10] : "dull plot "[t % 10]);
        bodies[i][len] = '\0';
        np[i] = names[i];
        bp[i] = bodies[i];
    }
    char path[128];
    snprintf(path, sizeof path, "%s/aclImdb_v1.tar.gz", dir);
    t_tar_gz(path, N, np, bp, NULL);
    return dir;
}

START_TEST(test_text_every_backend_end_to_end) {
    const char *data = synthetic_imdb(), *out = t_tmpdir();
    char msg[8192], path[512];
    for (int bi = 0; bi < lra_attn_count(); bi++) {
        snprintf(path, sizeof path, "%s/%s.json", out, lra_attn_name_at(bi));
        int rc = t_run(msg, sizeof msg, "%s --task=text --profile=ci --steps=4 --backend=%s --data-dir=%s --out=%s",
                       t_bench(), lra_attn_name_at(bi), data, path);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", lra_attn_name_at(bi), rc, msg);
        rc = t_run(msg, sizeof msg, "grep -c '\"examples\":\\s*24' %s", path);
        ck_assert_msg(rc == 0, "%s: expected 24 val and test examples in %s", lra_attn_name_at(bi), path);
    }
}
END_TEST

/* The real reviews (the directory LRA_IMDB_DIR names holds aclImdb-reviews.tar.gz, the reviews
 * of aclImdb_v1 without its unlabelled part): counts, checksum, a few training steps. */
START_TEST(test_text_real_reviews) {
    const char *env = getenv("LRA_IMDB_DIR");
    char dir[4096], path[4200], msg[8192];
    if (!env || !*env) {
        fprintf(stderr, "test_text_real_reviews: skipped (set LRA_IMDB_DIR to a directory holding aclImdb-reviews.tar.gz)\n");
        return;
    }
    snprintf(dir, sizeof dir, "%s", env);
    snprintf(path, sizeof path, "%s/aclImdb-reviews.tar.gz", dir);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "test_text_real_reviews: skipped, %s not present (LRA_IMDB_DIR)\n", path);
        return;
    }
    const char *out = t_tmpdir();
    int rc = t_run(msg, sizeof msg,
                   "%s --task=text --profile=ci --steps=3 --max-len=32 --backend=mita --attn-opt=m=16,k=16 "
                   "--data-dir=%s --out=%s/r.json && grep -A3 '\"train\"' %s/r.json",
                   t_bench(), dir, out, out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, "e99c8033c5863a929ad7a3d8971339bc88892a1704a1192eacf37f25d4a94037") &&
                  strstr(msg, "24996"), "%s", msg);
}
END_TEST

Suite *text_suite(void) {
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("loader");
    tcase_add_test(tc, test_text_archive_tokens);
    tcase_add_test(tc, test_text_directory);
    tcase_add_test(tc, test_text_bad_archives);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_text_missing_data_message);
    tcase_add_test(tc, test_text_every_backend_end_to_end);
    tcase_add_test(tc, test_text_real_reviews);
    suite_add_tcase(s, tc);
    return s;
}
