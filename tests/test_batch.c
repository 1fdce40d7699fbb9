/* test_batch.c - runs that several make up: --seeds and --attn-opt grids expanded into runs
 * (runlist.h), and `lra-bench batch`, which runs a file of them to the end while nobody watches:
 * it skips what is done, resumes what stopped, starts again what was killed before its first
 * checkpoint, leaves alone what another process runs, and refuses a mistake in the file before
 * running anything. No test waits on time: each waits for a state the program reports (a
 * stopped process, an exit). */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../harness/run/runlist.h"
#include "tests.h"

#define OPTS "--task=listops --profile=ci --steps=12 --eval-every=4 --checkpoint-every=5 --data-dir=%s"

static const char *arg_of(const lra_run_args *a, const char *prefix) {
    for (int i = 0; i < a->argc; i++)
        if (!strncmp(a->argv[i], prefix, strlen(prefix))) return a->argv[i] + strlen(prefix);
    return NULL;
}

/* seeds outermost, then the grid's points with the last key fastest; errors name the option */
START_TEST(test_run_list_expand) {
    char *argv[] = {"--backend=mita", "--seeds=3,5", "--attn-opt=m=16,64;k=64,128,256", "--task=listops"};
    lra_run_list l;
    char err[LRA_ERR_LEN];
    ck_assert_int_eq(lra_run_list_expand(&l, 4, argv, err), LRA_OK);
    ck_assert_int_eq(l.n, 12);
    static const char *want[6] = {"m=16,k=64", "m=16,k=128", "m=16,k=256", "m=64,k=64", "m=64,k=128", "m=64,k=256"};
    for (int r = 0; r < 12; r++) {
        ck_assert_int_eq(l.run[r].argc, 4);
        ck_assert_str_eq(arg_of(&l.run[r], "--seed="), r < 6 ? "3" : "5");
        ck_assert_str_eq(arg_of(&l.run[r], "--attn-opt="), want[r % 6]);
        ck_assert_str_eq(arg_of(&l.run[r], "--task="), "listops");
    }
    lra_run_list_free(&l);
    /* a single point stays as written: the default report name of earlier runs is unchanged */
    char *one[] = {"--attn-opt=m=4,k=8"};
    ck_assert_int_eq(lra_run_list_expand(&l, 1, one, err), LRA_OK);
    ck_assert_int_eq(l.n, 1);
    ck_assert_str_eq(l.run[0].argv[0], "--attn-opt=m=4,k=8");
    lra_run_list_free(&l);
    static const struct { const char *a, *b, *msg; } bad[] = {
        {"--seeds=1,x", "--task=listops", "--seeds='1,x'"},
        {"--attn-opt=16,k=4", "--task=listops", "value '16' before any key"},
        {"--attn-opt=m=4,,k=4", "--task=listops", "empty option"},
        {"--attn-opt=m=4,k=4,m=8", "--task=listops", "m given twice"},
        {"--seeds=1,2", "--out=x.json", "name 2 runs"},
        {"--attn-opt=m=1,2,k=3", "--checkpoint=x.ckpt", "name 2 runs"},
        {"--seeds=1,2", "--seed=4", "--seed=4 and --seeds"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *args[] = {(char *)bad[i].a, (char *)bad[i].b};
        ck_assert_int_eq(lra_run_list_expand(&l, 2, args, err), LRA_ERR_USAGE);
        ck_assert_msg(strstr(err, bad[i].msg), "%s %s: %s", bad[i].a, bad[i].b, err);
        ck_assert_int_eq(l.n, 0);
    }
}
END_TEST

/* Writes a batch file dir/name of printf-style text; its path into path */
static void batch_file(char *path, size_t n, const char *dir, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void batch_file(char *path, size_t n, const char *dir, const char *name, const char *fmt, ...) {
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(path, n, "%s/%s", dir, name);
    t_write_file(path, text, strlen(text));
}

/* how often what occurs in text */
static int count_lines(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

/* A file of two lines, four runs (two seeds; a two-point grid): all four reports, completed, at
 * the default names; the same batch again runs nothing and changes no file. */
START_TEST(test_batch_runs_then_skips) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[16384], path[600];
    batch_file(path, sizeof path, dir, "runs.txt",
               "# a comment, then a blank line\n\nlra-bench run " OPTS " --seeds=1,2   # full, two seeds\n"
               OPTS " --backend=mita --attn-opt=m=2,4,k=16\n", data, data);
    int rc = t_run(msg, sizeof msg, "cd %s && %s batch runs.txt --threads=2 --progress=off", dir, t_bench());
    ck_assert_msg(rc == 0 && strstr(msg, "4 of 4 runs done") && count_lines(msg, ": start results/") == 4, "%s", msg);
    rc = t_run(msg, sizeof msg, "cd %s && ls results/listops/*.json | wc -l && grep -l '\"status\":\t\"completed\"' "
               "results/listops/*.json | wc -l && ls results/listops | grep -c lock", dir);
    ck_assert_msg(rc == 1 && !strncmp(msg, "4\n4\n0", 5), "four completed reports, no lock left: %s", msg);
    rc = t_run(msg, sizeof msg, "cd %s && ls -l --time-style=full-iso results/listops > before && %s batch runs.txt && "
               "ls -l --time-style=full-iso results/listops | cmp - before", dir, t_bench());
    ck_assert_msg(rc == 0 && count_lines(msg, ": done (completed)") == 4 && strstr(msg, "4 of 4 runs done") &&
                  !strstr(msg, "starting"), "%s", msg);
}
END_TEST

/* A batch killed with SIGKILL (its run stopped by STOP_AT, then killed) and started again goes
 * on: killed after a checkpoint, the run resumes from it; killed before any, it starts again over
 * the stale report. Both end with the numbers of the run never stopped. */
START_TEST(test_batch_killed_goes_on) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[16384], path[600], ref[600];
    snprintf(ref, sizeof ref, "%s/ref.json", dir);
    ck_assert_msg(t_run(msg, sizeof msg, "%s " OPTS " --backend=mita --out=%s", t_bench(), data, ref) == 0, "%s", msg);
    /* before step 8: the report of step 4's evaluation, the checkpoint of step 5; before step 3: the
     * placeholder report only */
    static const struct { const char *stop, *status; int resumed; } kills[] = {{"8", "running", 1}, {"3", "starting", 0}};
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "k%d.txt", k);
        batch_file(path, sizeof path, dir, name, OPTS " --backend=mita --out=k%d.json\n", data, k);
        int rc = t_run(msg, sizeof msg,
                       "cd %s && LRA_TEST_STOP_AT=%s %s batch k%d.txt >/dev/null 2>&1 & p=$!; " T_WAIT_STOPPED(6000)
                       "grep -o '\"status\":\t\"[a-z]*\"' %s/k%d.json; kill -KILL $p; wait $p; echo rc=$?; "
                       "cd %s && %s batch k%d.txt --threads=1",
                       dir, kills[k].stop, t_bench(), k, dir, k, dir, t_bench(), k);
        char status[64];
        snprintf(status, sizeof status, "\"%s\"", kills[k].status);
        ck_assert_msg(rc == 0 && strstr(msg, "rc=137") && strstr(msg, status), "%s", msg);
        ck_assert_msg(strstr(msg, kills[k].resumed ? ": resume " : ": start again "), "%s", msg);
        snprintf(path, sizeof path, "%s/k%d.json", dir, k);
        char *a = t_report_numbers(path), *b = t_report_numbers(ref);
        ck_assert_msg(strcmp(a, b) == 0, "killed at step %s, the batch's run differs:\n%s\nnever stopped:\n%s",
                      kills[k].stop, a, b);
        free(a);
        free(b);
        cJSON *j = t_load_json(path);
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "resumed_at_steps");
        ck_assert_int_eq(at ? cJSON_GetArraySize(at) : 0, kills[k].resumed);
        cJSON_Delete(j);
    }
}
END_TEST

