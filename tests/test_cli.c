/* test_cli.c - the lra-bench binary end to end: a ci-profile run whose report is checked field by
 * field, thread-count independence of a whole run, data generation said once, and bad input:
 * clear messages naming the culprit, exit status 2 for usage errors, no partial report. */
#define _DEFAULT_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../attention/attention.h"
#include "tests.h"

START_TEST(test_ci_run_report) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[8192], report[512];
    snprintf(report, sizeof report, "%s/sub/r.json", out);
    int rc = t_run(msg, sizeof msg, "%s --task=listops --backend=full --profile=ci --steps=30 --data-dir=%s --out=%s "
                   "--seed=3", t_bench(), data, report);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    cJSON *j = t_load_json(report);
    ck_assert_int_eq((int)t_num(j, "schema_version"), 1);
    ck_assert_str_eq(t_str(j, "status"), "completed");
    ck_assert_str_eq(t_str(j, "task"), "listops");
    ck_assert_str_eq(t_str(j, "backend"), "full");
    ck_assert(cJSON_IsObject(t_get(j, "backend_options")));
    ck_assert_str_eq(t_str(j, "profile"), "ci");
    ck_assert_int_eq((int)t_num(j, "seed"), 3);
    /* the resolved configuration: ListOps' ci size (tasks/listops.c) over the common ci values */
    ck_assert_int_eq((int)t_num(j, "config.layers"), 2);
    ck_assert_int_eq((int)t_num(j, "config.emb"), 64);
    ck_assert_int_eq((int)t_num(j, "config.batch"), 32);
    ck_assert_int_eq((int)t_num(j, "config.steps"), 30); /* --steps over its 1500 */
    ck_assert_int_eq((int)t_num(j, "config.max-len"), 256);
    ck_assert_str_eq(t_str(j, "config.batching"), "bucket");
    ck_assert_str_eq(t_str(j, "config.pool"), "cls");
    ck_assert_double_eq_tol(t_num(j, "config.lr"), 3e-3, 1e-12);
    ck_assert_str_eq(t_str(j, "config.dataset"), "short");
    /* data: where from (the short trees under DATA/listops-short), per-split sizes and checksums */
    ck_assert(strstr(t_str(j, "data.source"), data) && strstr(t_str(j, "data.source"), "/listops-short/"));
    ck_assert_str_eq(t_str(j, "data.dataset"), "short");
    ck_assert_int_eq((int)strlen(t_str(j, "data.checksum_sha256")), 64);
    ck_assert_int_eq((int)t_num(j, "data.splits.train.examples"), 300);
    ck_assert_int_eq((int)t_num(j, "data.splits.val.examples"), 50);
    ck_assert_int_eq((int)t_num(j, "data.splits.test.examples"), 40);
    /* each split's checksum is its file's sha256 */
    char sum[256];
    ck_assert_int_eq(t_run(sum, sizeof sum, "sha256sum %s", t_str(j, "data.splits.test.path")), 0);
    ck_assert_msg(strncmp(sum, t_str(j, "data.splits.test.sha256"), 64) == 0, "sha256sum says %.64s", sum);
    /* results: every val and test example evaluated (50 and 40: no dropped last batch of 32) */
    ck_assert_int_eq((int)t_num(j, "results.val.examples"), 50);
    ck_assert_int_eq((int)t_num(j, "results.test.examples"), 40);
    ck_assert_int_eq((int)t_num(j, "results.train.steps"), 30);
    ck_assert_int_eq((int)t_num(j, "results.train.examples"), 960);
    const char *acc[] = {"results.train.accuracy", "results.val.accuracy", "results.test.accuracy"};
    for (int i = 0; i < 3; i++) ck_assert(t_num(j, acc[i]) >= 0 && t_num(j, acc[i]) <= 1);
    ck_assert(t_num(j, "results.val.loss") > 0 && t_num(j, "results.val.loss") < 10);
    /* accuracy on 40 test examples is a multiple of 1/40 */
    double k = t_num(j, "results.test.accuracy") * 40;
    ck_assert_double_eq_tol(k, (double)(long)(k + 0.5), 1e-9);
    /* throughput, memory, parameters, machine, provenance */
    ck_assert_int_eq((int)t_num(j, "throughput.timed_steps"), 28);
    ck_assert(t_num(j, "throughput.train_tokens_per_s") > 0);
    ck_assert(t_num(j, "throughput.train_steps_per_s") > 0);
    ck_assert(t_num(j, "throughput.eval_tokens_per_s") > 0);
    ck_assert(t_num(j, "memory.peak_rss_bytes") > 1e6);
    ck_assert(t_num(j, "memory.activation_arena_bytes") > 0);
    ck_assert(t_num(j, "memory.attention_workspace_bytes") > 0);
    /* vocab 17, emb 64, CLS, two blocks (qkv 64, mlp 128), head mlp 128 -> 10 classes */
    long C = 64, Q = 64, M = 128;
    long expect = 17 * C + C + 2 * (2 * C + 3 * Q * C + C * Q + 2 * C + M * C + M + C * M + C) + 2 * C + M * C + M +
                  10 * M + 10;
    ck_assert_int_eq((long)t_num(j, "parameters.count"), expect);
    ck_assert_int_eq((long)t_num(j, "memory.parameter_arena_bytes"), 16 * expect);
    ck_assert(strlen(t_str(j, "machine.cpu")) > 0);
    ck_assert(t_num(j, "machine.cores") >= 1);
    ck_assert(strstr(t_str(j, "machine.cflags"), "-O") != NULL);
    ck_assert(strlen(t_str(j, "git_commit")) > 0);
    ck_assert_int_eq((int)strlen(t_str(j, "started_at")), 20);
    ck_assert(t_num(j, "wall_time_s") > 0);
    ck_assert(cJSON_IsArray(t_get(j, "curve")));
    cJSON_Delete(j);
    /* no temporary file left beside the report */
    ck_assert_int_eq(t_run(NULL, 0, "ls %s/sub | grep -q tmp", out), 1);
}
END_TEST

