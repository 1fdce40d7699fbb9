/* test_checkpoint.c - runs that survive: the checkpoint file format, exact resume after SIGKILL at
 * several points (between steps, halfway through writing a checkpoint) and after SIGINT, refusal
 * of another run's, a corrupt or a truncated checkpoint, and reports, checkpoints and generated
 * data on a full disk or past a file-size limit. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../common/atomic_file.h"
#include "../common/json_file.h"
#include "../common/sha256.h"
#include "../datasets/datadir.h"
#include "../harness/run/checkpoint.h"
#include "../harness/run/sysinfo.h"
#include "tests.h"

/* ---- replacing a file whole: the writer every report, checkpoint and generated file goes through -- */

static void slurp(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s missing", path);
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = '\0';
    fclose(f);
}

START_TEST(test_atomic_file) {
    const char *dir = t_tmpdir();
    char path[512], buf[64], err[LRA_ERR_LEN], ls[1024];
    snprintf(path, sizeof path, "%s/new/dir/f.txt", dir);
    lra_atomic_file a;
    /* the directory is created; the file appears only at commit */
    ck_assert_int_eq(lra_atomic_open(&a, path, err), LRA_OK);
    fputs("old", a.f);
    ck_assert(!lra_file_exists(path));
    ck_assert_int_eq(lra_atomic_commit(&a, 1, LRA_ATOMIC_SYNC), 0);
    slurp(path, buf, sizeof buf);
    ck_assert_str_eq(buf, "old");
    /* the caller's write failed: its errno comes back, the old file stays, the temporary goes */
    ck_assert_int_eq(lra_atomic_open(&a, path, err), LRA_OK);
    fputs("half", a.f);
    errno = ENOSPC;
    ck_assert_int_eq(lra_atomic_commit(&a, 0, LRA_ATOMIC_SYNC), ENOSPC);
    ck_assert(!lra_file_exists(a.tmp));
    slurp(path, buf, sizeof buf);
    ck_assert_str_eq(buf, "old");
    /* finished but discarded (another file of a set failed) */
    ck_assert_int_eq(lra_atomic_open(&a, path, err), LRA_OK);
    fputs("unused", a.f);
    ck_assert_int_eq(lra_atomic_finish(&a, 1, 0), 0);
    ck_assert(lra_file_exists(a.tmp));
    lra_atomic_discard(&a);
    ck_assert(!lra_file_exists(a.tmp));
    slurp(path, buf, sizeof buf);
    ck_assert_str_eq(buf, "old");
    /* the rename fails (a directory holds the name): EISDIR, temporary removed */
    char dir_path[600];
    snprintf(dir_path, sizeof dir_path, "%s/new/dir/d", dir);
    ck_assert_int_eq(lra_mkdirs(dir_path, err), LRA_OK);
    ck_assert_int_eq(lra_atomic_open(&a, dir_path, err), LRA_OK);
    fputs("x", a.f);
    ck_assert_int_eq(lra_atomic_commit(&a, 1, 0), EISDIR);
    ck_assert(!lra_file_exists(a.tmp));
    /* a replacement does replace */
    ck_assert_int_eq(lra_atomic_open(&a, path, err), LRA_OK);
    fputs("new", a.f);
    ck_assert_int_eq(lra_atomic_commit(&a, 1, 0), 0);
    slurp(path, buf, sizeof buf);
    ck_assert_str_eq(buf, "new");
    t_run(ls, sizeof ls, "ls -A %s/new/dir", dir);
    ck_assert_str_eq(ls, "d\nf.txt\n");
    /* a file that cannot be created: the message names it */
    snprintf(path, sizeof path, "%s/new/dir/f.txt/below", dir);
    ck_assert_int_ne(lra_atomic_open(&a, path, err), LRA_OK);
    ck_assert_msg(strstr(err, "f.txt") != NULL, "%s", err);
    ck_assert(a.f == NULL);
}
END_TEST

/* A report that must not replace another's (speed's): a taken name, even one taken after the
 * check, moves the new report to the first free -K name; the files there stay as they were. */
