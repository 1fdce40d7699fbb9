/* test_listops.c - the generator against an independent evaluator, its determinism and the
 * official serialisation; the loader on files in the official format (CRLF and LF), token by
 * token; malformed files rejected with the file and line named. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "../common/sha256.h"
#include "../datasets/listops_gen.h"
#include "../tasks/listops.h"
#include "tests.h"

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    t_corpus("listops", path, 0, 0);
}

START_TEST(test_evaluator_by_hand) {
    /* values worked out by hand */
    ck_assert_int_eq(lra_listops_eval("( ( ( [MAX 2 ) 9 ) ] )"), 9);
    ck_assert_int_eq(lra_listops_eval("( ( ( [MIN 2 ) 9 ) ] )"), 2);
    ck_assert_int_eq(lra_listops_eval("( ( ( ( [SM 7 ) 8 ) 9 ) ] )"), 4);              /* 24 mod 10 */
    ck_assert_int_eq(lra_listops_eval("( ( ( ( ( [MED 1 ) 8 ) 2 ) 9 ) ] )"), 5);      /* (2+8)/2 */
    ck_assert_int_eq(lra_listops_eval("( ( ( ( ( [MED 1 ) 4 ) 2 ) 9 ) ] )"), 3);      /* int(3.0) */
    ck_assert_int_eq(lra_listops_eval("( ( ( [MED 1 ) 2 ) ] )"), 1);                  /* int(1.5) */
    ck_assert_int_eq(lra_listops_eval("( ( ( [MAX ( ( ( [MIN 4 ) 6 ) ] ) ) 3 ) ] )"), 4);
    ck_assert_int_eq(lra_listops_eval("7"), 7);
    ck_assert_int_eq(lra_listops_eval("( ( ( [MAX 2 ) 9 )"), -1); /* unclosed */
    ck_assert_int_eq(lra_listops_eval("( ( ( [FOO 2 ) 9 ) ] )"), -1);
}
END_TEST

START_TEST(test_generator_values_and_format) {
    lra_listops_gen_cfg c;
    lra_listops_gen_defaults(&c);
    lra_rng r;
    lra_rng_seed(&r, 123);
    static char buf[32768];
    int accepted = 0;
    for (int i = 0; i < 20000 && accepted < 300; i++) {
        int len;
        int v = lra_listops_tree(&r, &c, buf, sizeof buf, &len);
        if (len < 0) continue;
        ck_assert_int_eq(lra_listops_eval(buf), v);
        /* the official length counts operators, digits and ']' */
        int toks = 0;
        for (char *p = buf; *p; p++)
            if ((*p == '[' || *p == ']' || (*p >= '0' && *p <= '9'))) toks++;
        ck_assert_int_eq(toks, len);
        if (len > c.min_length && len < c.max_length) accepted++;
        if (len == 1) continue;
        /* an internal root: "( " repeated, then an operator */
        ck_assert_msg(strncmp(buf, "( ( ", 4) == 0, "root does not open with pairs: %.40s", buf);
    }
    ck_assert_int_ge(accepted, 50);
}
END_TEST

