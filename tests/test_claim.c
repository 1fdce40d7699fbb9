/* test_claim.c - nothing lost when runs collide or cannot write: two runs with one report name
 * (started together, and one started inside the other's window between its check and its claim),
 * a report or checkpoint name taken over mid-run, outputs that cannot be written failing before
 * the first step, a failed set-up leaving no claim behind, and the start and progress lines of a
 * run without a terminal. No test waits on time: each waits for a state the program reports (a
 * stopped process, an exit). */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"

#define CI_RUN "%s --task=listops --profile=ci --steps=2 --eval-every=0 --data-dir=%s"

/* the first line of a small file, "" if absent */
static void first_line(const char *path, char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(buf, (int)n, f)) buf[0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

static int file_contains(const char *path, const char *what) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[16384];
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = '\0';
    fclose(f);
    return strstr(buf, what) != NULL;
}

/* One pair: a.{rc,out,err} and b.{rc,out,err} in dir. Each run either wrote a report that holds
 * its own backend, under the name it printed, or was refused (exit 2, "exists" or "in use"); at least one
 * ran, and two that ran wrote two different files. */
static void check_pair(const char *dir, const char *backend_a, const char *backend_b, int pair) {
    const char *who[2] = {"a", "b"}, *backend[2] = {backend_a, backend_b};
    char path[600], rc[32], report[2][600];
    int ran = 0;
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s.rc", dir, who[k]);
        first_line(path, rc, sizeof rc);
        snprintf(path, sizeof path, "%s/%s.out", dir, who[k]);
        first_line(path, report[k], sizeof report[k]);
        snprintf(path, sizeof path, "%s/%s.err", dir, who[k]);
        if (!strcmp(rc, "2")) {
            ck_assert_msg((file_contains(path, "exists") || file_contains(path, "in use")) && !report[k][0],
                          "pair %d, run %s: refused without saying why",
                          pair, who[k]);
            continue;
        }
        ck_assert_msg(!strcmp(rc, "0") && report[k][0], "pair %d, run %s: exit %s, report '%s'", pair, who[k], rc, report[k]);
        char full[1300], want[64];
        snprintf(full, sizeof full, "%s/%s", dir, report[k]);
        snprintf(want, sizeof want, "\"backend\":\t\"%s\"", backend[k]);
        ck_assert_msg(file_contains(full, want), "pair %d: run %s (%s) printed %s, which holds another run's report",
                      pair, who[k], backend[k], report[k]);
        ran++;
    }
    ck_assert_msg(ran >= 1, "pair %d: both runs refused", pair);
    if (ran == 2) ck_assert_msg(strcmp(report[0], report[1]) != 0, "pair %d: both runs wrote %s", pair, report[0]);
}

/* 20 pairs with one --out (full and mita), 20 identical pairs under the default (hashed) name */
START_TEST(test_simultaneous_runs) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[8192], bench[4096];
    ck_assert_ptr_nonnull(realpath(t_bench(), bench));
    enum { PAIRS = 20 };
    for (int named = 1; named >= 0; named--) {
        const char *ba = "full", *bb = named ? "mita" : "full";
        int rc = t_run(msg, sizeof msg,
                       "for i in $(seq %d); do d=%s/%c$i; mkdir -p $d; cd $d; "
                       "(" CI_RUN " --backend=%s %s >a.out 2>a.err; echo $? >a.rc) & "
                       "(" CI_RUN " --backend=%s %s >b.out 2>b.err; echo $? >b.rc) & wait; done",
                       PAIRS, dir, named ? 'n' : 'h', bench, data, ba, named ? "--out=r.json" : "", bench, data, bb,
                       named ? "--out=r.json" : "");
        ck_assert_msg(rc == 0, "%s", msg);
        for (int i = 1; i <= PAIRS; i++) {
            char pd[512];
            snprintf(pd, sizeof pd, "%s/%c%d", dir, named ? 'n' : 'h', i);
            check_pair(pd, ba, bb, i);
        }
    }
}
END_TEST