/* Ctrl-C stops the run at hand with its checkpoint, then the batch: the runs after it are neither
 * run nor listed, and the same command goes on from the checkpoint */
START_TEST(test_batch_stopped_goes_on) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[16384], path[600];
    batch_file(path, sizeof path, dir, "two.txt", OPTS " --backend=full --seeds=1,2\n", data);
    t_run(msg, sizeof msg,
          "cd %s; LRA_TEST_STOP_AT=6 %s batch two.txt --progress=off 2>err & p=$!; " T_WAIT_STOPPED(6000)
          "kill -INT $p; kill -CONT $p; wait $p; echo rc=$?; cat err; echo SECOND; %s batch two.txt --progress=off; "
          "echo again=$?", dir, t_bench(), t_bench());
    char *second = strstr(msg, "SECOND");
    ck_assert_msg(second, "%s", msg);
    *second = '\0';
    ck_assert_msg(strstr(msg, "rc=1") && strstr(msg, "[1/2]") && !strstr(msg, "[2/2]") &&
                  strstr(msg, "0 of 2 runs done, 2 left (stopped: the same command goes on)"), "first batch: %s", msg);
    second += 6;
    ck_assert_msg(strstr(second, "[1/2]") && strstr(second, ": resume ") && strstr(second, "[2/2]") &&
                  strstr(second, "2 of 2 runs done") && strstr(second, "again=0"), "second batch: %s", second);
}
END_TEST