START_TEST(test_write_json_new) {
    const char *dir = t_tmpdir();
    char path[512], other[600], written[600], buf[64], err[LRA_ERR_LEN], ls[1024];
    snprintf(path, sizeof path, "%s/reports/r.json", dir);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "n", 1);
    ck_assert_int_eq(lra_write_json_new(path, j, written, sizeof written, err), LRA_OK);
    ck_assert_str_eq(written, path);
    FILE *f = fopen(path, "w");
    fputs("first", f);
    fclose(f);
    snprintf(other, sizeof other, "%s/reports/r-2.json", dir);
    f = fopen(other, "w");
    fputs("second", f);
    fclose(f);
    ck_assert_int_eq(lra_write_json_new(path, j, written, sizeof written, err), LRA_OK);
    snprintf(other, sizeof other, "%s/reports/r-3.json", dir);
    ck_assert_str_eq(written, other);
    slurp(path, buf, sizeof buf);
    ck_assert_str_eq(buf, "first");
    snprintf(other, sizeof other, "%s/reports/r-2.json", dir);
    slurp(other, buf, sizeof buf);
    ck_assert_str_eq(buf, "second");
    t_run(ls, sizeof ls, "ls -A %s/reports && grep -c '\"n\":' %s/reports/r-3.json", dir, dir);
    ck_assert_str_eq(ls, "r-2.json\nr-3.json\nr.json\n1\n"); /* no temporary file left */
    /* a path below a file cannot be written: the error names the file in the way */
    snprintf(other, sizeof other, "%s/reports/r-3.json/x.json", dir);
    ck_assert_int_ne(lra_write_json_new(other, j, written, sizeof written, err), LRA_OK);
    ck_assert_msg(strstr(err, "r-3.json") != NULL, "%s", err);
    cJSON_Delete(j);
}
END_TEST

/* ---- the file format ------------------------------------------------------------------------ */

static size_t file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s missing", path);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fclose(f);
    return n;
}

static void patch_byte(const char *path, long off, int value) {
    FILE *f = fopen(path, "r+b");
    ck_assert(f != NULL);
    fseek(f, off, SEEK_SET);
    fputc(value, f);
    fclose(f);
}

START_TEST(test_format_round_trip) {
    const char *dir = t_tmpdir();
    char path[256], err[LRA_ERR_LEN];
    snprintf(path, sizeof path, "%s/sub/x.ckpt", dir);
    float a[5] = {1, -2.5f, 3e-20f, 0, 7};
    uint32_t b[3] = {9, 8, 7};
    lra_ckpt_section s[2] = {{"a", a, sizeof a}, {"b", b, sizeof b}};
    cJSON *h = cJSON_CreateObject();
    cJSON_AddNumberToObject(h, "step", 12);
    lra_owned_name name;
    int moved;
    lra_owned_init(&name, path, 0);
    ck_assert_int_eq(lra_checkpoint_write(&name, &moved, h, s, 2, err), LRA_OK);
    ck_assert_int_eq(moved, 0);
    cJSON_Delete(h);
    t_corpus_classify(path);
    lra_checkpoint ck;
    ck_assert_msg(lra_checkpoint_read(path, &ck, err) == LRA_OK, "%s", err);
    ck_assert_double_eq(cJSON_GetObjectItem(ck.header, "step")->valuedouble, 12);
    float a2[5];
    uint32_t b2[3];
    ck_assert_int_eq(lra_checkpoint_section(&ck, "a", a2, sizeof a2, err), LRA_OK);
    ck_assert_int_eq(lra_checkpoint_section(&ck, "b", b2, sizeof b2, err), LRA_OK);
    ck_assert(memcmp(a, a2, sizeof a) == 0 && memcmp(b, b2, sizeof b) == 0);
    ck_assert_int_eq(lra_checkpoint_section(&ck, "b", b2, 8, err), LRA_ERR_FORMAT);
    ck_assert_msg(strstr(err, "'b' holds 12 bytes where this run needs 8"), "%s", err);
    ck_assert_int_eq(lra_checkpoint_section(&ck, "c", b2, 8, err), LRA_ERR_FORMAT);
    lra_checkpoint_free(&ck);
    ck_assert_int_eq(t_run(NULL, 0, "ls %s/sub | grep -q tmp", dir), 1);

    /* every single flipped byte and every truncation is refused, never misread */
    const size_t n = file_size(path);
    char copy[300];
    snprintf(copy, sizeof copy, "%s/c.ckpt", dir);
    for (size_t off = 0; off < n; off += 7) {
        ck_assert_int_eq(t_run(NULL, 0, "cp %s %s", path, copy), 0);
        patch_byte(copy, (long)off, 0x5a ^ (int)(off & 0xff) ^ 0x80);
        ck_assert_msg(lra_checkpoint_read(copy, &ck, err) == LRA_ERR_FORMAT, "byte %zu flipped and accepted", off);
    }
    for (size_t len = 0; len < n; len += 13) {
        ck_assert_int_eq(t_run(NULL, 0, "head -c %zu %s > %s", len, path, copy), 0);
        ck_assert_msg(lra_checkpoint_read(copy, &ck, err) == LRA_ERR_FORMAT, "cut to %zu bytes and accepted", len);
    }
    ck_assert_int_eq(t_run(NULL, 0, "head -c %zu %s > %s", n - 1, path, copy), 0);
    lra_checkpoint_read(copy, &ck, err);
    ck_assert_msg(strstr(err, "truncated or corrupt"), "%s", err);
    ck_assert_int_eq(t_run(NULL, 0, "cp %s %s", path, copy), 0);
    patch_byte(copy, 8, 99);
    lra_checkpoint_read(copy, &ck, err);
    ck_assert_msg(strstr(err, "format version 99; this lra-bench reads version 1"), "%s", err);
    lra_checkpoint_read("/nonexistent/x.ckpt", &ck, err);
    ck_assert_msg(strstr(err, "/nonexistent/x.ckpt"), "%s", err);
}
END_TEST