/* The window between finding the name free and claiming it: run a stops there (the
 * STOP_BEFORE_CLAIM hook), holding the run's lock; run b, started then with the same name, is
 * refused at once ("in use", naming a's pid) instead of finishing first, and a goes on and
 * writes its report. With the lock gone, b would run and a, going on, refuse (the claim) or, with
 * the claim replaced by the old existence check and rename, replace b's report. */
START_TEST(test_claim_window) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[8192], path[600];
    int rc = t_run(msg, sizeof msg,
                   "cd %s; LRA_TEST_STOP_BEFORE_CLAIM=1 " CI_RUN " --backend=full --out=r.json >a.out 2>a.err & p=$!; "
                   T_WAIT_STOPPED(6000)
                   CI_RUN " --backend=mita --out=r.json >b.out 2>b.err; echo $? >b.rc; echo pid=$p >pid; "
                   "kill -CONT $p; wait $p; echo $? >a.rc; ls | grep -c tmp",
                   dir, t_bench(), data, t_bench(), data);
    ck_assert_msg(rc == 1 && strstr(msg, "0\n"), "temporary files left: %s", msg);
    check_pair(dir, "full", "mita", 0);
    snprintf(path, sizeof path, "%s/b.rc", dir);
    ck_assert_msg(file_contains(path, "2"), "the run started in the other's window was not refused");
    char pid[64], want[128];
    snprintf(path, sizeof path, "%s/pid", dir);
    first_line(path, pid, sizeof pid);
    snprintf(want, sizeof want, "in use: another lra-bench (pid %s)", pid + 4);
    snprintf(path, sizeof path, "%s/b.err", dir);
    ck_assert_msg(file_contains(path, want), "b's refusal does not name a's pid (%s)", want);
    snprintf(path, sizeof path, "%s/a.rc", dir);
    ck_assert_msg(file_contains(path, "0"), "the run holding the lock did not finish");
    snprintf(path, sizeof path, "%s/r.json.lock", dir);
    ck_assert_msg(access(path, F_OK) != 0, "the finished run left its lock file");
}
END_TEST

/* A run whose report and checkpoint names are taken over while it trains (removed and written by
 * someone else: new files) goes on under r-2.json and r-2.ckpt, says so, and prints the new name;
 * the other files are left as they are. */
START_TEST(test_names_taken_midrun) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[8192], path[600];
    int rc = t_run(msg, sizeof msg,
                   "cd %s; LRA_TEST_STOP_AT=3 %s --task=listops --profile=ci --steps=6 --eval-every=2 "
                   "--checkpoint-every=1 --data-dir=%s --out=r.json >a.out 2>a.err & p=$!; "
                   T_WAIT_STOPPED(6000)
                   "rm r.json r.ckpt; echo other > r.json; echo other > r.ckpt; "
                   "kill -CONT $p; wait $p; echo rc=$?; cat a.out a.err",
                   dir, t_bench(), data);
    (void)rc;
    ck_assert_msg(strstr(msg, "rc=0") && strstr(msg, "r-2.json\n") && strstr(msg, "its report is r-2.json") &&
                  strstr(msg, "its checkpoint is r-2.ckpt"), "%s", msg);
    snprintf(path, sizeof path, "%s/r.json", dir);
    first_line(path, msg, sizeof msg);
    ck_assert_str_eq(msg, "other");
    snprintf(path, sizeof path, "%s/r.ckpt", dir);
    first_line(path, msg, sizeof msg);
    ck_assert_str_eq(msg, "other");
    snprintf(path, sizeof path, "%s/r-2.json", dir);
    cJSON *j = t_load_json(path);
    ck_assert_str_eq(t_str(j, "status"), "completed");
    cJSON_Delete(j);
}
END_TEST

/* Outputs that cannot be written fail before the first step (exit 1, "nothing was run"), a model
 * too big for the machine is refused before it allocates (exit 2), and a set-up that fails after
 * the claim leaves no report behind, so that the corrected command runs.
 * A mistyped --data-dir is named before a report clash. */