/* Every registered backend trains and evaluates end to end at the ci profile; its report holds
 * its resolved options and the diagnostics against full attention. */
START_TEST(test_every_backend_end_to_end) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[8192], path[512];
    for (int bi = 0; bi < lra_attn_count(); bi++) {
        if (!t_backend_tested(lra_attn_name_at(bi))) continue;
        snprintf(path, sizeof path, "%s/%s.json", out, lra_attn_name_at(bi));
        int rc = t_run(msg, sizeof msg, "%s --profile=ci --steps=4 --backend=%s --data-dir=%s --out=%s", t_bench(),
                       lra_attn_name_at(bi), data, path);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", lra_attn_name_at(bi), rc, msg);
        cJSON *j = t_load_json(path);
        ck_assert_str_eq(t_str(j, "status"), "completed");
        ck_assert_str_eq(t_str(j, "backend"), lra_attn_name_at(bi));
        ck_assert(cJSON_IsObject(t_get(j, "backend_options")));
        ck_assert_int_eq((int)t_num(j, "results.test.examples"), 40);
        double err = t_num(j, "attention_diagnostics.relative_l2_error_vs_full");
        ck_assert_msg(err >= 0 && err < 2, "%s: relative error %g", lra_attn_name_at(bi), err);
        if (strcmp(lra_attn_name_at(bi), "full") == 0) ck_assert_double_eq(err, 0.0);
        /* routing statistics: an object where a backend has them, and the routing backends have them */
        const cJSON *routing = cJSON_GetObjectItemCaseSensitive(t_get(j, "attention_diagnostics"), "routing");
        ck_assert(!routing || cJSON_IsObject(routing));
        if (!strcmp(lra_attn_name_at(bi), "moe") || !strcmp(lra_attn_name_at(bi), "mita")) ck_assert(routing != NULL);
        cJSON_Delete(j);
    }
}
END_TEST