/* ---- exact resume --------------------------------------------------------------------------- */

/* 40 steps, evaluations every 10 and checkpoints every 7 (they fall between evaluations) */
#define RUN "%s --profile=ci --steps=40 --eval-every=10 --checkpoint-every=7 --threads=2 --data-dir=%s"

/* Starts the run with env set, waits until it stops itself (the SIGSTOP test hooks), then kills it
 * with SIGKILL. */
static void run_and_kill(const char *env, const char *opts, const char *report) {
    char msg[4096];
    t_run(msg, sizeof msg,
          "%s " RUN " %s --out=%s & p=$!; "
          T_WAIT_STOPPED(600)
          "kill -KILL $p; wait $p; echo rc=$?",
          env, t_bench(), t_listops_data(), opts, report);
    ck_assert_msg(strstr(msg, "rc=137"), "%s: not killed while stopped: %s", env, msg);
}

static void check_resumed(const char *report, const char *ref, double resumed_at) {
    char *a = t_report_numbers(report), *b = t_report_numbers(ref);
    ck_assert_msg(strcmp(a, b) == 0, "resumed run differs:\n%s\nuninterrupted:\n%s", a, b);
    free(a);
    free(b);
    cJSON *j = t_load_json(report);
    cJSON *at = t_get(j, "resumed_at_steps");
    ck_assert_int_eq(cJSON_GetArraySize(at), 1);
    ck_assert_double_eq(cJSON_GetArrayItem(at, 0)->valuedouble, resumed_at);
    ck_assert_double_eq(t_num(j, "checkpoint.step"), 40);
    cJSON_Delete(j);
}

START_TEST(test_exact_resume_after_sigkill) {
    const char *out = t_tmpdir();
    /* the uninterrupted runs: two backends in fp32, and full in bf16 */
    static const char *const refs[3] = {"--backend=full", "--backend=mita", "--backend=full --precision=bf16"};
    static const struct { const char *env; int ref; double resumed_at; } kills[] = {
        {"LRA_TEST_STOP_AT=15", 0, 14},          /* just after a checkpoint and an evaluation */
        {"LRA_TEST_STOP_AT=23", 0, 21},
        {"LRA_TEST_STOP_AT=39", 0, 35},          /* before the last step */
        {"LRA_TEST_STOP_IN_CHECKPOINT=3", 0, 14}, /* halfway through writing step 21's */
        {"LRA_TEST_STOP_AT=23", 1, 21},
        {"LRA_TEST_STOP_IN_CHECKPOINT=2", 1, 7},
        {"LRA_TEST_STOP_AT=23", 2, 21},          /* bf16, resumed at another thread count too */
    };
    char msg[8192], ref[3][256], report[256];
    for (int b = 0; b < 3; b++) {
        snprintf(ref[b], sizeof ref[b], "%s/ref-%d.json", out, b);
        ck_assert_msg(t_run(msg, sizeof msg, RUN " %s --out=%s", t_bench(), t_listops_data(), refs[b], ref[b]) == 0,
                      "%s", msg);
        char ckpt[300];
        snprintf(ckpt, sizeof ckpt, "%s/ref-%d.ckpt", out, b);
        t_corpus_classify(ref[b]);
        t_corpus_classify(ckpt);
    }
    for (size_t k = 0; k < sizeof kills / sizeof *kills; k++) {
        const int b = kills[k].ref;
        snprintf(report, sizeof report, "%s/k%zu.json", out, k);
        run_and_kill(kills[k].env, refs[b], report);
        if (strstr(kills[k].env, "CHECKPOINT")) /* the half-written file is there, under a temporary name only */
            ck_assert_int_eq(t_run(NULL, 0, "ls %s | grep -q 'k%zu.ckpt.tmp'", out, k), 0);
        /* by the checkpoint, or (k odd) by the report, which names its checkpoint; another thread count */
        int rc = t_run(msg, sizeof msg, "%s resume %s/k%zu.%s --threads=1", t_bench(), out, k, k % 2 ? "json" : "ckpt");
        ck_assert_msg(rc == 0, "%s %s: resume failed: %s", kills[k].env, refs[b], msg);
        check_resumed(report, ref[b], kills[k].resumed_at);
        /* the killed writer's temporary file is swept when the run resumes */
        ck_assert_msg(t_run(msg, sizeof msg, "ls %s | grep 'k%zu.*tmp'", out, k) == 1, "left behind: %s", msg);
    }
    /* the bf16 run is not fp32's: its numbers differ, and its report says bf16 */
    char *a = t_report_numbers(ref[0]), *c = t_report_numbers(ref[2]);
    ck_assert_msg(strcmp(a, c) != 0, "the bf16 run gave fp32's numbers");
    free(a);
    free(c);
    cJSON *j = t_load_json(ref[2]);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"), "precision")->valuestring,
                     "bf16");
    cJSON_Delete(j);
}
END_TEST

