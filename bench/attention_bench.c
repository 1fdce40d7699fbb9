/* attention_bench.c - forward and forward+backward time of one attention call per backend and
 * length, with the speed-up over full attention measured in the same run.
 *
 *   build/bench_attention [--backends=full,agent,moe,mita] [--lengths=1024,4096,16384]
 *                         [--batch=1] [--heads=4] [--hs=64] [--repeats=5] [--threads=N]
 *
 * Buffers are allocated and touched before timing; one untimed warm-up call pair precedes the
 * repeats; the table gives medians. The machine is shared and noisy: compare ratios within one
 * run. OPENBLAS_CORETYPE is printed, since Haswell forced on an AVX-512 CPU halves sgemm. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "../attention/attention.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static int parse_list(const char *s, char items[][32], int max) {
    int n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        snprintf(items[n++], 32, "%s", t);
    return n;
}

int main(int argc, char **argv) {
    char backends[8][32], lens[16][32];
    int nb = parse_list("full,agent,moe,mita", backends, 8), nl = parse_list("1024,4096,16384", lens, 16);
    int B = 1, NH = 4, hs = 64, repeats = 5, threads = omp_get_max_threads();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--backends=", 11) == 0) nb = parse_list(a + 11, backends, 8);
        else if (strncmp(a, "--lengths=", 10) == 0) nl = parse_list(a + 10, lens, 16);
        else if (strncmp(a, "--batch=", 8) == 0) B = atoi(a + 8);
        else if (strncmp(a, "--heads=", 8) == 0) NH = atoi(a + 8);
        else if (strncmp(a, "--hs=", 5) == 0) hs = atoi(a + 5);
        else if (strncmp(a, "--repeats=", 10) == 0) repeats = atoi(a + 10);
        else if (strncmp(a, "--threads=", 10) == 0) threads = atoi(a + 10);
        else {
            fprintf(stderr, "bench_attention: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (B < 1 || NH < 1 || hs < 1 || repeats < 1 || repeats > 100 || threads < 1) {
        fprintf(stderr, "bench_attention: sizes, repeats (1-100) and threads must be positive\n");
        return 2;
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("# attention call, batch %d, %d heads, head size %d, %d threads, median of %d; OpenBLAS %s, "
           "OPENBLAS_CORETYPE=%s\n",
           B, NH, hs, threads, repeats, openblas_get_corename(), ct ? ct : "(unset)");
    printf("%-8s %7s %12s %14s %10s %9s %12s\n", "backend", "T", "fwd ms", "fwd+bwd ms", "speed-up", "GFLOP/s", "workspace MB");
    for (int li = 0; li < nl; li++) {
        const int T = atoi(lens[li]);
        double full_ms = 0;
        for (int bi = 0; bi < nb; bi++) {
            lra_attn h;
            char err[LRA_ERR_LEN];
            lra_attn_shape s = {B, NH, T, hs};
            if (lra_attn_create(&h, backends[bi], "", s, threads, err) != LRA_OK) {
                fprintf(stderr, "bench_attention: %s\n", err);
                return 2;
            }
            const size_t n = (size_t)B * NH * T * hs, np = lra_attn_param_count(&h);
            float *buf = lra_alloc_touched(sizeof(float) * (8 * n + 2 * np + 2));
            void *ws = lra_alloc_touched(lra_attn_workspace_bytes(&h));
            uint8_t *mask = lra_alloc_touched((size_t)B * T);
            if (!buf || !ws || !mask) {
                fprintf(stderr, "bench_attention: out of memory at T=%d\n", T);
                return 1;
            }
            float *q = buf, *k = q + n, *v = k + n, *o = v + n, *dout = o + n, *dq = dout + n, *dk = dq + n,
                  *dv = dk + n, *params = dv + n, *dparams = params + np + 1;
            lra_rng r;
            lra_rng_seed(&r, 1);
            for (size_t i = 0; i < 5 * n; i++) q[i] = (float)(2 * lra_rng_uniform(&r) - 1);
            if (np && h.iface->init_params) h.iface->init_params(h.ctx, s, params, 2);
            memset(mask, 1, (size_t)B * T);
            lra_attn_args args = {mask, 0.0f, 0};
            double fwd[100], tot[100];
            for (int rep = -1; rep < repeats; rep++) { /* rep -1: warm-up */
                double t0 = lra_now();
                h.iface->forward(h.ctx, s, &args, o, ws, q, k, v, params);
                double t1 = lra_now();
                h.iface->backward(h.ctx, s, &args, dq, dk, dv, dparams, ws, dout, o, q, k, v, params);
                double t2 = lra_now();
                if (rep >= 0) { fwd[rep] = 1e3 * (t1 - t0); tot[rep] = 1e3 * (t2 - t0); }
            }
            double mf = median(fwd, repeats), mt = median(tot, repeats), ff, fb;
            h.iface->flops(h.ctx, s, &ff, &fb);
            if (strcmp(backends[bi], "full") == 0) full_ms = mt;
            char speed[32] = "-";
            if (full_ms > 0) snprintf(speed, sizeof speed, "%.1fx", full_ms / mt);
            printf("%-8s %7d %12.2f %14.2f %10s %9.1f %12.1f\n", backends[bi], T, mf, mt, speed,
                   (ff + fb) / (mt * 1e-3) / 1e9, lra_attn_workspace_bytes(&h) / 1048576.0);
            fflush(stdout);
            free(buf);
            free(ws);
            free(mask);
            lra_attn_free(&h);
        }
    }
    return 0;
}
