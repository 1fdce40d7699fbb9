/* test_compare.c - `lra-bench compare` on hand-written reports: tables, averages, mean and
 * standard deviation, the parameter rule and the regression gate against values computed by
 * hand; unreadable reports rejected with the file named. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "tests.h"

/* a minimal completed report with the fields compare reads */
static void report(const char *dir, const char *name, const char *task, const char *backend, long seed, double acc,
                   double tokens_s, double params, int version, const char *status) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"schema_version\": %d, \"status\": \"%s\", \"task\": \"%s\", \"backend\": \"%s\", \"profile\": \"small\","
            " \"seed\": %ld, \"data\": {\"checksum_sha256\": \"%s\"},"
            " \"results\": {\"test\": {\"accuracy\": %.17g, \"loss\": 1.0, \"examples\": 2000}},"
            " \"throughput\": {\"train_steps_per_s\": 2.5, \"train_tokens_per_s\": %.17g, \"eval_tokens_per_s\": 9000},"
            " \"memory\": {\"peak_rss_bytes\": 104857600}, \"parameters\": {\"count\": %.17g}}\n",
            version, status, task, backend, seed, task, acc, tokens_s, params);
    fclose(f);
}

START_TEST(test_tables_by_hand) {
    const char *d = t_tmpdir();
    report(d, "f0.json", "listops", "full", 0, 0.30, 1000, 1000, 1, "completed");
    report(d, "f1.json", "listops", "full", 1, 0.34, 1200, 1000, 1, "completed");
    report(d, "f2.json", "listops", "full", 2, 0.32, 1400, 1000, 1, "completed");
    const char *tasks[5] = {"listops", "text", "retrieval", "image", "pathfinder"};
    const double acc[5] = {0.40, 0.60, 0.55, 0.45, 0.70};
    for (int t = 0; t < 5; t++) {
        char name[64];
        snprintf(name, sizeof name, "m%d.json", t);
        report(d, name, tasks[t], "mita", 0, acc[t], 3000, t == 0 ? 1150 : 500, 1, "completed");
    }
    report(d, "a.json", "listops", "agent", 0, 0.20, 2000, 1100, 1, "completed");
    report(d, "r.json", "listops", "moe", 0, 0.99, 2000, 1000, 1, "running");
    char out[16384];
    int rc = t_run(out, sizeof out, "%s compare %s/*.json", t_bench(), d);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    /* mean of 30, 34, 32 is 32; sample sd sqrt((4 + 4 + 0) / 2) = 2 */
    ck_assert_msg(strstr(out, "| full | small | 32.00 ± 2.00 (n=3) | - |"), "%s", out);
    /* the five-task average (40 + 60 + 55 + 45 + 70) / 5 = 54 */
    ck_assert_msg(strstr(out, "| mita | small | 40.00 | 60.00 | 55.00 | 45.00 | 70.00 | - | 54.00 |"), "%s", out);
    ck_assert_msg(strstr(out, "| agent | small | 20.00 | - | - | - | - | - | - |"), "%s", out);
    ck_assert_msg(strstr(out, "36.37 | 64.27 | 57.46 | 42.44 | 71.40 | FAIL | 54.39 |") && strstr(out, "published"), "%s", out);
    /* throughput means: (1000 + 1200 + 1400) / 3 = 1200 tokens/s; parameters against full */
    ck_assert_msg(strstr(out, "| listops | full | small | 3 | 2.500 | 1200 | 9000 | 100 | 1000 | +0.0% |"), "%s", out);
    ck_assert_msg(strstr(out, "| listops | mita | small | 1 | 2.500 | 3000 | 9000 | 100 | 1150 | +15.0% **over 10%** |"), "%s", out);
    ck_assert_msg(strstr(out, "| listops | agent | small | 1 | 2.500 | 2000 | 9000 | 100 | 1100 | +10.0% |"), "%s", out);
    ck_assert_msg(strstr(out, "| text | mita | small | 1 | 2.500 | 3000 | 9000 | 100 | 500 | - |"), "%s", out);
    /* the running report is named and left out */
    ck_assert_msg(strstr(out, "r.json: status 'running'") && !strstr(out, "| moe |"), "%s", out);
    /* CSV */
    rc = t_run(out, sizeof out, "%s compare --format=csv %s/f0.json %s/f1.json %s/f2.json", t_bench(), d, d, d);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "listops,full,small,3,32.0000,2.0000,2.5000,1200.0,9000.0,100.0,1000,1.0000\n"), "%s", out);
}
END_TEST