/* A checkpoint computed under another numerics version (LRA_TEST_NUMERICS makes this binary write
 * one) is refused with exit 2 and the two ways on; --numerics-change=on continues it (here the
 * bits are in fact the same, so the run ends as the uninterrupted one) and the report records the
 * step. */
START_TEST(test_resume_other_numerics) {
    const char *out = t_tmpdir();
    char msg[8192], ref[256], report[256];
    snprintf(ref, sizeof ref, "%s/ref.json", out);
    snprintf(report, sizeof report, "%s/old.json", out);
    ck_assert_msg(t_run(msg, sizeof msg, RUN " --backend=full --out=%s", t_bench(), t_listops_data(), ref) == 0, "%s", msg);
    run_and_kill("LRA_TEST_NUMERICS=1 LRA_TEST_STOP_AT=15", "--backend=full", report);
    ck_assert_int_eq(t_run(msg, sizeof msg, "%s resume %s/old.ckpt", t_bench(), out), 2);
    char want[128];
    snprintf(want, sizeof want, "computed under numerics 1 (lra-bench %s); this binary computes under numerics %d",
             lra_git_commit(), LRA_NUMERICS_FP32);
    ck_assert_msg(strstr(msg, want) && strstr(msg, "--numerics-change=on"), "%s", msg);
    ck_assert_msg(t_run(msg, sizeof msg, "%s resume %s/old.ckpt --numerics-change=on", t_bench(), out) == 0, "%s", msg);
    ck_assert_msg(strstr(msg, "continued under"), "%s", msg);
    char *a = t_report_numbers(report), *b = t_report_numbers(ref);
    ck_assert_msg(strcmp(a, b) == 0, "resumed run differs:\n%s\nuninterrupted:\n%s", a, b);
    free(a);
    free(b);
    cJSON *j = t_load_json(report);
    ck_assert_int_eq(cJSON_GetArraySize(t_get(j, "numerics_changed_at_steps")), 1);
    ck_assert_double_eq(cJSON_GetArrayItem(t_get(j, "numerics_changed_at_steps"), 0)->valuedouble, 14);
    ck_assert_double_eq(t_num(j, "numerics"), LRA_NUMERICS_FP32);
    cJSON_Delete(j);
    /* numerics 9 changed bf16's bits only: an fp32 checkpoint its binaries stamped 9 is 8's run, and
     * continues without the flag; a bf16 one stamped 9 (before the AMX tiles, 10) is refused */
    snprintf(report, sizeof report, "%s/nine.json", out);
    run_and_kill("LRA_TEST_NUMERICS=9 LRA_TEST_STOP_AT=15", "--backend=full", report);
    ck_assert_msg(t_run(msg, sizeof msg, "%s resume %s/nine.ckpt", t_bench(), out) == 0, "%s", msg);
    a = t_report_numbers(report);
    b = t_report_numbers(ref);
    ck_assert_msg(strcmp(a, b) == 0, "resumed run differs:\n%s\nuninterrupted:\n%s", a, b);
    free(a);
    free(b);
    j = t_load_json(report);
    ck_assert_msg(!cJSON_GetObjectItemCaseSensitive(j, "numerics_changed_at_steps"), "an fp32 run of 9 noted as changed");
    ck_assert_double_eq(t_num(j, "numerics"), LRA_NUMERICS_FP32);
    cJSON_Delete(j);
    snprintf(report, sizeof report, "%s/nine16.json", out);
    run_and_kill("LRA_TEST_NUMERICS=9 LRA_TEST_STOP_AT=15", "--backend=full --precision=bf16", report);
    ck_assert_int_eq(t_run(msg, sizeof msg, "%s resume %s/nine16.ckpt", t_bench(), out), 2);
    snprintf(want, sizeof want, "computed under numerics 9 (lra-bench %s); this binary computes under numerics %d",
             lra_git_commit(), LRA_NUMERICS_BF16);
    ck_assert_msg(strstr(msg, want), "%s", msg);
}
END_TEST

