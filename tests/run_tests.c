/* run_tests.c - the one runner for every suite. Check runs each test in a forked child, so the
 * parent process must never enter an OpenMP parallel region (libgomp's pool does not survive
 * fork): every test does its numerical work inside the test function. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

const char *t_tmpdir(void) {
    static char bufs[8][64];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 64, "/tmp/lra-test-XXXXXX");
    if (!mkdtemp(b)) { perror("mkdtemp"); abort(); }
    return b;
}

int t_run(char *out, size_t n, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
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

const char *t_bench(void) {
    const char *b = getenv("LRA_BENCH");
    return b && *b ? b : "build/lra-bench";
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
}

int main(void) {
    /* Check's default of 4 s per test is a hang guard, not a speed target: on a shared 2-core
     * machine a small test can wait that long for a core. CK_DEFAULT_TIMEOUT still overrides. */
    setenv("CK_DEFAULT_TIMEOUT", "60", 0);
    SRunner *sr = srunner_create(layers_suite());
    srunner_add_suite(sr, model_suite());
    srunner_add_suite(sr, attention_suite());
    srunner_add_suite(sr, listops_suite());
    srunner_add_suite(sr, cli_suite());
    srunner_add_suite(sr, compare_suite());
    srunner_add_suite(sr, text_suite());
    srunner_add_suite(sr, retrieval_suite());
    srunner_add_suite(sr, image_suite());
    srunner_add_suite(sr, pathfinder_suite());
    srunner_add_suite(sr, fetch_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