START_TEST(test_generator_split_files) {
    const char *dir = t_tmpdir(), *dir2 = t_tmpdir();
    char err[LRA_ERR_LEN], path[512];
    lra_listops_gen_cfg c;
    lra_listops_gen_defaults(&c);
    c.n_train = 60; c.n_val = 10; c.n_test = 10; c.seed = 5;
    ck_assert_int_eq(lra_listops_generate(dir, &c, err), LRA_OK);
    ck_assert_int_eq(lra_listops_generate(dir2, &c, err), LRA_OK);
    for (int s = 0; s < 3; s++) {
        char p1[512], p2[512];
        snprintf(p1, sizeof p1, "%s/basic_%s.tsv", dir, lra_split_names[s]);
        snprintf(p2, sizeof p2, "%s/basic_%s.tsv", dir2, lra_split_names[s]);
        char out[256];
        ck_assert_msg(t_run(out, sizeof out, "cmp -s %s %s", p1, p2) == 0, "same seed, different %s", p1);
    }
    /* header, CRLF, every line: expression TAB digit, the digit is the expression's value,
     * length within (500, 2000), no duplicates across the three files */
    static char line[65536];
    char **seen = calloc(80, sizeof(char *));
    int nseen = 0;
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/basic_%s.tsv", dir, lra_split_names[s]);
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        ck_assert_str_eq(line, "Source\tTarget\r\n");
        int n = 0;
        while (fgets(line, sizeof line, f)) {
            size_t L = strlen(line);
            ck_assert_msg(L > 3 && line[L - 2] == '\r' && line[L - 1] == '\n', "%s: line %d not CRLF", path, n + 2);
            line[L - 2] = '\0';
            char *tab = strchr(line, '\t');
            ck_assert_ptr_nonnull(tab);
            *tab = '\0';
            ck_assert_int_eq(lra_listops_eval(line), atoi(tab + 1));
            for (int k = 0; k < nseen; k++) ck_assert_msg(strcmp(seen[k], line) != 0, "duplicate example");
            seen[nseen++] = strdup(line);
            n++;
        }
        fclose(f);
        ck_assert_int_eq(n, s == 0 ? 60 : 10);
    }
    for (int k = 0; k < nseen; k++) free(seen[k]);
    free(seen);
    /* another seed gives other data */
    c.seed = 6;
    ck_assert_int_eq(lra_listops_generate(dir2, &c, err), LRA_OK);
    snprintf(path, sizeof path, "cmp -s %s/basic_train.tsv %s/basic_train.tsv", dir, dir2);
    ck_assert_int_ne(t_run(NULL, 0, "%s", path), 0);
}
END_TEST

/* generate --lengths=MIN,MAX: every tree is within (MIN, MAX) by the official count and has the
 * value written beside it; the set's mark says it is not the official lengths, and so does the
 * data source of a run on it; a malformed value or a task without the option exits 2 naming it. */
START_TEST(test_generate_lengths) {
    const char *root = t_tmpdir();
    char out[8192], path[512];
    int rc = t_run(out, sizeof out, "%s generate --task=listops --lengths=20,64 --sizes=200,20,20 --out=%s/short 2>&1",
                   t_bench(), root);
    ck_assert_msg(rc == 0 && strstr(out, "20 < length < 64"), "exit %d: %s", rc, out);
    static char line[65536];
    int n = 0, longest = 0;
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/short/basic_%s.tsv", root, lra_split_names[s]);
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); /* the header */
        while (fgets(line, sizeof line, f)) {
            char *tab = strchr(line, '\t');
            ck_assert_ptr_nonnull(tab);
            *tab = '\0';
            int toks = 0; /* operators, digits and ']', as the official length counts */
            for (char *p = line; *p; p++) toks += *p == '[' || *p == ']' || (*p >= '0' && *p <= '9');
            ck_assert_msg(toks > 20 && toks < 64, "%s: a tree of %d tokens", path, toks);
            ck_assert_int_eq(lra_listops_eval(line), atoi(tab + 1));
            longest = toks > longest ? toks : longest;
            n++;
        }
        fclose(f);
    }
    ck_assert_int_eq(n, 240);
    ck_assert_int_ge(longest, 40); /* the range is used, not only its bottom */
    rc = t_run(out, sizeof out, "cat %s/short/GENERATED_BY_LRA_BENCH", root);
    ck_assert_msg(strstr(out, "generator seed 1\nlengths 20 < length < 64, not the official"), "mark: %s", out);
    rc = t_run(out, sizeof out, "mkdir %s/d && mv %s/short %s/d/listops-1000 && %s --task=listops --data-dir=%s/d "
               "--profile=ci --dataset= --steps=2 --out=%s/r.json >/dev/null 2>&1 && grep -o '\"source\":[[:space:]]*\"[^\"]*' %s/r.json",
               root, root, root, t_bench(), root, root, root);
    ck_assert_msg(rc == 0 && strstr(out, "seed 1; lengths 20 < length < 64, not the official"), "exit %d: %s", rc, out);
    const char *bad[] = {"64,20", "20", "20,21", "a,b", "20,64,", "-1,30"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rc = t_run(out, sizeof out, "%s generate --task=listops --lengths=%s --out=%s/bad 2>&1", t_bench(), bad[i], root);
        char want[64];
        snprintf(want, sizeof want, "--lengths='%s'", bad[i]);
        ck_assert_msg(rc == 2 && strstr(out, want), "--lengths=%s: exit %d: %s", bad[i], rc, out);
    }
    rc = t_run(out, sizeof out, "%s generate --task=pathfinder --lengths=20,64 --out=%s/pf 2>&1", t_bench(), root);
    ck_assert_msg(rc == 2 && strstr(out, "--lengths is not an option of pathfinder"), "exit %d: %s", rc, out);
}
END_TEST

