/* run_tests.c - the one runner for every suite. Check runs each test in a forked child, so the
 * parent process must never enter an OpenMP parallel region (libgomp's pool does not survive
 * fork): every test does its numerical work inside the test function. */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <archive.h>
#include <archive_entry.h>

#include "../datasets/datadir.h"
#include "tests.h"

void t_fill(float *x, size_t n, float scale, uint64_t seed) {
    lra_rng r;
    lra_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * (2.0 * lra_rng_uniform(&r) - 1.0));
}

double t_close(const float *a, const float *b, size_t n, double atol, double rtol) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        double m = fabs(a[i]) > fabs(b[i]) ? fabs(a[i]) : fabs(b[i]);
        double r = d / (atol + rtol * m);
        if (!(r <= worst)) worst = r; /* NaN propagates as a failure */
    }
    return worst;
}

void t_gradcheck(t_loss_fn loss, void *ctx, float *x, const float *g, size_t n, int count, float h,
                 double atol, double rtol, const char *what) {
    lra_rng r;
    lra_rng_seed(&r, 77);
    const int all = n <= (size_t)count, total = all ? (int)n : count;
    int jumps = 0;
    for (int c = 0; c < total; c++) {
        size_t i = all ? (size_t)c : (size_t)lra_rng_range(&r, 0, (int64_t)n - 1);
        float keep = x[i];
        x[i] = keep + h;
        double lp = loss(ctx);
        x[i] = keep - h;
        double lm = loss(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        double tol = atol + rtol * fmax(fabs(num), fabs(g[i]));
        if (fabs(num - g[i]) <= tol) continue;
        /* Hard routing makes a loss piecewise smooth. Where a jump lies within +-h, the two
         * one-sided differences disagree by far more than curvature allows; the analytic gradient
         * must then match the side without the jump. */
        double l0 = loss(ctx), fwd = (lp - l0) / h, bwd = (l0 - lm) / h;
        double side_tol = 2 * atol + 3 * rtol * fmax(fabs(fwd), fabs(g[i])) + 3 * rtol * fmax(fabs(bwd), fabs(g[i]));
        int jump = fabs(fwd - bwd) > 10 * side_tol;
        int smooth_side = fabs(fwd - g[i]) <= side_tol || fabs(bwd - g[i]) <= side_tol;
        ck_assert_msg(jump && smooth_side, "%s[%zu]: analytic %.6g vs numeric %.6g (one-sided %.6g, %.6g)", what, i,
                      g[i], num, fwd, bwd);
        jumps++;
    }
    ck_assert_msg(jumps * 5 <= total, "%s: %d of %d sampled points sit on a discontinuity", what, jumps, total);
}

/* Every test's scratch directory lives under one root that main() makes and removes at the end
 * (kept when a test failed, or with LRA_KEEP_TEST_DIRS=1): the runner writes gigabytes a run. */
const char *t_tmpdir(void) {
    static char bufs[8][4200];
    static int next;
    char *b = bufs[next++ % 8];
    const char *root = getenv("LRA_TEST_ROOT");
    snprintf(b, sizeof bufs[0], "%s/t-XXXXXX", root && *root ? root : "/tmp");
    if (!mkdtemp(b)) { perror("mkdtemp"); abort(); }
    return b;
}

cJSON *t_load_json(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "no report at %s", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    ck_assert_msg(j != NULL, "%s is not JSON", path);
    return j;
}

/* Every loss and accuracy of a completed report: results and the curve without its times, as
 * JSON text. cJSON prints a number with 17 digits when 15 do not give it back, so equal text
 * means equal bits. Caller frees. */
char *t_report_numbers(const char *report) {
    cJSON *j = t_load_json(report);
    ck_assert_msg(strcmp(t_str(j, "status"), "completed") == 0, "%s: status %s", report, t_str(j, "status"));
    cJSON *out = cJSON_CreateObject(), *curve = cJSON_Duplicate(t_get(j, "curve"), 1), *pt;
    cJSON_ArrayForEach(pt, curve) { /* wall-clock fields: the only ones a resumed run may change */
        cJSON_DeleteItemFromObjectCaseSensitive(pt, "elapsed_s");
        cJSON_DeleteItemFromObjectCaseSensitive(pt, "train_s");
    }
    cJSON_AddItemToObject(out, "results", cJSON_Duplicate(t_get(j, "results"), 1));
    cJSON_AddItemToObject(out, "curve", curve);
    char *s = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    cJSON_Delete(j);
    return s;
}

cJSON *t_get(const cJSON *j, const char *dotted) {
    char key[256];
    snprintf(key, sizeof key, "%s", dotted);
    const cJSON *cur = j;
    for (char *save = NULL, *k = strtok_r(key, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        cur = cJSON_GetObjectItemCaseSensitive(cur, k);
        ck_assert_msg(cur != NULL, "report lacks %s", dotted);
    }
    return (cJSON *)cur;
}

double t_num(const cJSON *j, const char *dotted) {
    cJSON *x = t_get(j, dotted);
    ck_assert_msg(cJSON_IsNumber(x), "%s is not a number", dotted);
    return x->valuedouble;
}

const char *t_str(const cJSON *j, const char *dotted) {
    cJSON *x = t_get(j, dotted);
    ck_assert_msg(cJSON_IsString(x), "%s is not a string", dotted);
    return x->valuestring;
}

const char *t_listops_data(void) {
    static char dir[4200];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s", t_tmpdir());
        char out[1024];
        /* the official lengths, and the short trees that the ci profile reads (listops-short/) */
        int rc = t_run(out, sizeof out, "%1$s generate --task=listops --out=%2$s --sizes=300,50,40 && %1$s generate "
                       "--task=listops --lengths=20,256 --out=%2$s/listops-short/listops-1000 --sizes=300,50,40",
                       t_bench(), dir);
        ck_assert_msg(rc == 0, "generate failed: %s", out);
    }
    return dir;
}

int t_run(char *out, size_t n, const char *fmt, ...) {
    char body[8192], cmd[8300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    /* a group, so that every command of a list (a; b & c) has its stderr captured */
    snprintf(cmd, sizeof cmd, "{ %s\n} 2>&1", body);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t got = 0;
    char tmp[4096];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, p)) > 0) {
        if (out && got + 1 < n) {
            size_t take = k < n - 1 - got ? k : n - 1 - got;
            memcpy(out + got, tmp, take);
            got += take;
        }
    }
    if (out) out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