/* SIGINT finishes the step, checkpoints and exits 1 with the command that continues; that command
 * ends where the uninterrupted run ends. */
START_TEST(test_exact_resume_after_sigint) {
    const char *out = t_tmpdir();
    char msg[8192], ref[256], report[256];
    snprintf(ref, sizeof ref, "%s/ref.json", out);
    snprintf(report, sizeof report, "%s/i.json", out);
    ck_assert_msg(t_run(msg, sizeof msg, RUN " --backend=agent --checkpoint-every=0 --out=%s", t_bench(), t_listops_data(), ref) == 0,
                  "%s", msg);
    /* started with a relative report path in out/, resumed from another directory */
    t_run(msg, sizeof msg,
          "cd %s && LRA_TEST_STOP_AT=17 " RUN " --backend=agent --checkpoint-every=0 --out=i.json & p=$!; "
          T_WAIT_STOPPED(600)
          "kill -INT $p; kill -CONT $p; wait $p; echo rc=$?",
          out, t_bench(), t_listops_data());
    ck_assert_msg(strstr(msg, "rc=1") && strstr(msg, "after 18 of 40 steps") && strstr(msg, "lra-bench resume"), "%s", msg);
    cJSON *j = t_load_json(report);
    ck_assert_str_eq(t_str(j, "status"), "interrupted");
    ck_assert_double_eq(t_num(j, "checkpoint.step"), 18);
    cJSON_Delete(j);
    ck_assert_msg(t_run(msg, sizeof msg, "cd / && %s resume %s", t_bench(), report) == 0, "%s", msg);
    ck_assert_msg(t_run(msg, sizeof msg, "ls -A %s", out) == 0 && strcmp(msg, "i.ckpt\ni.json\nref.json\n") == 0, "%s", msg);
    char *a = t_report_numbers(report), *b = t_report_numbers(ref);
    ck_assert_msg(strcmp(a, b) == 0, "resumed:\n%s\nuninterrupted:\n%s", a, b);
    free(a);
    free(b);
}
END_TEST

static void sha_of(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s missing", path);
    lra_sha256 h;
    lra_sha256_init(&h);
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) lra_sha256_update(&h, buf, k);
    fclose(f);
    lra_sha256_final_hex(&h, hex);
}

/* Another run's checkpoint (options, backend, data), a damaged one, or none: refused with a
 * message saying what differs, the report left as it was. */
/* A copy of checkpoint `from` at `to` whose JSON header has its first `find` and the `drop` bytes
 * after it replaced by `repl`,
 * with the header length and the trailing SHA-256 made right again: a header the hash accepts
 * but whose fields are wrong (checkpoint.h has the layout). */
