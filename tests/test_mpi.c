/* test_mpi.c - data-parallel training over MPI (harness/encoder/dist.h): the same bits at P = 1, 2 and 4
 * processes, a stop and resume across process counts, a process that dies, a misuse refused.
 * The runs use mpirun --oversubscribe: four processes on this 2-core machine. */
#include <string.h>

#include "../harness/run/checkpoint.h"
#include "tests.h"

/* mpirun as root (containers, CI) needs OpenMPI's two consent variables. Under `make asan` the
 * processes mpirun starts keep AddressSanitizer and UBSan but not LeakSanitizer: OpenMPI leaves
 * its own allocations at exit, in components it has unloaded (unsymbolisable, so no suppression
 * file can name them); the plain runs here and every other test keep leak checking. */
#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=\"$ASAN_OPTIONS:detect_leaks=0\" " \
               "mpirun --oversubscribe -np"

static const char *const SECTIONS[] = {"params", "adam_m", "adam_v", "best_params", "order"};
enum { NSEC = sizeof SECTIONS / sizeof *SECTIONS };

/* The checkpoint's state sections, as bytes, one malloc'd buffer each. */
static void read_state(const char *path, uint8_t *sec[NSEC], size_t len[NSEC]) {
    lra_checkpoint ck;
    char err[LRA_ERR_LEN];
    ck_assert_msg(lra_checkpoint_read(path, &ck, err) == LRA_OK, "%s", err);
    for (int i = 0; i < NSEC; i++) {
        sec[i] = NULL;
        for (int k = 0; k < ck.nsections; k++)
            if (!strcmp(ck.sec[k].name, SECTIONS[i])) {
                len[i] = ck.sec[k].bytes;
                sec[i] = malloc(len[i]);
                memcpy(sec[i], ck.data + ck.sec[k].off, len[i]);
            }
        ck_assert_msg(sec[i], "%s: no section %s", path, SECTIONS[i]);
    }
    lra_checkpoint_free(&ck);
}

