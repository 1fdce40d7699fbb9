/* test_retrieval.c - Retrieval: AAN TSV lines in the official format (float labels, no header,
 * five columns, CRLF or LF) token by token, the 10000-byte cut, malformed lines, the pair layout
 * the batcher hands the dual encoder, and every backend end to end with both heads. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "../attention/attention.h"
#include "../harness/encoder/batcher.h"
#include "../tasks/retrieval.h"
#include "tests.h"

START_TEST(test_aan_tokens) {
    const char *dir = t_tmpdir();
    char path[512], err[LRA_ERR_LEN];
    static char big[12050];
    memset(big, 'z', 12000);
    big[12000] = '\0';
    static char text[20000];
    snprintf(text, sizeof text, "1.0\tacl1\tacl2\tAb\tc d\r\n0.0\tx\ty\t%s\tE\n\n1\tp\tq\t\t\xff\n", big);
    snprintf(path, sizeof path, "%s/new_aan_pairs.train.tsv", dir);
    t_write_file(path, text, strlen(text));
    lra_split s;
    ck_assert_msg(lra_retrieval_load_file(&s, path, 20000, err) == LRA_OK, "%s", err);
    ck_assert_int_eq((int)s.n, 3);
    ck_assert_int_eq(lra_split_docs(&s), 2);
    ck_assert_int_eq(s.labels[0], 1);
    ck_assert_int_eq(s.labels[1], 0);
    ck_assert_int_eq(s.labels[2], 1);
    /* example 0: "Ab" and "c d" (CRLF stripped), bytes + 1 */
    const uint16_t want0[] = {'A' + 1, 'b' + 1}, want1[] = {'c' + 1, ' ' + 1, 'd' + 1};
    ck_assert_int_eq((int)(s.offset[1] - s.offset[0]), 2);
    ck_assert_int_eq((int)(s.offset[2] - s.offset[1]), 3);
    ck_assert_int_eq(memcmp(s.tokens + s.offset[0], want0, sizeof want0), 0);
    ck_assert_int_eq(memcmp(s.tokens + s.offset[1], want1, sizeof want1), 0);
    /* example 1: the 12000-byte document cut to 10000 even with max_len 20000 */
    ck_assert_int_eq((int)(s.offset[3] - s.offset[2]), 10000);
    ck_assert_int_eq(lra_split_len(&s, 1), 10000);
    /* example 2: an empty first document, byte 0xff -> 256 */
    ck_assert_int_eq((int)(s.offset[5] - s.offset[4]), 0);
    ck_assert_int_eq(s.tokens[s.offset[5]], 256);
    lra_split_free(&s);
    /* max_len below the cut; the batcher's pair layout: rows 2i and 2i+1, each padded to L */
    ck_assert_msg(lra_retrieval_load_file(&s, path, 4, err) == LRA_OK, "%s", err);
    int32_t tok[2 * 2 * 4], lab[2];
    uint8_t mask[2 * 2 * 4];
    long real;
    const uint32_t idx[2] = {0, 2};
    int L = lra_batch_fill(&s, idx, 2, 0, 4, tok, mask, lab, &real);
    ck_assert_int_eq(L, 3);
    ck_assert_int_eq(real, 2 + 3 + 0 + 1);
    const int32_t want[12] = {'A' + 1, 'b' + 1, 0, 'c' + 1, ' ' + 1, 'd' + 1, 0, 0, 0, 256, 0, 0};
    for (int i = 0; i < 12; i++) ck_assert_msg(tok[i] == want[i] && mask[i] == (want[i] != 0), "row element %d", i);
    ck_assert(lab[0] == 1 && lab[1] == 1);
    lra_split_free(&s);
}
END_TEST

START_TEST(test_aan_bad_lines) {
    static const struct { const char *line, *expect; } cases[] = {
        {"1.0\ta\tb\tonly four\n", ":1: 4 tab-separated columns"},
        {"2.0\ta\tb\tx\ty\n", "label '2.0'"},
        {"yes\ta\tb\tx\ty\n", "label 'yes'"},
        {"0.5\ta\tb\tx\ty\n", "label '0.5'"},
    };
    char path[512], err[LRA_ERR_LEN];
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        snprintf(path, sizeof path, "%s/new_aan_pairs.eval.tsv", t_tmpdir());
        t_write_file(path, cases[c].line, strlen(cases[c].line));
        lra_split s;
        ck_assert_int_eq(lra_retrieval_load_file(&s, path, 100, err), LRA_ERR_FORMAT);
        ck_assert_msg(strstr(err, cases[c].expect) && strstr(err, "new_aan_pairs.eval.tsv"), "case %zu: %s", c, err);
    }
}
END_TEST

/* a release-like layout with 40/12/12 pairs; label 1 pairs share their first 60 bytes */
static const char *aan_data(void) {
    static char dir[64];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s", t_tmpdir());
    static const char *const split[3] = {"train", "eval", "test"};
    lra_rng r;
    lra_rng_seed(&r, 9);
    for (int s = 0; s < 3; s++) {
        static char text[64 * 1024];
        size_t at = 0;
        for (int i = 0; i < (s ? 12 : 40); i++) {
            char a[400], b[400];
            int la = (int)lra_rng_range(&r, 80, 390), lb = (int)lra_rng_range(&r, 80, 390);
            for (int t = 0; t < la; t++) a[t] = (char)('a' + lra_rng_range(&r, 0, 25));
            for (int t = 0; t < lb; t++) b[t] = i % 2 && t < 60 ? a[t] : (char)('a' + lra_rng_range(&r, 0, 25));
            a[la] = b[lb] = '\0';
            at += (size_t)snprintf(text + at, sizeof text - at, "%d.0\tp%d\tq%d\t%s\t%s\n", i % 2, i, i, a, b);
        }
        char path[512];
        snprintf(path, sizeof path, "%s/lra_release/lra_release/tsv_data/new_aan_pairs.%s.tsv", dir, split[s]);
        t_write_file(path, text, at);
    }
    return dir;
}

START_TEST(test_retrieval_every_backend_end_to_end) {
    const char *data = aan_data(), *out = t_tmpdir();
    char msg[8192], path[512];
    for (int bi = 0; bi < lra_attn_count(); bi++) {
        for (int head = 0; head < 2; head++) {
            snprintf(path, sizeof path, "%s/%s-%d.json", out, lra_attn_name_at(bi), head);
            int rc = t_run(msg, sizeof msg,
                           "%s --task=retrieval --profile=ci --steps=3 --backend=%s --retrieval-head=%s --data-dir=%s "
                           "--out=%s && grep -c '\"examples\":\\s*12' %s",
                           t_bench(), lra_attn_name_at(bi), head ? "paper" : "official", data, path, path);
            ck_assert_msg(rc == 0, "%s head %d: exit %d: %s", lra_attn_name_at(bi), head, rc, msg);
        }
    }
    int rc = t_run(msg, sizeof msg, "%s --task=retrieval --profile=ci --data-dir=%s", t_bench(), out);
    ck_assert_msg(rc == 1 && strstr(msg, "fetch --task=retrieval"), "%s", msg);
}
END_TEST

Suite *retrieval_suite(void) {
    Suite *s = suite_create("retrieval");
    TCase *tc = tcase_create("loader");
    tcase_add_test(tc, test_aan_tokens);
    tcase_add_test(tc, test_aan_bad_lines);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_retrieval_every_backend_end_to_end);
    suite_add_tcase(s, tc);
    return s;
}