static void rewrite_header(const char *from, const char *to, const char *find, size_t drop, const char *repl) {
    FILE *f = fopen(from, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    const size_t n = (size_t)ftell(f);
    rewind(f);
    char *in = malloc(n), *out = malloc(n + strlen(repl) + 1);
    ck_assert_int_eq(fread(in, 1, n, f), n);
    fclose(f);
    uint64_t hlen;
    memcpy(&hlen, in + 16, 8); /* little-endian, as this machine */
    char *at = memmem(in + 24, hlen, find, strlen(find));
    ck_assert_msg(at != NULL, "%s not in the header", find);
    const size_t head = (size_t)(at - in), cut = strlen(find) + drop, tail_from = head + cut, body = n - 64;
    memcpy(out, in, head);
    memcpy(out + head, repl, strlen(repl));
    memcpy(out + head + strlen(repl), in + tail_from, body - tail_from);
    const size_t m = body - cut + strlen(repl);
    hlen = hlen - cut + strlen(repl);
    memcpy(out + 16, &hlen, 8);
    lra_sha256 h;
    char hex[65];
    lra_sha256_init(&h);
    lra_sha256_update(&h, out, m);
    lra_sha256_final_hex(&h, hex);
    memcpy(out + m, hex, 64);
    t_write_file(to, out, m + 64);
    free(in);
    free(out);
}

START_TEST(test_resume_refused) {
    const char *out = t_tmpdir(), *data = t_listops_data();
    char msg[8192], ckpt[256], report[256], before[65], after[65];
    snprintf(ckpt, sizeof ckpt, "%s/a.ckpt", out);
    snprintf(report, sizeof report, "%s/a.json", out);
    ck_assert_msg(t_run(msg, sizeof msg, RUN " --backend=full --steps=10 --out=%s", t_bench(), data, report) == 0, "%s", msg);
    sha_of(report, before);
    struct { const char *cmd, *want; int rc; } cases[] = {
        {"%1$s resume %2$s/a.ckpt --lr=0.5", "--lr=0.003 in the checkpoint, 0.5 here", 2},
        {"%1$s resume %2$s/a.json --dropout=0 --batch=8", "--batch=32 in the checkpoint, 8 here; --dropout=0.1", 2},
        {"%1$s --profile=ci --steps=10 --backend=mita --resume --checkpoint=%2$s/a.ckpt --out=%2$s/a.json --data-dir=%3$s",
         "--backend=full in the checkpoint, mita here", 2},
        {"%1$s --profile=ci --steps=10 --eval-every=10 --resume --out=%2$s/a.json --data-dir=%2$s/other",
         "written on other data", 2},
        {"%1$s --profile=ci --steps=10 --eval-every=10 --resume --checkpoint=%2$s/none.ckpt --out=%2$s/a.json --data-dir=%3$s",
         "no checkpoint at", 2},
        {"cp %2$s/a.ckpt %2$s/t.ckpt && truncate -s -100 %2$s/t.ckpt && %1$s resume %2$s/t.ckpt",
         "t.ckpt: checkpoint is truncated or corrupt", 1},
        /* c.ckpt: a.ckpt with byte 3000 flipped (below: writing a fixed 'X' there did nothing when
         * the parameter byte already was one, about one run in 256) */
        {"%1$s resume %2$s/c.ckpt", "c.ckpt: checkpoint is truncated or corrupt", 1},
        {"printf 'hello' > %2$s/h.txt && %1$s resume %2$s/h.txt", "h.txt:1:1: not valid JSON", 1},
        {"%1$s resume %2$s/a.json --steps=5", "is at step 10, past --steps=5", 2},
        {"cp %2$s/a.ckpt %2$s/m.ckpt && printf XXXX | dd of=%2$s/m.ckpt conv=notrunc 2>/dev/null && %1$s resume %2$s/m.ckpt",
         "m.ckpt: not an lra-bench checkpoint (it does not begin with the checkpoint's magic", 1},
        /* headers the hash accepts, with fields gone wrong (rewrite_header below) */
        {"%1$s resume %2$s/nv.ckpt", "nv.ckpt: the checkpoint's numerics version is not a whole number", 1},
        {"%1$s resume %2$s/rg.ckpt", "rg.ckpt: the checkpoint's header lacks or has out-of-range run state", 1},
        {"%1$s resume", "name a checkpoint", 2},
    };
    ck_assert_int_eq(t_run(msg, sizeof msg, "%s generate --task=listops --out=%s/other --sizes=300,50,41", t_bench(), out), 0);
    char damaged[256];
    snprintf(damaged, sizeof damaged, "%s/c.ckpt", out);
    ck_assert_int_eq(t_run(NULL, 0, "cp %s %s", ckpt, damaged), 0);
    FILE *f = fopen(damaged, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 3000, SEEK_SET), 0);
    const int byte = fgetc(f);
    ck_assert_int_ne(byte, EOF);
    ck_assert_int_eq(fseek(f, 3000, SEEK_SET), 0);
    fputc(byte ^ 0xFF, f);
    fclose(f);
    char path[256];
    snprintf(path, sizeof path, "%s/nv.ckpt", out);
    rewrite_header(ckpt, path, "\"numerics\":", 0, "\"numerics\":\"7\",\"was\":"); /* "7", a string */
    snprintf(path, sizeof path, "%s/rg.ckpt", out);
    rewrite_header(ckpt, path, "\"rng\":\"", 4, "\"rng\":\"zzzz"); /* 16 digits, 4 not hex */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, cases[i].cmd, t_bench(), out, data);
        int rc = t_run(msg, sizeof msg, "%s; echo rc=$?", cmd);
        char want_rc[16];
        snprintf(want_rc, sizeof want_rc, "rc=%d", cases[i].rc);
        ck_assert_msg(strstr(msg, cases[i].want) && strstr(msg, want_rc), "case %zu: %s\n-> %s", i, cmd, msg);
        (void)rc;
        sha_of(report, after);
        ck_assert_msg(strcmp(before, after) == 0, "case %zu changed the report", i);
    }
    /* a report whose run wrote no checkpoint says so */
    ck_assert_int_eq(t_run(msg, sizeof msg, RUN " --steps=3 --checkpoint-every=0 --out=%s/n.json", t_bench(), data, out), 0);
    ck_assert_int_eq(t_run(msg, sizeof msg, "%s resume %s/n.json", t_bench(), out), 1);
    ck_assert_msg(strstr(msg, "names no checkpoint"), "%s", msg);
}
END_TEST