START_TEST(test_regression_gate) {
    const char *d = t_tmpdir(), *b = t_tmpdir();
    report(b, "base.json", "listops", "mita", 0, 0.40, 1000, 1000, 1, "completed");
    report(d, "acc.json", "listops", "mita", 0, 0.35, 1000, 1000, 1, "completed"); /* 12.5% lower */
    char out[8192];
    int rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-regression=10 %s/acc.json", t_bench(), b, d);
    ck_assert_msg(rc == 3 && strstr(out, "12.5% lower"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-regression=15 %s/acc.json", t_bench(), b, d);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    report(d, "tok.json", "listops", "mita", 0, 0.40, 800, 1000, 1, "completed"); /* 20% fewer tokens/s */
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-regression=10 %s/tok.json", t_bench(), b, d);
    ck_assert_msg(rc == 3 && strstr(out, "tokens/s 1000 -> 800 (20.0% lower"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json %s/tok.json", t_bench(), b, d);
    ck_assert_int_eq(rc, 2); /* --baseline without --max-regression */
}
END_TEST

START_TEST(test_unreadable_reports) {
    const char *d = t_tmpdir();
    char out[4096], path[512];
    report(d, "v2.json", "listops", "full", 0, 0.3, 1000, 1000, 2, "completed");
    int rc = t_run(out, sizeof out, "%s compare %s/v2.json", t_bench(), d);
    ck_assert_msg(rc == 1 && strstr(out, "v2.json") && strstr(out, "schema_version 2"), "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/broken.json", d);
    FILE *f = fopen(path, "w");
    fputs("{\"schema_version\": 1, \"status\": ", f);
    fclose(f);
    rc = t_run(out, sizeof out, "%s compare %s", t_bench(), path);
    ck_assert_msg(rc == 1 && strstr(out, "broken.json"), "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/nofield.json", d);
    f = fopen(path, "w");
    fputs("{\"schema_version\": 1, \"status\": \"completed\", \"task\": \"listops\"}", f);
    fclose(f);
    rc = t_run(out, sizeof out, "%s compare %s", t_bench(), path);
    ck_assert_msg(rc == 1 && strstr(out, "nofield.json") && strstr(out, "'backend'"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare %s/missing.json", t_bench(), d);
    ck_assert_msg(rc == 1 && strstr(out, "missing.json"), "exit %d: %s", rc, out);
    report(d, "s0.json", "listops", "full", 4, 0.3, 1000, 1000, 1, "completed");
    report(d, "s1.json", "listops", "full", 4, 0.3, 1000, 1000, 1, "completed");
    rc = t_run(out, sizeof out, "%s compare %s/s0.json %s/s1.json", t_bench(), d, d);
    ck_assert_msg(rc == 1 && strstr(out, "both are seed 4"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare", t_bench());
    ck_assert_int_eq(rc, 2);
    rc = t_run(out, sizeof out, "%s compare --frobnicate %s/s0.json", t_bench(), d);
    ck_assert_msg(rc == 2 && strstr(out, "--frobnicate"), "exit %d: %s", rc, out);
}
END_TEST

Suite *compare_suite(void) {
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("compare");
    tcase_add_test(tc, test_tables_by_hand);
    tcase_add_test(tc, test_regression_gate);
    tcase_add_test(tc, test_unreadable_reports);
    suite_add_tcase(s, tc);
    return s;
}