START_TEST(test_fails_before_training) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[8192];
    int rc = t_run(msg, sizeof msg, "cd %s; touch afile; " CI_RUN " --out=afile/r.json", dir, t_bench(), data);
    ck_assert_msg(rc == 1 && strstr(msg, "cannot write the report afile/r.json") && strstr(msg, "nothing was run") &&
                  !strstr(msg, "step "), "exit %d: %s", rc, msg);
    rc = t_run(msg, sizeof msg, "cd %s; " CI_RUN " --out=c.json --checkpoint=afile/c.ckpt", dir, t_bench(), data);
    ck_assert_msg(rc == 1 && strstr(msg, "cannot write the checkpoint afile/c.ckpt") && !strstr(msg, "step "),
                  "exit %d: %s", rc, msg);
    rc = t_run(msg, sizeof msg, "cd %s; ls c.json", dir);
    ck_assert_msg(rc != 0, "a failed set-up left its report placeholder: %s", msg);
    rc = t_run(msg, sizeof msg, "cd %s; " CI_RUN " --out=c.json", dir, t_bench(), data);
    ck_assert_msg(rc == 0, "the corrected command was refused: %s", msg);
    /* a model that cannot fit this machine's memory: refused before any allocation, with the sizes and
     * the options that lower them (it grew until killed before), and no report left */
    rc = t_run(msg, sizeof msg, "cd %s; " CI_RUN " --batch=4096 --max-len=2000 --out=big.json; ls big.json", dir,
               t_bench(), data);
    ck_assert_msg(strstr(msg, "the model needs") && strstr(msg, "activations") && strstr(msg, "lower --batch") &&
                  strstr(msg, "No such file"), "%s", msg);
    rc = t_run(msg, sizeof msg, "cd %s; " CI_RUN " --batch=4096 --max-len=2000 --out=big.json", dir, t_bench(), data);
    ck_assert_int_eq(rc, 2);
    /* the checkpoint named as the report */
    rc = t_run(msg, sizeof msg, "cd %s; " CI_RUN " --out=d.json --checkpoint=d.json", dir, t_bench(), data);
    ck_assert_msg(rc == 2 && strstr(msg, "--checkpoint=d.json is the report's path too"), "exit %d: %s", rc, msg);
    /* a mistyped data directory beside an existing report: the data directory is named */
    rc = t_run(msg, sizeof msg, "cd %s; %s --task=listops --profile=ci --data-dir=TYPO --out=c.json", dir, t_bench());
    ck_assert_msg(rc == 2 && strstr(msg, "--data-dir TYPO is not a directory") && !strstr(msg, "exists"), "exit %d: %s",
                  rc, msg);
}
END_TEST

/* Without a terminal (t_run pipes stderr) a run says what it starts before the data, then its
 * progress from the first timed step, with an ETA. */
START_TEST(test_start_and_progress_without_terminal) {
    const char *dir = t_tmpdir(), *data = t_listops_data();
    char msg[16384];
    int rc = t_run(msg, sizeof msg, "cd %s; %s --task=listops --profile=ci --steps=30 --data-dir=%s --out=p.json", dir,
                   t_bench(), data);
    ck_assert_msg(rc == 0 && strstr(msg, "lra-bench: starting full on listops, profile ci, seed 0: data in ") &&
                  strstr(msg, "report p.json") && strstr(msg, "step      3/30 |") && strstr(msg, "ETA"), "%s", msg);
    rc = t_run(msg, sizeof msg, "cd %s; %s --task=listops --profile=ci --steps=30 --progress=off --data-dir=%s --out=q.json",
               dir, t_bench(), data);
    ck_assert_msg(rc == 0 && !strstr(msg, "ETA"), "--progress=off printed progress: %s", msg);
}
END_TEST

Suite *claim_suite(void) {
    Suite *s = suite_create("claim");
    TCase *tc = tcase_create("nothing lost");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_claim_window);
    tcase_add_test(tc, test_names_taken_midrun);
    tcase_add_test(tc, test_fails_before_training);
    tcase_add_test(tc, test_start_and_progress_without_terminal);
    tcase_add_test(tc, test_simultaneous_runs);
    suite_add_tcase(s, tc);
    return s;
}
