/* test_compare.c - `lra-bench compare` on hand-written reports: tables, averages, mean and
 * standard deviation, the parameter rule and the regression gate against values computed by
 * hand; unreadable reports rejected with the file named. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>

#include "../harness/report/stats.h"
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
    t_corpus("report", path, 0, 0);
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
    /* mean of 30, 34, 32 is 32; sample sd sqrt((4 + 4 + 0) / 2) = 2; the interval 32 +- 4.303 x 2 / sqrt(3) */
    ck_assert_msg(strstr(out, "| full | small | 32.00 [27.03, 36.97] (n=3) | - |"), "%s", out);
    /* full and agent have ListOps only: no average, for any row */
    ck_assert_msg(strstr(out, "| mita | small | 40.00 (n=1)† | 60.00 (n=1)† | 55.00 (n=1)† | 45.00 (n=1)† | 70.00 (n=1)† | - | - |"),
                  "%s", out);
    ck_assert_msg(strstr(out, "| agent | small | 20.00 (n=1)† | - | - | - | - | - | - |"), "%s", out);
    ck_assert_msg(strstr(out, "36.37 | 64.27 | 57.46 | 42.44 | 71.40 | FAIL | - |") && strstr(out, "published") &&
                  strstr(out, "Avg: not shown"), "%s", out);
    /* mita alone: the five-task average (40 + 60 + 55 + 45 + 70) / 5 = 54, the paper's 54.39 */
    rc = t_run(out, sizeof out, "%s compare %s/m*.json", t_bench(), d);
    ck_assert_msg(rc == 0 && strstr(out, "| LRA avg |") && strstr(out, "| 70.00 (n=1)† | - | 54.00 (n=1)† |") &&
                  strstr(out, "FAIL | 54.39 |"), "%s", out);
    rc = t_run(out, sizeof out, "%s compare %s/*.json", t_bench(), d);
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
    ck_assert_msg(strstr(out, "listops,full,small,3,32.0000,2.0000,2.5000,1200.0,9000.0,100.0,1000,1.0000,32.0000,2.0000,,,"
                              "27.0313,36.9687,,,,,,,,\"\"\n"), "%s", out);
    /* the same backend and seed with other --attn-opt: another row, not a duplicate seed */
    const char *o = t_tmpdir();
    report(o, "m1.json", "listops", "mita", 0, 0.40, 1000, 1000, 1, "completed");
    report(o, "m2.json", "listops", "mita", 0, 0.45, 1000, 1000, 1, "completed");
    ck_assert_int_eq(t_run(NULL, 0, "sed -i 's/\"seed\": 0,/\"seed\": 0, \"config\": {\"attn-opt\": \"k=128\"},/' %s/m2.json", o), 0);
    rc = t_run(out, sizeof out, "%s compare %s/m1.json %s/m2.json", t_bench(), o, o);
    ck_assert_msg(rc == 0 && strstr(out, "| mita | small | 40.00 (n=1)† |") && strstr(out, "| mita[k=128] | small | 45.00 (n=1)† |"),
                  "exit %d: %s", rc, out);
    /* the same seed in bf16: a row of its own (profile small/bf16), never a seed of the fp32 row */
    report(o, "m3.json", "listops", "mita", 0, 0.42, 1000, 1000, 1, "completed");
    ck_assert_int_eq(t_run(NULL, 0, "sed -i 's/\"seed\": 0,/\"seed\": 0, \"config\": {\"precision\": \"bf16\"},/' %s/m3.json", o), 0);
    rc = t_run(out, sizeof out, "%s compare %s/m1.json %s/m3.json", t_bench(), o, o);
    ck_assert_msg(rc == 0 && strstr(out, "| mita | small | 40.00 (n=1)† |") && strstr(out, "| mita | small/bf16 | 42.00 (n=1)† |"),
                  "exit %d: %s", rc, out);
    /* the compute line: wall time summed over runs, and times each report's processes x threads
     * (1 hour at 2 threads and half an hour with no parallel record: 1.5 wall hours, 2.5 core-hours) */
    ck_assert_int_eq(t_run(NULL, 0, "sed -i 's/\"seed\": 0,/\"seed\": 0, \"wall_time_s\": 3600, \"parallel\": "
                                    "{\"processes\": 1, \"threads_per_process\": 2},/' %s/m1.json && "
                                    "sed -i 's/\"seed\": 0,/\"seed\": 0, \"wall_time_s\": 1800,/' %s/m2.json", o, o), 0);
    rc = t_run(out, sizeof out, "%s compare %s/m1.json %s/m2.json", t_bench(), o, o);
    ck_assert_msg(rc == 0 && strstr(out, "Compute: 2 runs, 1.5 wall hours, 2.5 core-hours"), "exit %d: %s", rc, out);
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
    ck_assert_msg(rc == 0 && strstr(out, "1 baseline group checked, 0 failed their limits, 0 missing: the gate passes"),
                  "exit %d: %s", rc, out);
    /* a pattern in --baseline is compare's to expand (the shell leaves --baseline=DIR/x.json alone) */
    rc = t_run(out, sizeof out, "%s compare '--baseline=%s/b*.json' --max-regression=15 %s/acc.json", t_bench(), b, d);
    ck_assert_msg(rc == 0 && strstr(out, "1 baseline group checked"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare '--baseline=%s/none*.json' --max-regression=15 %s/acc.json", t_bench(), b, d);
    ck_assert_msg(rc == 2 && strstr(out, "none*.json' matches no file"), "exit %d: %s", rc, out);
    /* a file whose name holds pattern characters (the matrix's image[fashion-mnist]-...) is itself */
    rc = t_run(out, sizeof out, "cp %1$s/base.json '%1$s/x[y].json' && %2$s compare '--baseline=%1$s/x[y].json' "
               "--max-regression=15 %3$s/acc.json", b, t_bench(), d);
    ck_assert_msg(rc == 0 && strstr(out, "1 baseline group checked"), "exit %d: %s", rc, out);
    report(d, "tok.json", "listops", "mita", 0, 0.40, 800, 1000, 1, "completed"); /* 20% fewer tokens/s */
    /* speed has its own limit: a bit-identical run on a busy runner does not fail the accuracy gate */
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-regression=10 %s/tok.json", t_bench(), b, d);
    ck_assert_msg(rc == 0 && strstr(out, "1 baseline group checked, 0 failed their limits, 0 missing: the gate passes"),
                  "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-slowdown=10 %s/tok.json", t_bench(), b, d);
    ck_assert_msg(rc == 3 && strstr(out, "tokens/s 1000 -> 800 (20.0% lower, limit 10%)"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-slowdown=25 %s/tok.json", t_bench(), b, d);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    /* memory: 100 MB -> 150 MB */
    report(d, "mem.json", "listops", "mita", 0, 0.40, 1000, 1000, 1, "completed");
    ck_assert_int_eq(t_run(NULL, 0, "sed -i 's/\"peak_rss_bytes\": 104857600/\"peak_rss_bytes\": 157286400/' %s/mem.json", d), 0);
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-memory-growth=20 %s/mem.json", t_bench(), b, d);
    ck_assert_msg(rc == 3 && strstr(out, "peak RSS 100 MB -> 150 MB (50.0% more, limit 20%)"), "exit %d: %s", rc, out);
    /* the gate cannot pass on nothing: a baseline group whose current run diverged, or is absent */
    report(d, "div.json", "listops", "mita", 0, 0.40, 1000, 1000, 1, "diverged");
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-regression=5 %s/div.json", t_bench(), b, d);
    ck_assert_msg(rc == 3 && strstr(out, "missing: listops/mita/small is in the baseline and has no completed report") &&
                  strstr(out, "0 baseline groups checked"), "exit %d: %s", rc, out);
    report(d, "other.json", "listops", "full", 0, 0.40, 1000, 1000, 1, "completed");
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-regression=5 %s/other.json", t_bench(), b, d);
    ck_assert_msg(rc == 3 && strstr(out, "1 missing"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-regression=5 --allow-missing %s/other.json %s/acc.json",
               t_bench(), b, d, d);
    ck_assert_msg(rc == 3 && strstr(out, "12.5% lower"), "exit %d: %s", rc, out); /* allowed missing, still a regression */
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json --max-regression=50 --allow-missing %s/other.json", t_bench(),
               b, d);
    ck_assert_msg(rc == 3 && strstr(out, "0 baseline groups checked"), "nothing checked must fail even when allowed: %d: %s",
                  rc, out);
    rc = t_run(out, sizeof out, "%s compare --baseline=%s/base.json %s/tok.json", t_bench(), b, d);
    ck_assert_int_eq(rc, 2); /* --baseline without a limit */
    rc = t_run(out, sizeof out, "%s compare --max-slowdown=5 %s/tok.json", t_bench(), d);
    ck_assert_int_eq(rc, 2); /* a limit without --baseline */
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
    t_corpus("report", path, 0, 0);
    rc = t_run(out, sizeof out, "%s compare %s", t_bench(), path);
    ck_assert_msg(rc == 1 && strstr(out, "broken.json:1:") && strstr(out, "truncated?"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare %s", t_bench(), d); /* a directory, not its reports */
    ck_assert_msg(rc == 1 && strstr(out, "Is a directory"), "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/nofield.json", d);
    f = fopen(path, "w");
    fputs("{\"schema_version\": 1, \"status\": \"completed\", \"task\": \"listops\"}", f);
    fclose(f);
    t_corpus("report", path, 0, 0);
    rc = t_run(out, sizeof out, "%s compare %s", t_bench(), path);
    ck_assert_msg(rc == 1 && strstr(out, "nofield.json") && strstr(out, "'backend'"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare %s/missing.json", t_bench(), d);
    ck_assert_msg(rc == 1 && strstr(out, "missing.json"), "exit %d: %s", rc, out);
    report(d, "s0.json", "listops", "full", 4, 0.3, 1000, 1000, 1, "completed");
    report(d, "s1.json", "listops", "full", 4, 0.3, 1000, 1000, 1, "completed");
    rc = t_run(out, sizeof out, "%s compare %s/s0.json %s/s1.json", t_bench(), d, d);
    ck_assert_msg(rc == 1 && strstr(out, "both are seed 4"), "exit %d: %s", rc, out);
    /* an accuracy out of range is named (its message once read freed memory: fuzz_report, under ASan) */
    report(d, "acc.json", "listops", "full", 5, 1.32, 1000, 1000, 1, "completed");
    rc = t_run(out, sizeof out, "%s compare %s/acc.json", t_bench(), d);
    ck_assert_msg(rc == 1 && strstr(out, "acc.json: test accuracy 1.32 is not in [0, 1]"), "exit %d: %s", rc, out);
    /* so is a seed that is no whole number in range (its conversion to long was undefined) */
    report(d, "seed.json", "listops", "full", 6, 0.3, 1000, 1000, 1, "completed");
    ck_assert_int_eq(t_run(NULL, 0, "sed -i 's/\"seed\": 6/\"seed\": 1.5e92/' %s/seed.json", d), 0);
    rc = t_run(out, sizeof out, "%s compare %s/seed.json", t_bench(), d);
    ck_assert_msg(rc == 1 && strstr(out, "seed.json: seed 1.5e+92 is not a whole number"), "exit %d: %s", rc, out);
    /* what is no report is refused at once, naming it: a device read without end (it grew past 4 GB
     * before), a FIFO whose open would wait forever, a file past 64 MiB, a second value after the
     * first; resume and plot read through the same reader */
    rc = t_run(out, sizeof out, "%s compare /dev/zero", t_bench());
    ck_assert_msg(rc == 1 && strstr(out, "/dev/zero: not a regular file"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "mkfifo %s/fifo.json && %s compare %s/fifo.json; echo rc=$?; %s resume %s/fifo.json; "
               "echo rc=$?", d, t_bench(), d, t_bench(), d);
    ck_assert_msg(strstr(out, "fifo.json: not a regular file") && !strstr(out, "rc=0"), "%s", out);
    rc = t_run(out, sizeof out, "truncate -s 65M %s/big.json && %s compare %s/big.json", d, t_bench(), d);
    ck_assert_msg(rc == 1 && strstr(out, "big.json: more than 64 MiB"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "cat %s/s0.json %s/s1.json > %s/two.json && %s compare %s/two.json", d, d, d, t_bench(), d);
    ck_assert_msg(rc == 1 && strstr(out, "two.json:") && strstr(out, "text after the JSON value"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare", t_bench());
    ck_assert_int_eq(rc, 2);
    rc = t_run(out, sizeof out, "%s compare --frobnicate %s/s0.json", t_bench(), d);
    ck_assert_msg(rc == 2 && strstr(out, "--frobnicate"), "exit %d: %s", rc, out);
}
END_TEST

/* Writes a completed run report with model selection and a curve: best-val test accuracy `best`,
 * last-step `last`, validation 0.20, 0.40, 0.30 at elapsed 100, 200, 300 s. */
static void selected_report(const char *dir, const char *name, const char *task, const char *dataset, long seed,
                            double best, double last) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"schema_version\": 1, \"kind\": \"run\", \"status\": \"completed\", \"task\": \"%s\", \"backend\": \"full\","
            " \"profile\": \"repro\", \"seed\": %ld, \"data\": {\"checksum_sha256\": \"x\"%s%s%s},"
            " \"results\": {\"test\": {\"accuracy\": %.17g}, \"best_val\": {\"step\": 20, \"test\": {\"accuracy\": %.17g}}},"
            " \"curve\": [{\"val_accuracy\": 0.2, \"elapsed_s\": 100}, {\"val_accuracy\": 0.4, \"elapsed_s\": 200},"
            " {\"val_accuracy\": 0.3, \"elapsed_s\": 300}],"
            " \"throughput\": {\"train_steps_per_s\": 1, \"train_tokens_per_s\": 1000, \"eval_tokens_per_s\": 3000},"
            " \"memory\": {\"peak_rss_bytes\": 104857600}, \"parameters\": {\"count\": 1000}}\n",
            task, seed, dataset ? ", \"dataset\": \"" : "", dataset ? dataset : "", dataset ? "\"" : "", last, best);
    fclose(f);
    t_corpus("report", path, 0, 0);
}

/* The field's protocol: the table shows test accuracy at the best-validation step unless told
 * otherwise; --target finds the first evaluation at or above it; what is not a comparable run (a
 * speed report, a run without timed steps) is named and left out; a substitute dataset gets its
 * own column. */
START_TEST(test_selection_target_and_skips) {
    const char *d = t_tmpdir();
    char out[16384], path[512];
    selected_report(d, "s0.json", "listops", NULL, 0, 0.37, 0.35);
    selected_report(d, "s1.json", "listops", NULL, 1, 0.39, 0.31);
    selected_report(d, "fm.json", "image", "fashion-mnist", 0, 0.80, 0.79);
    snprintf(path, sizeof path, "%s/speed.json", d);
    FILE *f = fopen(path, "w");
    fputs("{\"schema_version\": 1, \"kind\": \"speed\", \"entries\": []}", f);
    fclose(f);
    report(d, "untimed.json", "text", "full", 0, 0.5, 0, 1000, 1, "completed");
    ck_assert_int_eq(t_run(NULL, 0, "sed -i 's/\"train_steps_per_s\": 2.5/\"train_steps_per_s\": null/' %s/untimed.json", d), 0);
    int rc = t_run(out, sizeof out, "%s compare --target=0.35 %s/*.json", t_bench(), d);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    /* best-val: (37 + 39) / 2 = 38, sd sqrt(2), 38 +- 12.706 x 1; the last step's would be 33 */
    ck_assert_msg(strstr(out, "at the best-validation step") && strstr(out, "| full | repro | 38.00 [25.29, 50.71] (n=2)† |"), "%s", out);
    ck_assert_msg(strstr(out, "| image[fashion-mnist] |") && strstr(out, " 80.00 (n=1)† | - |"), "%s", out);
    /* 0.35 is first reached by the evaluation at 200 s */
    ck_assert_msg(strstr(out, "wall time to val >= 35.00% |") && strstr(out, "| listops | full | repro | 2 | 1.000 | 1000 | 3000 | 100 | 1000 | +0.0% | 200 s |"), "%s", out);
    ck_assert_msg(strstr(out, "speed.json: a 'speed' report, not a training run: left out"), "%s", out);
    ck_assert_msg(strstr(out, "untimed.json: no timed training steps") && !strstr(out, "| text |"), "%s", out);
    rc = t_run(out, sizeof out, "%s compare --select=both --target=0.5 %s/s0.json %s/s1.json", t_bench(), d, d);
    ck_assert_msg(rc == 0 && strstr(out, "| full | repro | 38.00 [25.29, 50.71] (n=2)† |") && strstr(out, "at the last training step") &&
                  strstr(out, "| full | repro | 33.00 [7.59, 58.41] (n=2)† |") && strstr(out, "not reached"), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare --select=last --format=csv --target=0.4 %s/s0.json", t_bench(), d);
    ck_assert_msg(rc == 0 && strstr(out, "listops,full,repro,1,37.0000,0.0000,1.0000,1000.0,3000.0,100.0,1000,1.0000,35.0000,0.0000,200.0,1,"),
                  "exit %d: %s", rc, out);
    /* every substitute is a column of its own, kept out of the LRA average: ListOps' short trees
     * beside ListOps, with Pathfinder, average only ListOps and Pathfinder */
    selected_report(d, "short.json", "listops", "short", 0, 0.33, 0.33);
    selected_report(d, "pf.json", "pathfinder", NULL, 0, 0.5, 0.5);
    rc = t_run(out, sizeof out, "%s compare %s/s0.json %s/short.json %s/pf.json", t_bench(), d, d, d);
    ck_assert_msg(rc == 0 && strstr(out, "| ListOps | Text | Retrieval | Image | Pathfinder | Path-X | listops[short] |") &&
                  strstr(out, "| full | repro | 37.00 (n=1)† | - | - | - | 50.00 (n=1)† | - | 33.00 (n=1)† | 43.50 (n=1)† |"),
                  "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare --target=36 %s/s0.json", t_bench(), d);
    ck_assert_msg(rc == 2 && strstr(out, "--target: '36' is not a validation accuracy"), "exit %d: %s", rc, out);
    /* per task (chance is 10% on ListOps, 50% on Text): listops reaches 0.35 at 200 s, the
     * substitute image dataset counts as image and reaches 0.15 at its first evaluation */
    rc = t_run(out, sizeof out, "%s compare --target=listops=0.35,image=0.15 %s/s0.json %s/fm.json", t_bench(), d, d);
    ck_assert_msg(rc == 0 && strstr(out, "wall time to the task's target |") &&
                  strstr(out, "| listops | full | repro | 1 | 1.000 | 1000 | 3000 | 100 | 1000 | +0.0% | 200 s |") &&
                  strstr(out, "| image[fashion-mnist] | full | repro | 1 |") && strstr(out, "| 100 s |") &&
                  strstr(out, "Targets (validation accuracy): listops 35.00%, image 15.00%, no other task."),
                  "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare --target=0.5,listops=0.35 %s/s0.json %s/fm.json", t_bench(), d, d);
    ck_assert_msg(rc == 0 && strstr(out, "+0.0% | 200 s |") && strstr(out, "| not reached |") &&
                  strstr(out, "every other task 50.00%."), "exit %d: %s", rc, out);
    rc = t_run(out, sizeof out, "%s compare --target=nope=0.3 %s/s0.json", t_bench(), d);
    ck_assert_msg(rc == 2 && strstr(out, "unknown task 'nope'"), "exit %d: %s", rc, out);
}
END_TEST

/* A strict enough XML well-formedness check: one root, balanced and properly nested tags,
 * quoted attributes, no raw '<' or stray '&' in text. Returns the number of <g class="series">
 * elements, or -1 when the document is not well-formed. */
static int xml_series(const char *x) {
    char stack[64][32];
    int depth = 0, roots = 0, series = 0;
    const char *p = x;
    if (!strncmp(p, "<?xml", 5)) {
        p = strstr(p, "?>");
        if (!p) return -1;
        p += 2;
    }
    while (*p) {
        if (*p == '&') {
            const char *semi = strchr(p, ';');
            if (!semi || semi - p > 6) return -1;
            p = semi + 1;
            continue;
        }
        if (*p != '<') { p++; continue; }
        int closing = p[1] == '/';
        const char *n = p + 1 + closing;
        size_t len = strcspn(n, " \t\n/>");
        if (!len || len >= 32) return -1;
        char name[32];
        memcpy(name, n, len);
        name[len] = '\0';
        const char *q = n + len;
        int self = 0;
        while (*q && *q != '>') { /* attributes: name="value" */
            if (*q == '"') { q = strchr(q + 1, '"'); if (!q) return -1; }
            else if (*q == '<') return -1;
            if (*q == '/' && q[1] == '>') self = 1;
            q++;
        }
        if (!*q) return -1;
        if (closing) {
            if (!depth || strcmp(stack[depth - 1], name)) return -1;
            depth--;
        } else {
            if (!depth) roots++;
            if (!strcmp(name, "g") && strstr(n, "class=\"series\"") && strstr(n, "class=\"series\"") < q) series++;
            if (!self) { if (depth == 64) return -1; strcpy(stack[depth++], name); }
        }
        p = q + 1;
    }
    return depth == 0 && roots == 1 ? series : -1;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

START_TEST(test_plot_svgs) {
    const char *d = t_tmpdir(), *out = t_tmpdir();
    char path[512], msg[4096];
    ck_assert_int_eq(xml_series("<svg><g class=\"series\"><rect/></g></svg>"), 1); /* the checker itself */
    ck_assert_int_eq(xml_series("<svg><g></svg></g>"), -1);
    ck_assert_int_eq(xml_series("<svg>a < b</svg>"), -1);
    snprintf(path, sizeof path, "%s/speed.json", d);
    FILE *f = fopen(path, "w");
    fputs("{\"schema_version\": 1, \"kind\": \"speed\", \"entries\": ["
          "{\"backend\": \"full\", \"length\": 1024, \"attention\": {\"tokens_per_s\": 5000, \"planned_bytes\": 1e6}},"
          "{\"backend\": \"full\", \"length\": 4096, \"attention\": {\"out_of_memory\": true, \"planned_bytes\": 4e9}},"
          "{\"backend\": \"mita & co\", \"length\": 1024, \"attention\": {\"tokens_per_s\": 9000, \"planned_bytes\": 2e6}},"
          "{\"backend\": \"mita & co\", \"length\": 4096, \"attention\": {\"tokens_per_s\": 30000, \"planned_bytes\": 8e6}}]}", f);
    fclose(f);
    t_corpus("report", path, 0, 0);
    report(d, "a.json", "listops", "full", 0, 0.30, 1000, 1000, 1, "completed");
    report(d, "a1.json", "listops", "full", 1, 0.34, 1000, 1000, 1, "completed");
    report(d, "a2.json", "listops", "full", 2, 0.32, 1000, 1000, 1, "completed");
    report(d, "b.json", "listops", "mita", 0, 0.40, 1000, 1000, 1, "completed");
    report(d, "c.json", "text", "agent", 0, 0.60, 1000, 1000, 1, "completed");
    /* a substitute dataset keeps its own bar (it once vanished from the chart) */
    report(d, "fm.json", "image", "mita", 0, 0.80, 1000, 1000, 1, "completed");
    ck_assert_int_eq(t_run(NULL, 0, "sed -i 's/\"checksum_sha256\": \"image\"/\"checksum_sha256\": \"image\", "
                                    "\"dataset\": \"fashion-mnist\"/' %s/fm.json", d), 0);
    int rc = t_run(msg, sizeof msg, "%s plot --out=%s %s/*.json", t_bench(), out, d);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    const char *names[3] = {"speed-throughput.svg", "speed-memory.svg", "accuracy.svg"};
    const int want[3] = {2, 2, 3};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", out, names[i]);
        char *svg = slurp(path);
        ck_assert_msg(svg != NULL, "no %s", path);
        ck_assert_msg(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""), "%s", names[i]);
        int n = xml_series(svg);
        ck_assert_msg(n == want[i], "%s: %d series (want %d; -1 = not well-formed)", names[i], n, want[i]);
        if (i == 0) ck_assert(strstr(svg, "mita &amp; co") != NULL);
        if (i == 2) /* the profile in the legend, n and the 95% interval, an error bar where n > 1 */
            ck_assert_msg(strstr(svg, "mita (small) listops: 40.00% (n=1, no interval)") &&
                          strstr(svg, "full (small) listops: 32.00% [27.03, 36.97] (n=3, 95% CI)") && strstr(svg, "n=3") &&
                          strstr(svg, "mita (small) image[fashion-mnist]: 80.00%") &&
                          strstr(svg, "stroke=\"black\"/>"), "%s", svg);
    }
    rc = t_run(msg, sizeof msg, "%s plot", t_bench());
    ck_assert_int_eq(rc, 2);
    /* the manual's plot command names the speed reports twice (their folder's glob and the results glob): each point
     * is drawn once (full: 1024 only, 4096 was out of memory; mita: two lengths) */
    rc = t_run(msg, sizeof msg, "%s plot --out=%s %s/speed.json %s/*.json && grep -c '<circle' %s/speed-throughput.svg",
               t_bench(), out, d, d, out);
    ck_assert_msg(rc == 0 && strstr(msg, "\n3\n"), "exit %d: %s", rc, msg);
    /* item 10 of issue 27: a speed report at another shape is a line of its own (same colour,
     * dashed), named by its shape, and the legend shows the dash; long titles and names shrink */
    snprintf(path, sizeof path, "%s/speed2.json", out);
    f = fopen(path, "w");
    fputs("{\"schema_version\": 1, \"kind\": \"speed\", \"config\": {\"batch\": 32, \"heads\": 2, \"head_size\": 32},"
          " \"entries\": [{\"backend\": \"full\", \"length\": 1024, \"attention\": {\"tokens_per_s\": 7000, \"planned_bytes\": 3e6}},"
          "{\"backend\": \"full\", \"length\": 2048, \"attention\": {\"tokens_per_s\": 6000, \"planned_bytes\": 9e6}}]}", f);
    fclose(f);
    rc = t_run(msg, sizeof msg, "%s plot --out=%s/p2 %s/speed.json %s/speed2.json %s/*.json", t_bench(), out, d, out, d);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    snprintf(path, sizeof path, "%s/p2/speed-memory.svg", out);
    char *svg = slurp(path);
    ck_assert_msg(svg && xml_series(svg) == 3 && strstr(svg, "data-backend=\"full (B32, 2x32)\"") &&
                  strstr(svg, "<line x1=") && strstr(svg, "stroke-dasharray=\"6 3\"/>"), "%s", svg ? svg : "none");
    /* every line named at its end, the names at least 12 px apart (lines close together stay readable) */
    double ys[8];
    int nl = 0;
    for (const char *p = svg; (p = strstr(p, "class=\"end-label\"")) && nl < 8; p++)
        ck_assert_int_eq(sscanf(p, "class=\"end-label\" x=\"%*f\" y=\"%lf\"", &ys[nl++]), 1);
    ck_assert_msg(nl == 3, "%d end labels: %s", nl, svg);
    for (int i = 0; i < nl; i++)
        for (int k = 0; k < i; k++) ck_assert_msg(fabs(ys[i] - ys[k]) >= 12 - 1e-9, "end labels at y %g and %g", ys[i], ys[k]);
    ck_assert(strstr(svg, ">full (B32, 2x32)</text>") != NULL);
    snprintf(path, sizeof path, "%s/p2/accuracy.svg", out);
    svg = slurp(path);
    ck_assert_msg(svg && strstr(svg, "font-size=\"12.") && !strstr(svg, "font-size=\"16\""), "the long title's font: %s",
                  svg ? svg : "none");
}
END_TEST

/* Curves over training: validation accuracy against examples and against seconds, one line per
 * run, and the routing statistics per layer for a backend that routes. */
START_TEST(test_plot_curves) {
    const char *d = t_tmpdir(), *out = t_tmpdir();
    char path[512], msg[4096];
    const char *backends[2] = {"full", "mita"};
    for (int b = 0; b < 2; b++) {
        snprintf(path, sizeof path, "%s/%s.json", d, backends[b]);
        FILE *f = fopen(path, "w");
        fprintf(f, "{\"schema_version\": 1, \"kind\": \"run\", \"status\": \"completed\", \"task\": \"listops\","
                   " \"backend\": \"%s\", \"profile\": \"repro\", \"seed\": 0, \"data\": {\"checksum_sha256\": \"x\"},"
                   " \"results\": {\"test\": {\"accuracy\": 0.3}},"
                   " \"throughput\": {\"train_steps_per_s\": 1, \"train_tokens_per_s\": 1000, \"eval_tokens_per_s\": 3000},"
                   " \"memory\": {\"peak_rss_bytes\": 1e8}, \"parameters\": {\"count\": 1000}, \"curve\": [", backends[b]);
        for (int p = 1; p <= 3; p++)
            fprintf(f, "%s{\"examples\": %d, \"elapsed_s\": %d, \"val_accuracy\": %.2f, \"attention\": [{\"layer\": 0%s}, "
                       "{\"layer\": 1%s}]}", p > 1 ? ", " : "", 3200 * p, 100 * p, 0.1 * p,
                    b ? ", \"routing\": {\"unselected_key_fraction\": 0.1}" : "", b ? ", \"routing\": {\"unselected_key_fraction\": 0.5}" : "");
        fputs("]}\n", f);
        fclose(f);
    }
    int rc = t_run(msg, sizeof msg, "%s plot --out=%s %s/*.json", t_bench(), out, d);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    const char *names[3] = {"curve-listops-examples.svg", "curve-listops-seconds.svg", "routing-listops.svg"};
    const int want[3] = {2, 2, 2}; /* two runs; two layers of mita (full does not route) */
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", out, names[i]);
        char *svg = slurp(path);
        ck_assert_msg(svg != NULL, "no %s: %s", path, msg);
        int n = xml_series(svg);
        ck_assert_msg(n == want[i], "%s: %d series (want %d; -1 = not well-formed)", names[i], n, want[i]);
        /* one colour per backend in every chart: mita's */
        if (i == 2) ck_assert(strstr(svg, "mita repro s0 layer 1") && strstr(svg, "#d62728") == NULL);
    }
}
END_TEST


/* The intervals against values worked by hand: Student's t, a mean's interval, a paired and a
 * Welch difference, an average over tasks */
START_TEST(test_stats_by_hand) {
    ck_assert_double_eq_tol(lra_t975(1), 12.706, 1e-9);
    ck_assert_double_eq_tol(lra_t975(4), 2.776, 1e-9);
    ck_assert_double_eq_tol(lra_t975(30), 2.042, 1e-9);
    ck_assert_double_eq_tol(lra_t975(1e9), 1.960, 1e-6);
    /* df 2.5: 4.303 + (1/2.5 - 1/2) / (1/3 - 1/2) x (3.182 - 4.303) */
    ck_assert_double_eq_tol(lra_t975(2.5), 4.303 + 0.6 * (3.182 - 4.303), 1e-9);
    ck_assert(isnan(lra_t975(0.5)));
    /* 1..5: mean 3, sd sqrt(2.5), se sqrt(0.5), half 2.776 x 0.70711 */
    const double x[5] = {1, 2, 3, 4, 5};
    lra_estimate e = lra_estimate_mean(x, 5);
    ck_assert_double_eq_tol(e.mean, 3, 1e-12);
    ck_assert_double_eq_tol(lra_half95(e), 2.776 * sqrt(0.5), 1e-9);
    ck_assert(isnan(lra_half95(lra_estimate_mean(x, 1))));
    /* paired by seed, in any order: seed 0 10-10, seed 1 12-11, seed 2 14-9 -> 0, 1, 5: mean 2, sd sqrt(7) */
    const double a[3] = {10, 12, 14}, b[3] = {9, 10, 11};
    const long sa[3] = {0, 1, 2}, sb[3] = {2, 0, 1};
    e = lra_estimate_diff(a, sa, 3, b, sb, 3);
    ck_assert(e.paired && e.n == 3);
    ck_assert_double_eq_tol(e.mean, 2, 1e-12);
    ck_assert_double_eq_tol(lra_half95(e), 4.303 * sqrt(7.0 / 3), 1e-9);
    /* no seed in common: Welch. var(a)/3 = 1/3, var(b)/4 = 5/3, se sqrt(2), df 4 / (1/18 + 25/27) */
    const double u[3] = {1, 2, 3}, v[4] = {2, 4, 6, 8};
    const long su[3] = {0, 1, 2}, sv[4] = {10, 11, 12, 13};
    e = lra_estimate_diff(u, su, 3, v, sv, 4);
    ck_assert(!e.paired);
    ck_assert_double_eq_tol(e.mean, -3, 1e-12);
    ck_assert_double_eq_tol(e.se, sqrt(2), 1e-12);
    ck_assert_double_eq_tol(e.df, 4 / (1.0 / 18 + 25.0 / 27), 1e-9);
    /* average of (10, se 1, df 4) and (20, se 2, df 9): 15, se sqrt(5)/2, df 25 / (1/4 + 16/9) */
    const lra_estimate parts[2] = {{.mean = 10, .se = 1, .df = 4, .n = 3}, {.mean = 20, .se = 2, .df = 9, .n = 10}};
    e = lra_estimate_average(parts, 2);
    ck_assert_double_eq_tol(e.mean, 15, 1e-12);
    ck_assert_double_eq_tol(e.se, sqrt(5) / 2, 1e-12);
    ck_assert_double_eq_tol(e.df, 25 / (0.25 + 16.0 / 9), 1e-9);
    ck_assert_int_eq(e.n, 3);
}
END_TEST

/* a report() with --attn-opt and the options the backend resolved */
static void report_opts(const char *dir, const char *name, const char *backend, long seed, double acc, const char *attn_opt,
                        const char *resolved) {
    report(dir, name, "listops", backend, seed, acc, 1000, 1000, 1, "completed");
    ck_assert_int_eq(t_run(NULL, 0, "sed -i 's/\"seed\": %ld,/\"seed\": %ld, \"config\": {\"attn-opt\": \"%s\"}, "
                           "\"backend_options\": {%s},/' %s/%s", seed, seed, attn_opt, resolved, dir, name), 0);
}

/* Differences to full, paired by seed: mita 35, 37, 36 against full 30, 34, 32 at seeds 0-2
 * differ by 5, 3, 4 (mean 4, sd 1: 4 +- 4.303 / sqrt(3), excludes 0, bold); agent's 28, 36, 30
 * by -2, 2, -2 (mean -0.67, sd 2.309: not bold). A 2 x 2 grid of mita's m and k, the default
 * point among them by its resolved options, as a long table and as m x k. */
START_TEST(test_differences_and_grid) {
    const char *d = t_tmpdir();
    const double full[3] = {0.30, 0.34, 0.32}, mita[3] = {0.35, 0.37, 0.36}, agent[3] = {0.28, 0.36, 0.30};
    char name[64];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "f%d.json", i);
        report(d, name, "listops", "full", i, full[i], 1000, 1000, 1, "completed");
        snprintf(name, sizeof name, "m%d.json", i);
        report_opts(d, name, "mita", i, mita[i], "", "\"m\": 64, \"k\": 64, \"shared\": 1");
        snprintf(name, sizeof name, "a%d.json", 2 - i); /* another file order: paired by seed, not position */
        report(d, name, "listops", "agent", i, agent[i], 1000, 1000, 1, "completed");
        snprintf(name, sizeof name, "g%d.json", i);
        report_opts(d, name, "mita", i, 0.30 + 0.01 * i, "m=16,k=64", "\"m\": 16, \"k\": 64, \"shared\": 1");
        snprintf(name, sizeof name, "h%d.json", i);
        report_opts(d, name, "mita", i, 0.31, "m=16,k=256", "\"m\": 16, \"k\": 256, \"shared\": 1");
    }
    report_opts(d, "k0.json", "mita", 0, 0.33, "m=64,k=256", "\"m\": 64, \"k\": 256, \"shared\": 1");
    char out[32768];
    int rc = t_run(out, sizeof out, "%s compare %s/*.json", t_bench(), d);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char want[256];
    snprintf(want, sizeof want, "| mita | small | **+4.00 [%+.2f, %+.2f]** (paired, n=3) |", 4 - 4.303 / sqrt(3), 4 + 4.303 / sqrt(3));
    ck_assert_msg(strstr(out, "## Difference to full") && strstr(out, want), "%s\nwanted %s", out, want);
    const double h = 4.303 * sqrt((pow(-2 + 2.0 / 3, 2) + pow(2 + 2.0 / 3, 2) + pow(-2 + 2.0 / 3, 2)) / 2) / sqrt(3);
    snprintf(want, sizeof want, "| agent | small | -0.67 [%+.2f, %+.2f] (paired, n=3) |", -2.0 / 3 - h, -2.0 / 3 + h);
    ck_assert_msg(strstr(out, want), "%s\nwanted %s", out, want);
    ck_assert_msg(!strstr(out, "| full | small | +0.00"), "full is no row of its own differences: %s", out);
    /* the grid: m=64,k=64 is the default mita row; m=64,k=256 has one seed (unpaired against full's mean 32: +1, no interval) */
    ck_assert_msg(strstr(out, "## Grid: mita on listops (small)") && strstr(out, "| m | k | test accuracy |"), "%s", out);
    ck_assert_msg(strstr(out, "| 16 | 64 | 31.00 [28.52, 33.48] (n=3) |") && strstr(out, "| 64 | 64 | 36.00 [33.52, 38.48] (n=3) |") &&
                  strstr(out, "| 64 | 256 | 33.00 (n=1)† | +1.00 (unpaired, n=1: no interval) |"), "%s", out);
    ck_assert_msg(strstr(out, "| m \\ k | k=64 | k=256 |") &&
                  strstr(out, "| m=16 | 31.00 [28.52, 33.48] (n=3) | 31.00 [31.00, 31.00] (n=3) |") &&
                  strstr(out, "| m=64 | 36.00 [33.52, 38.48] (n=3) | 33.00 (n=1)† |"), "%s", out);
    /* another baseline, none, and one that is not there */
    rc = t_run(out, sizeof out, "%s compare --baseline-backend=agent %s/*.json", t_bench(), d);
    ck_assert_msg(rc == 0 && strstr(out, "## Difference to agent") && strstr(out, "| full | small | +0.67"), "%s", out);
    rc = t_run(out, sizeof out, "%s compare --baseline-backend=none %s/*.json", t_bench(), d);
    ck_assert_msg(rc == 0 && !strstr(out, "## Difference"), "%s", out);
    rc = t_run(out, sizeof out, "%s compare --baseline-backend=moe %s/*.json", t_bench(), d);
    ck_assert_msg(rc == 2 && strstr(out, "no completed moe report"), "exit %d: %s", rc, out);
    /* an accuracy's interval is shown within [0, 100]: 99, 100, 90 give 96.33 +- 13.7 */
    const char *e = t_tmpdir();
    report(e, "x0.json", "listops", "full", 0, 0.99, 1000, 1000, 1, "completed");
    report(e, "x1.json", "listops", "full", 1, 1.00, 1000, 1000, 1, "completed");
    report(e, "x2.json", "listops", "full", 2, 0.90, 1000, 1000, 1, "completed");
    rc = t_run(out, sizeof out, "%s compare %s/*.json", t_bench(), e);
    ck_assert_msg(rc == 0 && strstr(out, "| full | small | 96.33 [82.65, 100.00] (n=3) |"), "%s", out);
    /* a task outside LRA gets its column where a report has it, and no published figure */
    report(e, "q.json", "mqar", "full", 0, 0.95, 1000, 1000, 1, "completed");
    rc = t_run(out, sizeof out, "%s compare %s/q.json", t_bench(), e);
    ck_assert_msg(rc == 0 && strstr(out, "| Path-X | MQAR | Avg |") && strstr(out, "| 71.40 | FAIL | - | - |"), "%s", out);
    rc = t_run(out, sizeof out, "%s compare %s/x0.json", t_bench(), e);
    ck_assert_msg(rc == 0 && !strstr(out, "MQAR"), "%s", out);
    rc = t_run(out, sizeof out, "%s compare --format=csv %s/f*.json %s/m*.json", t_bench(), d, d);
    snprintf(want, sizeof want, "full,4.0000,%.4f,%.4f,paired,3,1,\"m=64,k=64,shared=1\"\n", 4 - 4.303 / sqrt(3),
             4 + 4.303 / sqrt(3));
    ck_assert_msg(rc == 0 && strstr(out, want), "%s\nwanted %s", out, want);
}
END_TEST

Suite *compare_suite(void) {
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("compare");
    tcase_add_test(tc, test_tables_by_hand);
    tcase_add_test(tc, test_stats_by_hand);
    tcase_add_test(tc, test_differences_and_grid);
    tcase_add_test(tc, test_regression_gate);
    tcase_add_test(tc, test_unreadable_reports);
    tcase_add_test(tc, test_plot_svgs);
    tcase_add_test(tc, test_selection_target_and_skips);
    tcase_add_test(tc, test_plot_curves);
    suite_add_tcase(s, tc);
    return s;
}