/* A run on ListOps files lra-bench did not generate (official ones, as far as it can tell), resumed
 * after they went away: refused before anything is generated, since generated splits would not be
 * those files (the checksum would refuse them only after minutes of generation and hundreds of MB
 * of data). */
START_TEST(test_resume_does_not_generate_other_data) {
    const char *out = t_tmpdir();
    char msg[8192];
    int rc = t_run(msg, sizeof msg,
                   "mkdir -p %1$s/official && cp %2$s/basic_*.tsv %1$s/official/ && "
                   "{ LRA_TEST_STOP_AT=12 %3$s --profile=ci --dataset= --steps=20 --checkpoint-every=5 --data-dir=%1$s/official "
                   "--out=%1$s/o.json & p=$!; "
                   T_WAIT_STOPPED(600)
                   "kill -KILL $p; wait $p; } ; mv %1$s/official %1$s/away && mkdir %1$s/official",
                   out, t_listops_data(), t_bench());
    ck_assert_msg(rc == 0, "%s", msg);
    rc = t_run(msg, sizeof msg, "%s resume %s/o.json; echo rc=$?; ls %s/official", t_bench(), out, out);
    ck_assert_msg(strstr(msg, "rc=2") && strstr(msg, "read files lra-bench did not generate") &&
                  strstr(msg, "nothing was generated") && !strstr(msg, "listops-1000"), "%s", msg);
    /* back where they were, the run goes on */
    rc = t_run(msg, sizeof msg, "rmdir %1$s/official && mv %1$s/away %1$s/official && %2$s resume %1$s/o.json",
               out, t_bench());
    ck_assert_msg(rc == 0, "%s", msg);
}
END_TEST

/* A report records its checkpoint, and a checkpoint its report, by absolute path: a run started in
 * one directory with relative names and resumed from another records the same paths (it once
 * recorded "../a/r.ckpt", relative to wherever the resuming shell stood). */
START_TEST(test_recorded_paths_absolute) {
    const char *out = t_tmpdir();
    char msg[8192], real[4096], want[4200];
    ck_assert_ptr_nonnull(realpath(out, real));
    int rc = t_run(msg, sizeof msg,
                   "cd %1$s && mkdir a b && cd a && LRA_TEST_STOP_AT=6 %2$s --profile=ci --steps=12 --checkpoint-every=3 "
                   "--data-dir=%3$s --out=r.json & p=$!; "
                   T_WAIT_STOPPED(600)
                   "kill -KILL $p; wait $p; cd %1$s/b && %2$s resume ../a/r.json", out, t_bench(), t_listops_data());
    ck_assert_msg(rc == 0, "%s", msg);
    snprintf(want, sizeof want, "%s/a/r.ckpt", real);
    char path[4200];
    snprintf(path, sizeof path, "%s/a/r.json", out);
    cJSON *j = t_load_json(path);
    ck_assert_str_eq(t_str(j, "checkpoint.path"), want);
    cJSON_Delete(j);
}
END_TEST

/* ---- write failures ------------------------------------------------------------------------- */

/* The report and checkpoint of a good run, then the same run again (--overwrite) where writing
 * fails: exit 1 before the first step, with the reason, the earlier files byte for byte as they
 * were, no temporary file left. prefix sets up the failure in the shell that runs lra-bench.
 * Returns NULL, or what went wrong (so that a caller can clean up before failing the test). */