void t_at_repo_root(void) {
    ck_assert_msg(access("README.md", F_OK) == 0 && access("Makefile", F_OK) == 0,
                  "run the tests from the repository root (make test does)");
}

int t_backend_tested(const char *name) {
    const char *only = getenv("LRA_TEST_BACKEND");
    return !only || !*only || strcmp(only, name) == 0;
}

const char *t_bench(void) {
    /* absolute, so that tests may run it from another directory */
    static char abs[4096];
    if (!abs[0]) {
        const char *b = getenv("LRA_BENCH");
        b = b && *b ? b : "build/lra-bench";
        if (!realpath(b, abs)) snprintf(abs, sizeof abs, "%s", b);
    }
    return abs;
}

void t_tar_gz(const char *path, int n, const char *const *names, const char *const *data, const size_t *lens) {
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_ustar(a);
    ck_assert_msg(archive_write_open_filename(a, path) == ARCHIVE_OK, "%s: %s", path, archive_error_string(a));
    for (int i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(data[i]);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_size(e, (la_int64_t)len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        ck_assert_msg(archive_write_header(a, e) == ARCHIVE_OK, "%s: %s", names[i], archive_error_string(a));
        ck_assert(archive_write_data(a, data[i], len) == (la_ssize_t)len);
        archive_entry_free(e);
    }
    ck_assert(archive_write_close(a) == ARCHIVE_OK);
    archive_write_free(a);
    t_corpus("archive", path, 0, 0);
}

void t_write_file(const char *path, const void *data, size_t len) {
    char dir[4096], err[LRA_ERR_LEN];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        ck_assert_msg(lra_mkdirs(dir, err) == LRA_OK, "%s", err);
    }
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert(fwrite(data, 1, len, f) == len);
    fclose(f);
    t_corpus_classify(path);
}

void t_corpus(const char *kind, const char *path, size_t max_bytes, size_t strip) {
    const char *root = getenv("LRA_FUZZ_CORPUS");
    if (!root || !*root) return;
    static int count;
    char dir[4096], copy[4400];
    snprintf(dir, sizeof dir, "%s/%s", root, kind);
    if (lra_mkdirs(dir, NULL) != LRA_OK) return;
    const char *base = strrchr(path, '/');
    snprintf(copy, sizeof copy, "%s/%ld-%d-%s", dir, (long)getpid(), count++, base ? base + 1 : path);
    FILE *in = fopen(path, "rb"), *out = NULL;
    long size = -1;
    if (in && fseek(in, 0, SEEK_END) == 0) size = ftell(in);
    /* whole files past 256 KiB (CIFAR archives: 30 MB inflated) slow a fuzzer to a crawl */
    if (size >= 0 && (max_bytes || size <= 256 << 10)) out = fopen(copy, "wb");
    if (out) {
        rewind(in);
        size_t take = size > (long)strip ? (size_t)size - strip : 0;
        if (max_bytes && take > max_bytes) take = max_bytes;
        char buf[8192];
        for (size_t k; take && (k = fread(buf, 1, take < sizeof buf ? take : sizeof buf, in)) > 0; take -= k)
            fwrite(buf, 1, k, out);
        fclose(out);
    }
    if (in) fclose(in);
}

