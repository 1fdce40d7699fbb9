/* test_guides.c - the two guides are true: in a copy of the repository, a backend added exactly
 * as attention/README.md says (its example file saved as attention/mine.c, one line in
 * backends.def) builds with no other change and passes the generic backend tests; a task added
 * as tasks/README.md says (its shell lines, run as they are) builds, runs, and passes the
 * generic task test. The code and commands come out of the guides themselves, from the block
 * after each guide's marker line, so a guide that drifts from the code fails here. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "tests.h"

/* A copy of the working tree without run results or other builds, built with the example added
 * by `add` (shell lines run at the copy's root). Returns the copy's directory. build/ comes along
 * with its times, so that make rebuilds only what the example touches (the objects list their
 * headers), as it would in the reader's own tree. */
static const char *copy_and_build(const char *add, char *log, size_t n) {
    const char *dir = t_tmpdir();
    t_at_repo_root();
    int rc = t_run(log, n,
                   "set -e; tar --exclude='./build-*' --exclude=./build/ci-data --exclude=./.git --exclude='./results/*' "
                   "-cf - . | tar -C %s -xf -; "
                   "cd %s; unset MAKEFLAGS MFLAGS MAKELEVEL; %s", dir, dir, add); /* not the outer make's jobs */
    ck_assert_msg(rc == 0, "adding the example as the guide says failed (exit %d): %s", rc, log);
    return dir;
}

/* the lines of the fenced block that follows the marker in a guide */
#define BLOCK_AFTER(marker, guide) \
    "awk '/" marker "/ {m = 1; next} m && /^```/ {if (b) exit; b = 1; next} b' " guide

START_TEST(test_backend_guide) {
    static char log[65536];
    const char *dir = copy_and_build(
        BLOCK_AFTER("the example backend: tests", "attention/README.md") " > attention/mine.c; "
        "test -s attention/mine.c; echo 'BACKEND(mine)' >> attention/backends.def; "
        "make -j2 build/lra-bench build/tests/run_tests > make.log 2>&1 || { tail -30 make.log; exit 1; }",
        log, sizeof log);
    /* the generic backend tests, on the new backend alone */
    int rc = t_run(log, sizeof log,
                   "cd %s && LRA_TEST_BACKEND=mine CK_RUN_SUITE=attention LRA_BENCH=build/lra-bench build/tests/run_tests "
                   "2>&1 | tail -20", dir);
    ck_assert_msg(rc == 0 && strstr(log, "100%: Checks:"), "the generic tests on the guide's backend: %s", log);
    rc = t_run(log, sizeof log,
               "cd %s && build/lra-bench --list-backends && build/lra-bench --task=mqar --backend=mine "
               "--attn-opt=window=16 --profile=ci --steps=20 --progress=off --out=mine.json && "
               "grep -Ec '\"window\":[[:space:]]*16' mine.json", dir);
    ck_assert_msg(rc == 0 && strstr(log, "\nmine\n"), "%s", log);
}
END_TEST

START_TEST(test_task_guide) {
    static char log[65536];
    const char *dir = copy_and_build(
        BLOCK_AFTER("the example task: tests", "tasks/README.md") " > guide.sh; test -s guide.sh; "
        "MAKEFLAGS=-j2 sh -e guide.sh > guide.log 2>&1 || { tail -30 guide.log; exit 1; }; tail -3 guide.log",
        log, sizeof log);
    ck_assert_msg(strstr(log, "mine/full/ci seed 0: test"), "the guide's run did not end with a result: %s", log);
    int rc = t_run(log, sizeof log,
                   "cd %s && unset MAKEFLAGS MFLAGS MAKELEVEL && make -j2 build/tests/run_tests > make.log 2>&1 && "
                   "CK_RUN_SUITE=model CK_RUN_CASE='task registry' LRA_BENCH=build/lra-bench build/tests/run_tests 2>&1 | tail -5",
                   dir);
    ck_assert_msg(rc == 0 && strstr(log, "100%: Checks: 1,"), "the generic task test on the guide's task: %s", log);
}
END_TEST

Suite *guides_suite(void) {
    Suite *s = suite_create("guides");
    TCase *tc = tcase_create("scratch copies");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    /* two builds in copies of the tree: the plain run has them; CI's sanitized run leaves them out */
    tcase_set_tags(tc, "slow");
    tcase_add_test(tc, test_backend_guide);
    tcase_add_test(tc, test_task_guide);
    suite_add_tcase(s, tc);
    return s;
}