/* --seeds runs once per seed into the default paths, and compare aggregates the reports */
START_TEST(test_seeds_and_compare) {
    const char *data = t_listops_data(), *dir = t_tmpdir();
    char msg[8192], bench[4096];
    ck_assert_ptr_nonnull(realpath(t_bench(), bench));
    int rc = t_run(msg, sizeof msg, "cd %s && %s --profile=ci --steps=3 --seeds=5,6 --data-dir=%s", dir, bench, data);
    ck_assert_msg(rc == 0, "%s", msg);
    /* the default names: seed, then a hash of the options, the same for both seeds */
    const char *s5 = strstr(msg, "results/listops/full-ci-seed5-"), *s6 = strstr(msg, "results/listops/full-ci-seed6-");
    ck_assert_msg(s5 && s6 && strncmp(s5 + 30, s6 + 30, 8) == 0 && strncmp(s5 + 38, ".json", 5) == 0, "%s", msg);
    rc = t_run(msg, sizeof msg, "cd %s && %s compare results/listops/*.json", dir, bench);
    ck_assert_msg(rc == 0 && strstr(msg, "(n=2)"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s --profile=ci --seeds=1,2 --out=%s/x.json --data-dir=%s", bench, dir, data);
    ck_assert_msg(rc == 2 && strstr(msg, "--out"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s --profile=ci --seeds=1,x --data-dir=%s", bench, data);
    ck_assert_msg(rc == 2 && strstr(msg, "1,x"), "%s", msg);
}
END_TEST

/* Same seed, 1 vs 2 threads: the same losses, to the last digit. */
START_TEST(test_threads_same_results) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[8192];
    double v[2][4];
    for (int t = 1; t <= 2; t++) {
        int rc = t_run(msg, sizeof msg, "%s --profile=ci --data-dir=%s --out=%s/t%d.json --threads=%d --steps=12",
                       t_bench(), data, out, t, t);
        ck_assert_msg(rc == 0, "%s", msg);
        char path[256];
        snprintf(path, sizeof path, "%s/t%d.json", out, t);
        cJSON *j = t_load_json(path);
        v[t - 1][0] = t_num(j, "results.train.loss");
        v[t - 1][1] = t_num(j, "results.val.loss");
        v[t - 1][2] = t_num(j, "results.test.loss");
        v[t - 1][3] = t_num(j, "results.test.accuracy");
        ck_assert_int_eq((int)t_num(j, "machine.threads"), t);
        cJSON_Delete(j);
    }
    for (int i = 0; i < 4; i++) ck_assert_msg(v[0][i] == v[1][i], "value %d: %.17g vs %.17g", i, v[0][i], v[1][i]);
}
END_TEST

/* --precision=bf16 where oneDNN has no bf16 instructions (capped at AVX-512 and at AVX2 here):
 * the run says in one line that bf16 is emulated and slower, and completes; at the CPU's own ISA
 * the line appears exactly when the CPU has no AVX512-BF16. The report records the precision. */
START_TEST(test_bf16_without_instructions) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[8192];
    const char *caps[3] = {"ONEDNN_MAX_CPU_ISA=AVX2", "ONEDNN_MAX_CPU_ISA=AVX512_CORE", ""};
    __builtin_cpu_init();
    for (int i = 0; i < 3; i++) {
        int rc = t_run(msg, sizeof msg, "%s %s --profile=ci --data-dir=%s --out=%s/b%d.json --steps=3 --precision=bf16",
                       caps[i], t_bench(), data, out, i);
        ck_assert_msg(rc == 0, "%s: %s", caps[i], msg);
        const int said = strstr(msg, "no bf16 instructions") != NULL;
        const int want = i < 2 || !(__builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16"));
        ck_assert_msg(said == want, "%s: the emulation note %s: %s", caps[i], said ? "printed" : "missing", msg);
        char path[256];
        snprintf(path, sizeof path, "%s/b%d.json", out, i);
        cJSON *j = t_load_json(path);
        ck_assert_str_eq(t_str(j, "config.precision"), "bf16");
        cJSON_Delete(j);
    }
}
END_TEST

/* With no data, the generator writes the splits once (the ci profile's short trees) and says so once. */
START_TEST(test_generates_once) {
    const char *cache = t_tmpdir(), *out = t_tmpdir();
    char msg[8192];
    int rc = t_run(msg, sizeof msg, "LRA_DATA_DIR=%s %s --profile=ci --steps=2 --out=%s/a.json", cache, t_bench(), out);
    ck_assert_msg(rc == 0, "%s", msg);
    ck_assert_msg(strstr(msg, "generating") != NULL, "no message about generating: %s", msg);
    char path[256];
    snprintf(path, sizeof path, "%s/listops-short/listops-1000/basic_train.tsv", cache);
    ck_assert(access(path, R_OK) == 0);
    rc = t_run(msg, sizeof msg, "LRA_DATA_DIR=%s %s --profile=ci --steps=2 --out=%s/b.json", cache, t_bench(), out);
    ck_assert_msg(rc == 0, "%s", msg);
    ck_assert_msg(strstr(msg, "generating") == NULL, "generated twice: %s", msg);
    snprintf(path, sizeof path, "%s/b.json", out);
    cJSON *j = t_load_json(path);
    ck_assert_int_eq((int)t_num(j, "data.splits.train.examples"), 96000);
    ck_assert_int_eq((int)t_num(j, "data.splits.val.examples"), 2000);
    ck_assert_int_eq((int)t_num(j, "results.test.examples"), 1000); /* the ci profile: a fixed 1000 of the 2000 */
    cJSON_Delete(j);
}
END_TEST

/* Nothing a new user does loses work: a run refuses another's report or checkpoint (saying what
 * it holds and how to go on), runs whose options differ get different default names, --overwrite
 * is explicit; a data directory that does not exist is an error, not created; a bare lra-bench
 * prints usage; every run ends with one line that says its result, terminal or not; an
 * interrupted --seeds says which seeds it did not run. */
START_TEST(test_first_hour) {
    const char *data = t_listops_data(), *dir = t_tmpdir();
    char msg[8192], bench[4096];
    ck_assert_ptr_nonnull(realpath(t_bench(), bench));
    int rc = t_run(msg, sizeof msg, "%s --profile=ci --steps=3 --data-dir=%s --out=%s/a.json", bench, data, dir);
    ck_assert_msg(rc == 0 && strstr(msg, "lra-bench: listops/full/ci seed 0: test ") && strstr(msg, "a.json"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s --profile=ci --steps=5 --data-dir=%s --out=%s/a.json", bench, data, dir);
    /* a completed run has nothing to resume: the message offers only what works */
    ck_assert_msg(rc == 2 && strstr(msg, "a.json exists (a completed run, 3 steps)") && !strstr(msg, "lra-bench resume") &&
                  strstr(msg, "--overwrite"), "exit %d: %s", rc, msg);
    /* a checkpoint alone is claimed too */
    rc = t_run(msg, sizeof msg, "%s --profile=ci --steps=3 --checkpoint-every=1 --data-dir=%s --out=%s/b.json && rm %s/b.json && "
               "%s --profile=ci --steps=3 --data-dir=%s --out=%s/b.json", bench, data, dir, dir, bench, data, dir);
    ck_assert_msg(rc == 2 && strstr(msg, "b.ckpt exists") && strstr(msg, "lra-bench resume"), "exit %d: %s", rc, msg);
    rc = t_run(msg, sizeof msg, "%s --profile=ci --steps=5 --overwrite --data-dir=%s --out=%s/a.json", bench, data, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    /* default names: a sweep over --lr writes two reports */
    rc = t_run(msg, sizeof msg, "cd %s && %s --profile=ci --steps=2 --lr=0.01 --data-dir=%s && %s --profile=ci --steps=2 "
               "--lr=0.02 --data-dir=%s && ls results/listops | grep -c 'full-ci-seed0-.*json'", dir, bench, data, bench, data);
    ck_assert_msg(rc == 0 && strstr(msg, "\n2\n"), "exit %d: %s", rc, msg);
    /* a named data directory must exist */
    rc = t_run(msg, sizeof msg, "%s --profile=ci --data-dir=%s/typo --out=%s/c.json; ls %s", bench, dir, dir, dir);
    ck_assert_msg(strstr(msg, "--data-dir") && strstr(msg, "typo is not a directory") && !strstr(msg, "\ntypo\n"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s --profile=ci --data-dir=%s/typo --out=%s/c.json", bench, dir, dir);
    ck_assert_int_eq(rc, 2);
    rc = t_run(msg, sizeof msg, "LRA_DATA_DIR=%s/typo2 %s --profile=ci --out=%s/c.json", dir, bench, dir);
    ck_assert_msg(rc == 2 && strstr(msg, "LRA_DATA_DIR"), "exit %d: %s", rc, msg);
    /* a bare command starts nothing */
    rc = t_run(msg, sizeof msg, "cd %s && %s </dev/null", dir, bench);
    ck_assert_msg(rc == 2 && strstr(msg, "usage:"), "exit %d: %s", rc, msg);
    /* a speed report's default name has no colons (some file systems and tools refuse them) */
    rc = t_run(msg, sizeof msg, "cd %s && %s speed --backend=full --lengths=64 --repeats=1 --warmup=0 >/dev/null 2>&1 && "
               "ls results/speed", dir, bench);
    ck_assert_msg(rc == 0 && strstr(msg, "speed-") && !strchr(msg, ':'), "exit %d: %s", rc, msg);
    /* an existing --out is refused before anything is measured, and kept; --overwrite replaces it */
    rc = t_run(msg, sizeof msg, "cd %s && echo mine > kept.json && %s speed --backend=full --lengths=64 --repeats=1 "
               "--warmup=0 --out=kept.json; echo \"exit $?\"; cat kept.json", dir, bench);
    ck_assert_msg(strstr(msg, "kept.json exists") && strstr(msg, "--overwrite") && strstr(msg, "exit 2\nmine") &&
                      !strstr(msg, "T=64 done"), "%s", msg);
    rc = t_run(msg, sizeof msg, "cd %s && %s speed --backend=full --lengths=64 --repeats=1 --warmup=0 --out=kept.json "
               "--overwrite >/dev/null 2>&1 && grep -c '\"kind\":[[:space:]]*\"speed\"' kept.json", dir, bench);
    ck_assert_msg(rc == 0 && !strcmp(msg, "1\n"), "exit %d: %s", rc, msg);
    /* --seeds stopped at its first seed says which it did not run */
    rc = t_run(msg, sizeof msg, "cd %s && LRA_TEST_POISON=1:1000 %s --profile=ci --steps=3 --seeds=7,8,9 --data-dir=%s", dir,
               bench, data);
    ck_assert_msg(rc == 1 && strstr(msg, "not run: seeds 8,9 (run them with the same options and --seeds=8,9, or put the command in a `lra-bench batch` file"),
                  "exit %d: %s", rc, msg);
}
END_TEST

START_TEST(test_usage_errors) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[8192];
    struct { const char *args; int code; const char *expect; } cases[] = {
        {"--profile=ci --bogus=1", 2, "--bogus"},
        {"--profile=ci --backend=nope", 2, "nope"},
        {"--profile=ci --task=nope", 2, "nope"},
        {"--profile=nope", 2, "nope"},
        {"--profile=ci --attn-opt=foo=1", 2, "foo"},
        {"--profile=ci --backend=mita --attn-opt=m=5000", 2, "m=5000"},
        {"--profile=ci --backend=mita --attn-opt=k=0", 2, "k=0"},
        {"--profile=ci --backend=moe --attn-opt=b=16,s=99", 2, "s=99"},
        {"--profile=ci --backend=agent --attn-opt=dwc=yes", 2, "dwc"},
        {"--profile=ci --layers=abc", 2, "abc"},
        {"--profile=ci --dropout=1.5", 2, "--dropout"},
        {"--profile=ci --heads=3", 2, "--heads"},
        {"--profile=ci --batching=sorted", 2, "sorted"},
        {"--profile=ci stray", 2, "stray"},
        {"frobnicate", 2, "frobnicate"},
        {"--profile=ci --max-len=9999999", 2, "out of range [1, 1048576]"},
        {"--profile=ci --retrieval-head=paper", 2, "listops has no dual encoder"},
        {"--profile=ci --dataset=fashion-mnist", 2, "listops's alternative datasets are short"},
        {"--task=mqar --profile=ci --dataset=short", 2, "mqar has no alternative datasets"},
        {"--profile=ci --seed=3 --seeds=1,2", 2, "--seed=3 and --seeds"},
        {"--profile=ci --backend=mita --attn-opt=m=8,,k=4", 2, "empty option"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (getenv("LRA_FUZZ_CORPUS")) { /* each case's arguments, a line each, seed fuzz_options */
            char path[512], lines[512];
            snprintf(path, sizeof path, "%s/args%zu", t_tmpdir(), i);
            snprintf(lines, sizeof lines, "%s", cases[i].args);
            for (char *c = lines; *c; c++) *c = *c == ' ' ? '\n' : *c;
            FILE *f = fopen(path, "w");
            if (f) { fputs(lines, f); fclose(f); t_corpus("options", path, 0, 0); }
        }
        int rc = t_run(msg, sizeof msg, "%s %s --data-dir=%s --out=%s/r%zu.json", t_bench(), cases[i].args, data, out, i);
        ck_assert_msg(rc == cases[i].code, "'%s': exit %d, expected %d (%s)", cases[i].args, rc, cases[i].code, msg);
        ck_assert_msg(strstr(msg, cases[i].expect) != NULL, "'%s': message '%s' does not name '%s'", cases[i].args, msg,
                      cases[i].expect);
    }
    /* no report from any of them */
    ck_assert_int_eq(t_run(NULL, 0, "ls %s | grep -q json", out), 1);
    /* --help tells the options and their defaults; --version works */
    ck_assert_int_eq(t_run(msg, sizeof msg, "%s --help", t_bench()), 0);
    ck_assert(strstr(msg, "--attn-opt") && strstr(msg, "--batching") && strstr(msg, "full"));
    ck_assert_int_eq(t_run(msg, sizeof msg, "%s --version", t_bench()), 0);
    /* every command has its own --help, and `help COMMAND` says the same */
    const char *cmds[] = {"resume", "generate", "fetch", "compare", "speed", "plot"};
    for (int i = 0; i < 6; i++) {
        int rc = t_run(msg, sizeof msg, "%s %s --help && %s help %s", t_bench(), cmds[i], t_bench(), cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "usage: lra-bench %s", cmds[i]);
        ck_assert_msg(rc == 0 && strstr(msg, want) && strstr(strstr(msg, want) + 1, want), "%s: %s", cmds[i], msg);
    }
    ck_assert_int_eq(t_run(msg, sizeof msg, "%s help nope", t_bench()), 2);
}
END_TEST

START_TEST(test_bad_data) {
    const char *dir = t_tmpdir(), *out = t_tmpdir();
    char msg[8192], path[512];
    /* a malformed line in an official-format file: file and line named, exit 1, no report */
    ck_assert_int_eq(t_run(msg, sizeof msg, "%s generate --out=%s --sizes=40,20,20", t_bench(), dir), 0);
    snprintf(path, sizeof path, "%s/basic_val.tsv", dir);
    FILE *f = fopen(path, "ab");
    fputs("( ( ( [MAX 2 ) 9 ) ] ) 9\r\n", f); /* no tab */
    fclose(f);
    int rc = t_run(msg, sizeof msg, "%s --profile=ci --dataset= --data-dir=%s --out=%s/r.json", t_bench(), dir, out);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(msg, "basic_val.tsv:22") != NULL, "message: %s", msg);
    /* a missing split among present ones: named */
    remove(path);
    rc = t_run(msg, sizeof msg, "%s --profile=ci --dataset= --data-dir=%s --out=%s/r.json", t_bench(), dir, out);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(msg, "basic_val.tsv") != NULL, "message: %s", msg);
    ck_assert_int_eq(t_run(NULL, 0, "ls %s | grep -q json", out), 1);
    /* an unwritable report path: a clear error, exit 1 */
    rc = t_run(msg, sizeof msg, "%s --profile=ci --steps=1 --data-dir=%s --out=/proc/lra-no/r.json", t_bench(), t_listops_data());
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(msg, "/proc/lra-no") != NULL, "message: %s", msg);
}
END_TEST

/* speed: each measurement's peak resident set is its own (the kernel's high-water mark is reset
 * before it): T = 64 measured after T = 4096 peaks far below it (33.5 MB of q, k, v, o and their
 * gradients at 4096, 0.5 MB at 64), where a peak of the sweep so far could not. */
START_TEST(test_speed_peak_rss_per_measurement) {
    const char *out = t_tmpdir();
    char msg[16384], path[512];
    snprintf(path, sizeof path, "%s/rss.json", out);
    int rc = t_run(msg, sizeof msg, "%s speed --backend=full --lengths=4096,64 --heads=4 --hs=64 --encoder=0 --repeats=1 "
                   "--warmup=0 --threads=1 --out=%s", t_bench(), path);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, "the attention layer alone (--encoder=0)") && !strstr(msg, "encoder 2 layers"), "%s", msg);
    cJSON *j = t_load_json(path), *e;
    double peak[2] = {0, 0};
    int i = 0;
    cJSON_ArrayForEach(e, t_get(j, "entries")) {
        cJSON *a = t_get(e, "attention");
        ck_assert_msg(cJSON_GetObjectItem(a, "peak_rss_bytes"), "no per-measurement peak (clear_refs not writable?)");
        peak[i++] = t_num(e, "attention.peak_rss_bytes");
    }
    ck_assert_int_eq(i, 2);
    (void)peak; /* unread under ASan */
#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator keeps freed memory (quarantine): the RSS never drops */
    ck_assert_msg(peak[1] < peak[0] - 16e6, "peak RSS at T=64 %.1f MB, at T=4096 %.1f MB", peak[1] / 1e6, peak[0] / 1e6);
#endif
    cJSON_Delete(j);
}
END_TEST

/* speed: out-of-memory marked from the plan (not run), n/a where options cannot work, flop
 * counts equal to the backends' analytic counts, one table row per backend */
START_TEST(test_speed_sweep) {
    const char *out = t_tmpdir();
    char msg[16384], path[512];
    snprintf(path, sizeof path, "%s/speed.json", out);
    int rc = t_run(msg, sizeof msg,
                   "%s speed --backend=full,agent,moe,mita --lengths=64,100000 --heads=1 --hs=8 --repeats=2 --warmup=0 "
                   "--mem-limit=20M --threads=1 --out=%s", t_bench(), path);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, "| full | ") && strstr(msg, "| mita | ") && strstr(msg, "OOM") && strstr(msg, "n/a"), "%s", msg);
    /* every table says how close to the machine's measured peak it is */
    ck_assert_msg(strstr(msg, "# machine peak (fp32 FMA on every thread, measured): ") &&
                  strstr(msg, "GFLOP/s (% of the measured peak") &&
                  strstr(msg, "## Encoder training step: GFLOP/s (% of the peaks: products at ") &&
                  strstr(msg, "products in fp32 through oneDNN at ISA "), "%s", msg);
    cJSON *j = t_load_json(path);
    ck_assert(t_num(j, "machine_peak_gflops") > 0);
    __builtin_cpu_init(); /* the bf16 peak is measured where the CPU has vdpbf16ps, else 0 */
    ck_assert((t_num(j, "machine_peak_bf16_gflops") > 0) == !!__builtin_cpu_supports("avx512bf16"));
    ck_assert_str_eq(t_str(j, "config.precision"), "fp32");
    ck_assert_str_eq(t_str(j, "kind"), "speed");
    cJSON *entries = t_get(j, "entries");
    ck_assert_int_eq(cJSON_GetArraySize(entries), 8);
    cJSON *e;
    int checked = 0;
    cJSON_ArrayForEach(e, entries) {
        const char *b = t_str(e, "backend");
        int T = (int)t_num(e, "length");
        if (T == 100000) {
            /* planned above 20 MB: marked, never run */
            ck_assert(cJSON_IsTrue(t_get(e, "attention.out_of_memory")));
            ck_assert(cJSON_GetObjectItem(t_get(e, "attention"), "forward_s") == NULL);
            ck_assert(cJSON_IsTrue(t_get(e, "encoder_step.out_of_memory")));
            ck_assert(t_num(e, "attention.planned_bytes") > 20 * 1048576.0);
        } else if (!strcmp(b, "agent") || !strcmp(b, "moe")) {
            ck_assert(cJSON_IsTrue(t_get(e, "attention.not_applicable"))); /* n=128 > 64; s=2 > 1 block */
        } else {
            ck_assert(t_num(e, "attention.forward_backward_s.median") > 0);
            ck_assert(t_num(e, "attention.forward_backward_s.q1") <= t_num(e, "attention.forward_backward_s.q3"));
            ck_assert(t_num(e, "encoder_step.train_step_s.median") > 0);
            lra_attn h;
            char err[LRA_ERR_LEN];
            lra_attn_shape sh = {1, 1, 64, 8};
            ck_assert_int_eq(lra_attn_create(&h, b, "", sh, 1, err), LRA_OK);
            double f, bw;
            lra_attn_flops(&h, sh, &f, &bw);
            ck_assert_double_eq(t_num(e, "attention.attention_flops_fwd"), f);
            ck_assert_double_eq(t_num(e, "attention.attention_flops_bwd"), bw);
            ck_assert_double_eq_tol(t_num(e, "attention.gflops_per_s"),
                                    (f + bw) / t_num(e, "attention.forward_backward_s.median") / 1e9, 1e-9);
            lra_attn_free(&h);
            checked++;
        }
    }
    ck_assert_int_eq(checked, 2);
    cJSON_Delete(j);
    rc = t_run(msg, sizeof msg, "%s speed --backend=nope", t_bench());
    ck_assert_msg(rc == 2 && strstr(msg, "nope"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s speed --lengths=0", t_bench());
    ck_assert_int_eq(rc, 2);
}
END_TEST

/* A NaN forced into one parameter (the LRA_TEST_POISON hook) stops the run: exit 1, a report
 * marked diverged naming the step and the tensor, and compare leaves it out of the tables. */
START_TEST(test_divergence_report) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[8192], path[512];
    snprintf(path, sizeof path, "%s/d.json", out);
    /* flat index 1640 of ListOps' ci model: past wte (17 x 64) and cls (64), ln1w, ln1b (64 each):
     * element 360 of block 0's qkv kernel */
    int rc = t_run(msg, sizeof msg, "LRA_TEST_POISON=3:1640 %s --profile=ci --steps=30 --data-dir=%s --out=%s", t_bench(),
                   data, path);
    ck_assert_msg(rc == 1 && strstr(msg, "step 3") && strstr(msg, "blocks.0.qkvw[360]"), "exit %d: %s", rc, msg);
    cJSON *j = t_load_json(path);
    ck_assert_str_eq(t_str(j, "status"), "diverged");
    ck_assert_msg(strstr(t_str(j, "diverged_at"), "step 3: parameter blocks.0.qkvw[360] is NaN"), "%s", t_str(j, "diverged_at"));
    cJSON_Delete(j);
    rc = t_run(msg, sizeof msg, "%s compare %s", t_bench(), path);
    ck_assert_msg(strstr(msg, "status 'diverged'") && !strstr(msg, "| full |"), "%s", msg);
}
END_TEST

/* SIGINT finishes the current step and writes a partial report marked interrupted (exit 1);
 * SIGTERM too; a second SIGINT exits at once (130). */
START_TEST(test_interrupt) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[8192], path[512];
    for (int sig = 0; sig < 2; sig++) {
        snprintf(path, sizeof path, "%s/i%d.json", out, sig);
        /* wait until training has started: the report says "running" after the first evaluation
         * (from the start it holds a placeholder that says "starting") */
        t_run(msg, sizeof msg,
                       "%s --profile=ci --steps=100000000 --eval-every=5 --data-dir=%s --out=%s 2>&1 & p=$!; "
                       "for i in $(seq 6000); do grep -q '\"running\"' %s 2>/dev/null && break; sleep 0.1; done; kill -%s $p; wait $p; echo rc=$?",
                       t_bench(), data, path, path, sig ? "TERM" : "INT");
        ck_assert_msg(strstr(msg, "rc=1") && strstr(msg, sig ? "SIGTERM" : "SIGINT"), "%s", msg);
        cJSON *j = t_load_json(path);
        ck_assert_str_eq(t_str(j, "status"), "interrupted");
        ck_assert(t_num(j, "results.train.steps") >= 5);
        cJSON_Delete(j);
    }
    /* the second SIGINT: the run says it is stopping, and the test hook holds it there, so the
     * second signal cannot come after the run has already finished its step and exited */
    t_run(msg, sizeof msg,
          "LRA_TEST_HOLD_ON_STOP=1 %s --profile=ci --steps=100000000 --eval-every=2 --data-dir=%s --out=%s/twice.json "
          "2>%s/twice.log & p=$!; for i in $(seq 6000); do grep -q '\"running\"' %s/twice.json 2>/dev/null && break; "
          "sleep 0.1; done; kill -INT $p; "
          "for i in $(seq 6000); do grep -q 'second Ctrl-C' %s/twice.log && break; sleep 0.05; done; kill -INT $p; "
          "wait $p; echo rc=$?", t_bench(), data, out, out, out, out);
    ck_assert_msg(strstr(msg, "rc=130"), "%s", msg);
}
END_TEST

/* No thread that computes can take SIGINT or SIGTERM: oneDNN's JIT matrix product points rsp
 * into the heap, and a handler run there corrupted it (stop.c). While a run trains, every one of
 * its threads blocks both except the watcher, which is the one thread waiting in sigwait (the
 * kernel opens the waited-for signals for the length of the wait), and the signal still stops
 * the run. Leaving the block out (the planted fault) fails: the main thread and OpenMP's take them. */
START_TEST(test_signals_blocked_in_every_thread) {
    const char *data = t_listops_data(), *out = t_tmpdir();
    char msg[16384];
    t_run(msg, sizeof msg,
          "%s --profile=ci --steps=100000000 --eval-every=5 --threads=2 --data-dir=%s --out=%s/b.json 2>%s/b.log & p=$!; "
          "for i in $(seq 6000); do grep -q '\"running\"' %s/b.json 2>/dev/null && break; sleep 0.1; done; "
          "for t in /proc/$p/task/*; do "
          "echo \"thread $(sed -n 's/^SigBlk:[[:space:]]*//p' $t/status) in $(cut -d' ' -f1 $t/syscall)\"; done; "
          "kill -INT $p; wait $p; echo rc=$?",
          t_bench(), data, out, out, out);
    const unsigned long long both = 1ull << (SIGINT - 1) | 1ull << (SIGTERM - 1);
    int threads = 0, waiting = 0;
    for (const char *at = strstr(msg, "thread "); at; at = strstr(at + 1, "thread ")) {
        char *end;
        const unsigned long long blocked = strtoull(at + 7, &end, 16);
        const long in = strncmp(end, " in ", 4) == 0 ? strtol(end + 4, NULL, 10) : -1;
        if (in == SYS_rt_sigtimedwait) waiting++;
        else ck_assert_msg((blocked & both) == both, "a thread takes SIGINT or SIGTERM (SigBlk %llx): %s", blocked, msg);
        threads++;
    }
    ck_assert_msg(threads >= 3 && waiting == 1, "%d threads, %d waiting for signals (main, an OpenMP worker and the "
                  "watcher expected): %s", threads, waiting, msg);
    ck_assert_msg(strstr(msg, "rc=1"), "%s", msg);
}
END_TEST

/* Ctrl-C while data is generated stops it (without the stop, these sets take 12 s and 250 s) and
 * leaves nothing: no split, no .partial tree, not even the --out folder it made. The test waits for the line saying generation began. */
START_TEST(test_interrupt_generation) {
    const char *dir = t_tmpdir();
    char msg[8192];
    const char *kinds[2] = {"listops", "pathfinder --images=200000"};
    for (int k = 0; k < 2; k++) {
        t_run(msg, sizeof msg,
              "%s generate --task=%s --out=%s/g%d 2>%s/g%d.log & p=$!; "
              "for i in $(seq 6000); do grep -q 'generating' %s/g%d.log && break; sleep 0.05; done; kill -INT $p; "
              "wait $p; echo rc=$?; cat %s/g%d.log; find %s/g%d -type f | head -3; find %s/g%d -name '*.partial'; "
              "test -e %s/g%d && echo the folder stays",
              t_bench(), kinds[k], dir, k, dir, k, dir, k, dir, k, dir, k, dir, k, dir, k);
        ck_assert_msg(strstr(msg, "rc=1") && strstr(msg, "interrupted while generating") && !strstr(msg, ".tsv") &&
                      !strstr(msg, ".png") && !strstr(msg, ".partial\n") && !strstr(msg, "the folder stays"),
                      "%s: %s", kinds[k], msg);
    }
}
END_TEST

Suite *cli_suite(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("end to end");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_ci_run_report);
    tcase_add_test(tc, test_threads_same_results);
    tcase_add_test(tc, test_bf16_without_instructions);
    tcase_add_test(tc, test_every_backend_end_to_end);
    tcase_add_test(tc, test_seeds_and_compare);
    tcase_add_test(tc, test_speed_sweep);
    tcase_add_test(tc, test_speed_peak_rss_per_measurement);
    tcase_add_test(tc, test_generates_once);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_usage_errors);
    tcase_add_test(tc, test_first_hour);
    tcase_add_test(tc, test_bad_data);
    tcase_add_test(tc, test_divergence_report);
    tcase_add_test(tc, test_interrupt);
    tcase_add_test(tc, test_interrupt_generation);
    tcase_add_test(tc, test_signals_blocked_in_every_thread);
    suite_add_tcase(s, tc);
    return s;
}