void t_corpus_classify(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
#define ENDS(x) (n >= sizeof(x) - 1 && strcmp(b + n - (sizeof(x) - 1), x) == 0)
    if (strncmp(b, "basic_", 6) == 0 && ENDS(".tsv")) t_corpus("listops", path, 0, 0);
    else if (strstr(b, "aan_pairs")) t_corpus("aan", path, 0, 0);
    else if (ENDS(".npy")) t_corpus("pathfinder_meta", path, 0, 0);
    else if (ENDS(".png")) t_corpus("png", path, 0, 0);
    else if (ENDS(".bin")) t_corpus("cifar", path, 10 * 3073, 0); /* ten records are plenty */
    else if (strstr(b, "-ubyte")) t_corpus("idx", path, 16 + 10 * 784, 0);
    else if (ENDS(".json")) t_corpus("report", path, 0, 0);
    else if (ENDS(".ckpt")) t_corpus("checkpoint", path, 0, 64); /* without its hash: fuzz_checkpoint appends one */
    else if (ENDS(".gz") || ENDS(".tgz")) t_corpus("archive", path, 0, 0);
#undef ENDS
}

/* Every suite, in the order they run; each name is its suite_create name (CK_RUN_SUITE's too). */
static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {{"layers", layers_suite},     {"gemm", gemm_suite},         {"model", model_suite},
              {"attention", attention_suite}, {"listops", listops_suite}, {"cli", cli_suite},
              {"compare", compare_suite},   {"text", text_suite},         {"retrieval", retrieval_suite},
              {"image", image_suite},       {"pathfinder", pathfinder_suite}, {"fetch", fetch_suite},
              {"checkpoint", checkpoint_suite}, {"mpi", mpi_suite},     {"claim", claim_suite},
              {"batch", batch_suite},       {"mqar", mqar_suite},         {"docs", docs_suite},
              {"guides", guides_suite}};

/* The next name of a comma-separated list at *p: its length, *p moved past it and its comma */
static size_t next_name(const char **p, const char **name) {
    const char *end = strchr(*p, ',');
    const size_t len = end ? (size_t)(end - *p) : strlen(*p);
    *name = *p;
    *p += len + (end ? 1 : 0);
    return len;
}

static int listed(const char *list, const char *name) {
    const char *item;
    for (const char *p = list; *p;) {
        const size_t len = next_name(&p, &item);
        if (len == strlen(name) && strncmp(item, name, len) == 0) return 1;
    }
    return 0;
}

/* Shards for running suites in processes side by side (the Makefile's asan does): LRA_TEST_SUITES
 * runs only the suites it lists, LRA_TEST_SKIP_SUITES all but those; both comma-separated. A
 * name that is no suite's is a usage error, so that a shard cannot lose a suite to a typo. */
static int suite_selected(const char *name) {
    const char *only = getenv("LRA_TEST_SUITES"), *skip = getenv("LRA_TEST_SKIP_SUITES");
    return (!only || !*only || listed(only, name)) && !(skip && listed(skip, name));
}

static void check_suite_names(const char *var) {
    const char *list = getenv(var), *item;
    for (const char *p = list ? list : ""; *p;) {
        const size_t len = next_name(&p, &item);
        int known = 0;
        for (size_t i = 0; i < sizeof suites / sizeof *suites; i++)
            known |= strlen(suites[i].name) == len && strncmp(item, suites[i].name, len) == 0;
        if (!known && len) {
            fprintf(stderr, "run_tests: %s names \"%.*s\", which is no suite\n", var, (int)len, item);
            exit(2);
        }
    }
}

int main(void) {
    /* Check's default of 4 s per test is a hang guard, not a speed target: on a shared 2-core
     * machine a small test can wait that long for a core. Every case gets T_HANG_GUARD_S (tests.h);
     * CK_DEFAULT_TIMEOUT still overrides the default, CK_TIMEOUT_MULTIPLIER scales them all. */
    char guard[16];
    snprintf(guard, sizeof guard, "%d", (int)T_HANG_GUARD_S);
    setenv("CK_DEFAULT_TIMEOUT", guard, 0);
    check_suite_names("LRA_TEST_SUITES");
    check_suite_names("LRA_TEST_SKIP_SUITES");
    SRunner *sr = NULL;
    for (size_t i = 0; i < sizeof suites / sizeof *suites; i++) {
        if (!suite_selected(suites[i].name)) continue;
        if (sr) srunner_add_suite(sr, suites[i].make());
        else sr = srunner_create(suites[i].make());
    }
    if (!sr) {
        fprintf(stderr, "run_tests: LRA_TEST_SUITES / LRA_TEST_SKIP_SUITES leave no suite to run\n");
        return 2;
    }
    /* the choice is this process's: a test that runs the runner again (test_guides.c) gets all */
    unsetenv("LRA_TEST_SUITES");
    unsetenv("LRA_TEST_SKIP_SUITES");
    const char *tmp = getenv("TMPDIR");
    char root[4096];
    snprintf(root, sizeof root, "%s/lra-tests-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) { perror("mkdtemp"); return EXIT_FAILURE; }
    setenv("LRA_TEST_ROOT", root, 1);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    const char *keep = getenv("LRA_KEEP_TEST_DIRS");
    if (failed || (keep && strcmp(keep, "0") != 0)) {
        fprintf(stderr, "test files kept in %s\n", root);
    } else {
        char err[LRA_ERR_LEN];
        if (lra_rmtree(root, err) != LRA_OK) fprintf(stderr, "%s\n", err);
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