/* Two runs' reports give the same numbers and their checkpoints the same state, to the bit. */
static void assert_same_run(const char *a, const char *b) {
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s.json", a);
    snprintf(pb, sizeof pb, "%s.json", b);
    cJSON *ja = t_load_json(pa), *jb = t_load_json(pb);
    const char *keys[] = {"results.train.loss", "results.train.accuracy", "results.val.loss", "results.val.accuracy",
                          "results.test.loss", "results.test.accuracy", "results.best_val.step",
                          "results.best_val.test.loss"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ck_assert_msg(t_num(ja, keys[i]) == t_num(jb, keys[i]), "%s: %.17g in %s, %.17g in %s", keys[i],
                      t_num(ja, keys[i]), pa, t_num(jb, keys[i]), pb);
    const cJSON *ca = t_get(ja, "curve"), *cb = t_get(jb, "curve");
    ck_assert_int_eq(cJSON_GetArraySize(ca), cJSON_GetArraySize(cb));
    for (int i = 0; i < cJSON_GetArraySize(ca); i++)
        ck_assert_msg(t_num(cJSON_GetArrayItem(ca, i), "val_loss") == t_num(cJSON_GetArrayItem(cb, i), "val_loss"),
                      "curve point %d of %s and %s", i, pa, pb);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    uint8_t *sa[NSEC], *sb[NSEC];
    size_t la[NSEC], lb[NSEC];
    snprintf(pa, sizeof pa, "%s.ckpt", a);
    snprintf(pb, sizeof pb, "%s.ckpt", b);
    read_state(pa, sa, la);
    read_state(pb, sb, lb);
    for (int i = 0; i < NSEC; i++) {
        ck_assert_msg(la[i] == lb[i] && !memcmp(sa[i], sb[i], la[i]), "section %s differs: %s, %s", SECTIONS[i], pa, pb);
        free(sa[i]);
        free(sb[i]);
    }
}

/* P = 1 (a plain run), 2 and 4 with the same 4 gradient shards: the same losses, accuracies,
 * curve, parameters, Adam moments and best-validation parameters; the plain run's parameters
 * differ from those of a run with 1 shard (so the comparison can see a difference at all). Then a
 * run on 2 processes stopped by a signal to one of them, resumed on 4: the same bits again. */
START_TEST(test_mpi_same_bits) {
    const char *data = t_listops_data(), *out = t_tmpdir(), *backends[2] = {"full", "mita"};
    char msg[16384], a[256], b[256];
    for (int k = 0; k < 2; k++) {
        const char *be = backends[k];
        char opts[1024];
        snprintf(opts, sizeof opts, "--profile=ci --backend=%s --data-dir=%s --steps=6 --eval-every=3 "
                 "--checkpoint-every=6 --grad-shards=4 --threads=1", be, data);
        int rc = t_run(msg, sizeof msg, "%s %s --out=%s/%s-p1.json", t_bench(), opts, out, be);
        ck_assert_msg(rc == 0, "%s", msg);
        for (int P = 2; P <= 4; P += 2) {
            rc = t_run(msg, sizeof msg, "%s %d %s %s --out=%s/%s-p%d.json", MPIRUN, P, t_bench(), opts, out, be, P);
            ck_assert_msg(rc == 0, "P=%d: %s", P, msg);
            snprintf(a, sizeof a, "%s/%s-p1", out, be);
            snprintf(b, sizeof b, "%s/%s-p%d", out, be, P);
            assert_same_run(a, b);
            snprintf(b, sizeof b, "%s/%s-p%d.json", out, be, P);
            cJSON *j = t_load_json(b);
            ck_assert_int_eq((int)t_num(j, "parallel.processes"), P);
            ck_assert_int_eq(cJSON_GetArraySize(t_get(j, "parallel.hosts")), P);
            cJSON_Delete(j);
        }
        /* one shard instead of four is another computation: the bits differ */
        rc = t_run(msg, sizeof msg, "%s %s --grad-shards=1 --out=%s/%s-s1.json", t_bench(), opts, out, be);
        ck_assert_msg(rc == 0, "%s", msg);
        snprintf(a, sizeof a, "%s/%s-p1.ckpt", out, be);
        snprintf(b, sizeof b, "%s/%s-s1.ckpt", out, be);
        uint8_t *sa[NSEC], *sb[NSEC];
        size_t la[NSEC], lb[NSEC];
        read_state(a, sa, la);
        read_state(b, sb, lb);
        ck_assert_msg(memcmp(sa[0], sb[0], la[0]) != 0, "%s: 1 and 4 shards gave the same parameters", be);
        for (int i = 0; i < NSEC; i++) { free(sa[i]); free(sb[i]); }
    }
    /* SIGINT to the last process before step 3: every process stops at the same step, rank 0
     * writes the checkpoint; resumed on 4 processes, the run ends as the uninterrupted one */
    char opts[1024];
    snprintf(opts, sizeof opts, "--profile=ci --backend=mita --data-dir=%s --steps=6 --eval-every=3 --checkpoint-every=6 "
             "--grad-shards=4 --threads=1", data);
    int rc = t_run(msg, sizeof msg, "LRA_TEST_SIGNAL_AT=3 %s 2 %s %s --out=%s/stopped.json", MPIRUN, t_bench(), opts, out);
    ck_assert_msg(rc != 0 && strstr(msg, "interrupted (SIGINT) after 4 of 6 steps"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s 4 %s resume %s/stopped.json", MPIRUN, t_bench(), out);
    ck_assert_msg(rc == 0, "%s", msg);
    snprintf(a, sizeof a, "%s/mita-p1", out);
    snprintf(b, sizeof b, "%s/stopped", out);
    assert_same_run(a, b);
}
END_TEST

/* A process that dies (SIGKILL before step 2) takes the job down: mpirun exits non-zero and says
 * which process died and how. Check's timeout is what a hang would meet. */
START_TEST(test_mpi_killed_process) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[16384];
    int rc = t_run(msg, sizeof msg, "LRA_TEST_DIE_AT=2 %s 2 %s --profile=ci --data-dir=%s --steps=50 --grad-shards=2 "
                   "--threads=1 --out=%s/dead.json", MPIRUN, t_bench(), data, out);
    ck_assert_msg(rc != 0 && strstr(msg, "rank 1") && strstr(msg, "signal 9"), "rc %d: %s", rc, msg);
}
END_TEST

/* More processes than gradient shards: refused by every process, exit 2, with what to pass. */
START_TEST(test_mpi_more_processes_than_shards) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[16384];
    int rc = t_run(msg, sizeof msg, "%s 2 %s --profile=ci --data-dir=%s --steps=2 --out=%s/no.json; echo rc=$?", MPIRUN,
                   t_bench(), data, out);
    (void)rc;
    ck_assert_msg(strstr(msg, "2 processes and --grad-shards=1") && strstr(msg, "--grad-shards=N with N >= 2"), "%s", msg);
    ck_assert_msg(strstr(msg, "Exit code:    2") || strstr(msg, "rc=2"), "%s", msg);
}
END_TEST

Suite *mpi_suite(void) {
    Suite *s = suite_create("mpi");
    TCase *tc = tcase_create("data-parallel");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_mpi_same_bits);
    tcase_add_test(tc, test_mpi_killed_process);
    tcase_add_test(tc, test_mpi_more_processes_than_shards);
    suite_add_tcase(s, tc);
    return s;
}