static const char *write_failure(const char *dir, const char *prefix, const char *reason) {
    static char msg[8192];
    char r0[65], c0[65], r1[65], c1[65], path[512];
    const char *data = t_listops_data();
    if (t_run(msg, sizeof msg, RUN " --backend=full --steps=8 --out=%s/r.json", t_bench(), data, dir) != 0) return msg;
    snprintf(path, sizeof path, "%s/r.json", dir);
    sha_of(path, r0);
    snprintf(path, sizeof path, "%s/r.ckpt", dir);
    sha_of(path, c0);
    int rc = t_run(msg, sizeof msg, "%s " RUN " --backend=full --steps=8 --seed=1 --overwrite --out=%s/r.json", prefix,
                   t_bench(), data, dir);
    if (rc != 1 || !strstr(msg, "cannot write the") || !strstr(msg, reason) || !strstr(msg, "nothing was run") ||
        strstr(msg, "step "))
        return msg;
    snprintf(path, sizeof path, "%s/r.json", dir);
    sha_of(path, r1);
    snprintf(path, sizeof path, "%s/r.ckpt", dir);
    sha_of(path, c1);
    if (strcmp(r0, r1) != 0 || strcmp(c0, c1) != 0) return "the previous report or checkpoint changed";
    if (t_run(msg, sizeof msg, "ls %s | grep tmp", dir) != 1) return msg;
    return NULL;
}

START_TEST(test_file_size_limit) {
    /* SIGXFSZ ignored (as a shell's trap '' does), so writes past the limit fail with EFBIG */
    const char *bad = write_failure(t_tmpdir(), "trap '' XFSZ; ulimit -f 2;", "File too large");
    ck_assert_msg(bad == NULL, "%s", bad);
}
END_TEST

/* A real full filesystem: a 8 MiB tmpfs (mounting needs root; skipped with a message otherwise),
 * filled after a good run. Generated data fails whole too: no split, no .partial tree left. */
START_TEST(test_full_disk) {
    const char *dir = t_tmpdir();
    char mnt[256], fill[512], gen[8192], pf[8192];
    snprintf(mnt, sizeof mnt, "%s/m", dir);
    if (t_run(gen, sizeof gen, "mkdir -p %s && mount -t tmpfs -o size=8m lra-test %s", mnt, mnt) != 0) {
        fprintf(stderr, "test_full_disk: skipped, cannot mount a tmpfs here: %s\n", gen);
        return;
    }
    snprintf(fill, sizeof fill, "dd if=/dev/zero of=%s/fill bs=4k 2>/dev/null;", mnt);
    const char *bad = write_failure(mnt, fill, "No space left on device");
    int rc_gen = t_run(gen, sizeof gen, "%s generate --task=listops --out=%s/gen --sizes=300,50,40", t_bench(), mnt);
    int left_gen = t_run(NULL, 0, "ls -A %s/gen | grep -q .", mnt) == 0;
    int rc_pf = t_run(pf, sizeof pf, "%s generate --task=pathfinder --images=50 --out=%s/pf", t_bench(), mnt);
    int left_pf = t_run(NULL, 0, "ls -A %s/pf/pathfinder32 | grep -q .", mnt) == 0;
    t_run(NULL, 0, "umount %s", mnt);
    ck_assert_msg(bad == NULL, "%s", bad);
    ck_assert_msg(rc_gen == 1 && strstr(gen, "No space left on device") && !left_gen, "exit %d, files left %d: %s",
                  rc_gen, left_gen, gen);
    ck_assert_msg(rc_pf == 1 && strstr(pf, "No space left on device") && !left_pf, "exit %d, files left %d: %s", rc_pf,
                  left_pf, pf);
}
END_TEST

Suite *checkpoint_suite(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_atomic_file);
    tcase_add_test(tc, test_write_json_new);
    tcase_add_test(tc, test_format_round_trip);
    suite_add_tcase(s, tc);
    tc = tcase_create("resume");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_exact_resume_after_sigkill);
    tcase_add_test(tc, test_resume_does_not_generate_other_data);
    tcase_add_test(tc, test_recorded_paths_absolute);
    tcase_add_test(tc, test_exact_resume_after_sigint);
    tcase_add_test(tc, test_resume_refused);
    tcase_add_test(tc, test_resume_other_numerics);
    tcase_add_test(tc, test_file_size_limit);
    tcase_add_test(tc, test_full_disk);
    suite_add_tcase(s, tc);
    return s;
}