/* --dataset=short, the ci profile's default: generated when missing into DATA/listops-short/ (never
 * over the official files beside it), trees of 20 < length < 256, named in the report as a
 * substitute; --dataset= reads the official files under ci too; an unknown dataset exits 2 before
 * anything is written. */
START_TEST(test_short_dataset) {
    const char *root = t_tmpdir();
    char out[8192];
    int rc = t_run(out, sizeof out, "%s generate --task=listops --sizes=60,20,20 --out=%s/listops-1000 2>&1 && "
                   "%s --task=listops --profile=ci --data-dir=%s --steps=2 --out=%s/short.json 2>&1",
                   t_bench(), root, t_bench(), root, root);
    ck_assert_msg(rc == 0 && strstr(out, "generating the short splits") && strstr(out, "20 < length < 256") &&
                  !strstr(out, "inputs cut to"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "cd %s && cat listops-short/listops-1000/GENERATED_BY_LRA_BENCH && "
               "grep -c . listops-1000/basic_train.tsv && grep -o '\"substitute\":[^,]*' short.json", root);
    ck_assert_msg(rc == 0 && strstr(out, "lengths 20 < length < 256") && strstr(out, "\n61\n") &&
                  strstr(out, "short: trees of 20 < length < 256"), "exit %d: %s", rc, out);
    /* every example of the short set fits the ci profile's 256 tokens, none is shorter than 21 */
    lra_split sp = {0};
    char err[LRA_ERR_LEN], path[512];
    snprintf(path, sizeof path, "%s/listops-short/listops-1000/basic_val.tsv", root);
    ck_assert_int_eq(lra_listops_load_file(&sp, path, 100000, err), LRA_OK);
    for (size_t i = 0; i < sp.n; i++) {
        const int len = lra_split_len(&sp, i);
        ck_assert_msg(len > 20 && len < 256, "example %zu: %d tokens", i, len);
    }
    lra_split_free(&sp);
    rc = t_run(out, sizeof out, "%s --task=listops --profile=ci --dataset= --data-dir=%s --steps=2 --out=%s/off.json "
               "2>&1 && grep -c substitute %s/off.json", t_bench(), root, root, root);
    ck_assert_msg(rc != 0 && strstr(out, "inputs cut to 256") && strstr(out, "\n0\n"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s --task=listops --dataset=long --data-dir=%s --out=%s/long.json 2>&1; echo rc=$?; "
               "ls %s/long.json", t_bench(), root, root, root);
    ck_assert_msg(strstr(out, "--dataset=long: listops's alternative datasets are short") && strstr(out, "rc=2") &&
                  strstr(out, "No such file"), "%s", out);
}
END_TEST

/* A generation killed at any point leaves no split under the data directory: killed once 1, 2 or 3
 * splits, or all three and the mark, are staged (the STOP_IN_GENERATE hook), the directory holds no
 * basic_*.tsv (before, a kill between the renames left splits without the mark, which a later run
 * took for official files, or a lone split that made every later run refuse); the next generation
 * removes the staging directory and publishes all three with the mark. */
START_TEST(test_generation_killed_leaves_nothing) {
    const char *root = t_tmpdir();
    char msg[8192];
    for (int k = 1; k <= 4; k++) {
        int rc = t_run(msg, sizeof msg,
                       "d=%s/k%d; LRA_TEST_STOP_IN_GENERATE=%d %s generate --task=listops --out=$d --sizes=300,50,40 "
                       "2>/dev/null & p=$!; "
                       T_WAIT_STOPPED(6000)
                       "kill -KILL $p; wait $p; echo rc=$?; ls $d | grep -c basic_; ls -d $d.partial",
                       root, k, k, t_bench());
        ck_assert_msg(strstr(msg, "rc=137\n0\n") && strstr(msg, ".partial"), "killed at %d: %s", k, msg);
        rc = t_run(msg, sizeof msg, "d=%s/k%d; %s generate --task=listops --out=$d --sizes=300,50,40 && ls $d; "
                   "ls -d $d.partial", root, k, t_bench());
        ck_assert_msg(rc != 0 && strstr(msg, "basic_train.tsv") && strstr(msg, "basic_val.tsv") &&
                      strstr(msg, "basic_test.tsv") && strstr(msg, "GENERATED_BY_LRA_BENCH") &&
                      strstr(msg, "No such file"), "after the kill at %d: %s", k, msg);
    }
}
END_TEST

START_TEST(test_loader_official_format) {
    const char *dir = t_tmpdir();
    char path[512], err[LRA_ERR_LEN];
    snprintf(path, sizeof path, "%s/basic_test.tsv", dir);
    /* CRLF as the official files; the second line has an unknown operator */
    write_file(path, "Source\tTarget\r\n"
                     "( ( ( [MAX 2 ) 9 ) ] )\t9\r\n"
                     "( ( ( ( [SM 7 ) [FIRST ) 9 ) ] )\t4\r\n"
                     "( ( ( [MIN ( ( ( [MED 0 ) 5 ) ] ) ) 3 ) ] )\t0\r\n");
    lra_split s;
    ck_assert_msg(lra_listops_load_file(&s, path, 2000, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 3);
    /* ids: 1 [MAX, 2 [MIN, 3 [MED, 4 [SM, 5 X (for ']'), 6..15 digits, 16 unknown */
    const int e0[] = {1, 8, 15, 5}, e1[] = {4, 13, 16, 15, 5}, e2[] = {2, 3, 6, 11, 5, 9, 5};
    const int *exp[3] = {e0, e1, e2};
    const int len[3] = {4, 5, 7}, lab[3] = {9, 4, 0};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(lra_split_len(&s, (size_t)i), len[i]);
        ck_assert_int_eq(s.labels[i], lab[i]);
        for (int t = 0; t < len[i]; t++) ck_assert_int_eq(s.tokens[s.offset[i] + t], exp[i][t]);
    }
    /* padding and mask */
    int32_t tok[10], label;
    uint8_t mask[10];
    lra_split_example(&s, 0, 10, tok, mask, &label);
    ck_assert_int_eq(tok[3], 5);
    ck_assert_int_eq(tok[4], 0);
    ck_assert_int_eq(mask[3], 1);
    ck_assert_int_eq(mask[4], 0);
    ck_assert_int_eq(label, 9);
    char sha_crlf[65];
    memcpy(sha_crlf, s.sha256, 65);
    lra_split_free(&s);
    /* truncation */
    ck_assert_int_eq(lra_listops_load_file(&s, path, 3, err), LRA_OK);
    ck_assert_int_eq(lra_split_len(&s, 2), 3);
    ck_assert_int_eq(s.tokens[s.offset[2] + 2], 6);
    lra_split_free(&s);
    /* LF line ends: same tokens, another checksum */
    write_file(path, "Source\tTarget\n( ( ( [MAX 2 ) 9 ) ] )\t9\n");
    ck_assert_int_eq(lra_listops_load_file(&s, path, 2000, err), LRA_OK);
    ck_assert_int_eq((int)s.n, 1);
    ck_assert_int_eq(lra_split_len(&s, 0), 4);
    ck_assert_str_ne(s.sha256, sha_crlf);
    lra_split_free(&s);
}
END_TEST

/* FIPS 180-2 test vectors, including a message fed in uneven pieces */
START_TEST(test_sha256_vectors) {
    lra_sha256 h;
    char hex[65];
    lra_sha256_init(&h);
    lra_sha256_update(&h, "abc", 3);
    lra_sha256_final_hex(&h, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    lra_sha256_init(&h);
    lra_sha256_final_hex(&h, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    static char a[1000000];
    memset(a, 'a', sizeof a);
    lra_sha256_init(&h);
    for (size_t off = 0, step = 1; off < sizeof a; off += step, step = step * 3 % 997 + 1)
        lra_sha256_update(&h, a + off, off + step <= sizeof a ? step : sizeof a - off);
    lra_sha256_final_hex(&h, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(test_loader_rejects_malformed) {
    const char *dir = t_tmpdir();
    char path[512], err[LRA_ERR_LEN];
    lra_split s;
    snprintf(path, sizeof path, "%s/bad.tsv", dir);
    struct { const char *text; const char *expect; } cases[] = {
        {"Source\tTarget\r\n( ( ( [MAX 2 ) 9 ) ] )\t9\r\n( ( [MIN 2 ) ] )\r\n", "bad.tsv:3"},
        {"Source\tTarget\r\n( ( ( [MAX 2 ) 9 ) ] )\t12\r\n", "bad.tsv:2"},
        {"Source\tTarget\r\n( ( ( [MAX 2 ) 9 ) ] )\tx\r\n", "bad.tsv:2"},
        {"Src\tTgt\r\n( ( ( [MAX 2 ) 9 ) ] )\t9\r\n", "bad.tsv:1"},
        /* a file converted to CRLF twice: the message shows the bytes it found */
        {"Source\tTarget\r\r\n( ( ( [MAX 2 ) 9 ) ] )\t9\r\r\n", "found 'Source<TAB>Target<CR><CR><LF>'"},
        {"Source\tTarget\r\n", "no examples"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(path, cases[i].text);
        ck_assert_int_eq(lra_listops_load_file(&s, path, 2000, err), LRA_ERR_FORMAT);
        ck_assert_msg(strstr(err, cases[i].expect), "case %zu: message '%s' lacks '%s'", i, err, cases[i].expect);
    }
    snprintf(path, sizeof path, "%s/missing.tsv", dir);
    ck_assert_int_eq(lra_listops_load_file(&s, path, 2000, err), LRA_ERR_IO);
    ck_assert_msg(strstr(err, "missing.tsv"), "%s", err);
}
END_TEST

/* A split name taken by a directory, a FIFO or dangling links is said as such, and nothing is
 * generated (the advice for a missing split, "remove the others", would delete good files; three
 * dangling links used to be taken for no data at all, and 660 MB generated beside them). */
START_TEST(test_split_not_a_regular_file) {
    const char *dir = t_tmpdir();
    char msg[8192];
    int rc = t_run(msg, sizeof msg,
                   "cd %1$s && mkdir d1 d2 d3 && mkdir d1/basic_train.tsv && mkfifo d3/basic_val.tsv && "
                   "for s in train val test; do ln -s /nonexistent/x d2/basic_$s.tsv; done && "
                   "for d in d1 d2 d3; do %2$s --profile=ci --dataset= --data-dir=$d --out=$d.json; echo rc=$?; done; "
                   "ls -d */listops-1000 2>/dev/null | head -1", dir, t_bench());
    ck_assert_msg(rc == 0, "%s", msg);
    ck_assert_msg(strstr(msg, "d1/basic_train.tsv is a directory, not a ListOps split file") &&
                  strstr(msg, "d2/basic_train.tsv is a symbolic link to nothing") &&
                  strstr(msg, "d3/basic_val.tsv is a FIFO") && !strstr(msg, "rc=0") && !strstr(msg, "listops-1000") &&
                  !strstr(msg, "remove them"), "%s", msg);
}
END_TEST

Suite *listops_suite(void) {
    Suite *s = suite_create("listops");
    TCase *tc = tcase_create("generator");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_evaluator_by_hand);
    tcase_add_test(tc, test_generator_values_and_format);
    tcase_add_test(tc, test_generator_split_files);
    tcase_add_test(tc, test_generation_killed_leaves_nothing);
    tcase_add_test(tc, test_generate_lengths);
    tcase_add_test(tc, test_short_dataset);
    suite_add_tcase(s, tc);
    tc = tcase_create("loader");
    tcase_add_test(tc, test_loader_official_format);
    tcase_add_test(tc, test_loader_rejects_malformed);
    tcase_add_test(tc, test_split_not_a_regular_file);
    tcase_add_test(tc, test_sha256_vectors);
    suite_add_tcase(s, tc);
    return s;
}