/* A run going on in another process (stopped, holding its lock) is left to it: the batch says so
 * and exits 1, a plain run and a resume of it are refused; once that process is killed, the
 * batch runs it. */
START_TEST(test_batch_leaves_a_live_run) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[16384], path[600];
    batch_file(path, sizeof path, dir, "runs.txt", OPTS " --backend=full --out=r.json\n", data);
    int rc = t_run(msg, sizeof msg,
                   "cd %s && LRA_TEST_STOP_AT=7 %s " OPTS " --backend=full --out=r.json >/dev/null 2>&1 & p=$!; " T_WAIT_STOPPED(6000)
                   "cd %s; %s batch runs.txt; echo batch=$?; %s " OPTS " --backend=full --out=r.json; echo run=$?; "
                   "%s resume r.json; echo resume=$?; kill -KILL $p; wait $p; %s batch runs.txt; echo again=$?",
                   dir, t_bench(), data, dir, t_bench(), t_bench(), data, t_bench(), t_bench());
    (void)rc;
    ck_assert_msg(strstr(msg, ": running elsewhere ") && strstr(msg, "1 running in another process") &&
                  strstr(msg, "batch=1") && strstr(msg, "run=2") && strstr(msg, "resume=2") && strstr(msg, "again=0") &&
                  count_lines(msg, "is in use: another lra-bench") == 2 && strstr(msg, ": resume "), "%s", msg);
    cJSON *j = t_load_json(strcat(strcpy(path, dir), "/r.json"));
    ck_assert_str_eq(t_str(j, "status"), "completed");
    cJSON_Delete(j);
}
END_TEST

/* A mistake anywhere in the file is found before the first run starts: exit 2, file:line named,
 * no report written. */
START_TEST(test_batch_refuses_a_bad_file) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    static const struct { const char *line3, *want; } bad[] = {
        {"--task=listops --profile=ci --lr=fast", "b.txt:3: "},
        {"--task=listops --profile=ci --steps=12 --eval-every=4 --checkpoint-every=5 --data-dir=%s --backend=mita",
         "b.txt:2 and line 3 name one run"},
        {"--task=listops --backend='mita'", "b.txt:3: quotes"},
        {"frobnicate --task=listops", "b.txt:3: 'frobnicate'"},
        {"--task=listops --seeds=1,2 --out=x.json", "b.txt:3: --out and --checkpoint"},
        {"--task=listops --resume", "b.txt:3: --resume"},
    };
    char msg[16384], path[600], line3[600];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(line3, sizeof line3, bad[i].line3, data);
        batch_file(path, sizeof path, dir, "b.txt", "# line 1\n" OPTS " --backend=mita\n%s\n", data, line3);
        t_run(msg, sizeof msg, "cd %s && %s batch b.txt; echo rc=$?; echo reports=$(ls results 2>/dev/null | wc -l)",
              dir, t_bench());
        ck_assert_msg(strstr(msg, "rc=2") && strstr(msg, bad[i].want), "case %zu: wanted exit 2 and '%s': %s", i,
                      bad[i].want, msg);
        ck_assert_msg(strstr(msg, "reports=0"), "case %zu: something ran: %s", i, msg);
    }
    /* --dry-run names each run's report and runs nothing; the default names hash an option added
     * later (--task-opt) only when given, so runs started before keep theirs (these are the study's) */
    batch_file(path, sizeof path, dir, "names.txt",
               "--task=listops --backend=moe --seed=0\n--task=listops --backend=full --seeds=3,4\n");
    int rc = t_run(msg, sizeof msg, "cd %s && %s batch names.txt --dry-run; echo rc=$?; ls results 2>/dev/null | wc -l", dir, t_bench());
    ck_assert_msg(strstr(msg, "listops/moe seed 0: start results/listops/moe-repro-seed0-a71a462e.json") &&
                  strstr(msg, "listops/full seed 4: start results/listops/full-repro-seed4-ff31a548.json") &&
                  strstr(msg, "0 of 3 runs done, 3 to run") && strstr(msg, "rc=1\n0\n"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s batch %s/none.txt", t_bench(), dir);
    ck_assert_msg(rc == 2 && strstr(msg, "none.txt"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s batch %s --steps=3", t_bench(), path);
    ck_assert_msg(rc == 2 && strstr(msg, "--steps=3: not an option here"), "%s", msg);
}
END_TEST

/* The batch's first line: what the done runs took, and the rest at the pace of the latest
 * completed run of their task and backend, a stopped run from its checkpoint. full seed 1 done, seed 2
 * stopped (its lock held) at step 10 with its checkpoint of step 5 in its report: 7 of its 12
 * steps at seed 1's pace; mita has no completed run to go by. */
START_TEST(test_batch_bill) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[16384], path[600], want[600];
    batch_file(path, sizeof path, dir, "one.txt", OPTS " --backend=full --seed=1\n", data);
    int rc = t_run(msg, sizeof msg, "cd %s && %s batch one.txt --threads=2 --progress=off", dir, t_bench());
    ck_assert_msg(rc == 0 && strstr(msg, "one.txt: 0 of 1 runs done; 1 left: 1 with no completed run of their task and "
                                         "backend to go by (listops/full)\n"), "%s", msg);
    rc = t_run(msg, sizeof msg, "ls %s/results/listops/full-ci-seed1-*.json", dir);
    msg[strcspn(msg, "\n")] = '\0';
    cJSON *j = t_load_json(msg);
    const double wall = t_num(j, "wall_time_s");
    cJSON_Delete(j);
    batch_file(path, sizeof path, dir, "three.txt", OPTS " --backend=full --seeds=1,2\n" OPTS " --backend=mita\n", data,
               data);
    rc = t_run(msg, sizeof msg,
               "cd %s && LRA_TEST_STOP_AT=10 %s " OPTS " --backend=full --seed=2 --threads=2 >/dev/null 2>&1 & p=$!; "
               T_WAIT_STOPPED(6000) "cd %s; %s batch three.txt --dry-run; kill -KILL $p; wait $p",
               dir, t_bench(), data, dir, t_bench());
    snprintf(want, sizeof want, "three.txt: 1 of 3 runs done in %.1f s (%.1f s on the cores); 2 left, about %.1f s at "
             "the pace of the latest completed run of their task and backend, and 1 with no completed run of their task and "
             "backend to go by (listops/mita)\n", wall, 2 * wall, (12 - 5) * (wall / 12));
    ck_assert_msg(strstr(msg, want) && strstr(msg, ": running elsewhere "), "wanted\n%s\nin\n%s", want, msg);
    /* a diverged run is done, but stopped early: its pace is no guide */
    rc = t_run(msg, sizeof msg, "cd %s && sed -i 's/\"status\":\t\"completed\"/\"status\":\t\"diverged\"/' "
               "results/listops/full-ci-seed1-*.json && %s batch three.txt --dry-run", dir, t_bench());
    ck_assert_msg(strstr(msg, "three.txt: 1 of 3 runs done in ") && strstr(msg, " on the cores); 2 left: 2 with no "
                  "completed run of their task and backend to go by (listops/full, listops/mita)\n"), "%s", msg);
}
END_TEST

Suite *batch_suite(void) {
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("batch");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_run_list_expand);
    tcase_add_test(tc, test_batch_runs_then_skips);
    tcase_add_test(tc, test_batch_killed_goes_on);
    tcase_add_test(tc, test_batch_stopped_goes_on);
    tcase_add_test(tc, test_batch_leaves_a_live_run);
    tcase_add_test(tc, test_batch_refuses_a_bad_file);
    tcase_add_test(tc, test_batch_bill);
    suite_add_tcase(s, tc);
    return s;
}
