/* test_attention.c - every registered backend is gradient-checked against finite differences and
 * run under different thread counts with no new test code; `full` is also compared with a
 * deliberately naive reference (plain loops in double, the whole T x T matrix). */
#define _XOPEN_SOURCE 700 /* setenv, strdup */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../attention/attention.h"
#include "../attention/exp16.h"
#include "../attention/tile_bf16.h"
#include "../attention/transpose.h"
#include "../attention/vec.h"
#include "../harness/encoder/gemm.h"
#include "tests.h"

/* ---- the naive reference: o = softmax(q k^T / sqrt(d) + M) v, dropout on p -------------- */
static void naive_full(double *o, double *dq, double *dk, double *dv, const float *q, const float *k,
                       const float *v, const float *dout, const uint8_t *mask, int B, int NH, int T,
                       int hs, float rate, uint64_t seed) {
    double *p = malloc(sizeof(double) * T * T), *dp = malloc(sizeof(double) * T * T);
    const uint32_t thr = lra_dropout_threshold(rate);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const int bh = b * NH + h;
            const size_t off = (size_t)bh * T * hs;
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    double s = 0;
                    for (int d = 0; d < hs; d++) s += (double)q[off + i * hs + d] * k[off + j * hs + d];
                    p[i * T + j] = mask[b * T + j] ? s / sqrt((double)hs) : -INFINITY;
                    if (p[i * T + j] > mx) mx = p[i * T + j];
                }
                for (int j = 0; j < T; j++) sum += p[i * T + j] = mask[b * T + j] ? exp(p[i * T + j] - mx) : 0;
                for (int j = 0; j < T; j++) p[i * T + j] = sum > 0 ? p[i * T + j] / sum : 0;
            }
            /* dropped probabilities */
            double *pd = malloc(sizeof(double) * T * T);
            for (int i = 0; i < T; i++) {
                uint32_t rs = (uint32_t)lra_stream(seed, (uint64_t)bh, (uint64_t)i);
                for (int j = 0; j < T; j++)
                    pd[i * T + j] = thr ? (lra_keep(rs, (uint32_t)j, thr) ? p[i * T + j] / (1.0 - rate) : 0) : p[i * T + j];
            }
            for (int i = 0; i < T; i++)
                for (int d = 0; d < hs; d++) {
                    double s = 0;
                    for (int j = 0; j < T; j++) s += pd[i * T + j] * v[off + j * hs + d];
                    o[off + i * hs + d] = s;
                }
            if (!dq) { free(pd); continue; }
            /* backward: dPd = dO V^T; dP = dPd * z; dS = P (dP - rowsum(P dP)) */
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    double s = 0;
                    for (int d = 0; d < hs; d++) s += (double)dout[off + i * hs + d] * v[off + j * hs + d];
                    double z = p[i * T + j] > 0 ? pd[i * T + j] / p[i * T + j] : 0;
                    if (!thr) z = 1;
                    dp[i * T + j] = s * z;
                }
            for (int j = 0; j < T; j++)
                for (int d = 0; d < hs; d++) {
                    double s = 0;
                    for (int i = 0; i < T; i++) s += pd[i * T + j] * dout[off + i * hs + d];
                    dv[off + j * hs + d] = s;
                }
            for (int i = 0; i < T; i++) {
                double rs = 0;
                for (int j = 0; j < T; j++) rs += p[i * T + j] * dp[i * T + j];
                for (int j = 0; j < T; j++) dp[i * T + j] = p[i * T + j] * (dp[i * T + j] - rs) / sqrt((double)hs);
            }
            for (int i = 0; i < T; i++)
                for (int d = 0; d < hs; d++) {
                    double s = 0;
                    for (int j = 0; j < T; j++) s += dp[i * T + j] * k[off + j * hs + d];
                    dq[off + i * hs + d] = s;
                }
            for (int j = 0; j < T; j++)
                for (int d = 0; d < hs; d++) {
                    double s = 0;
                    for (int i = 0; i < T; i++) s += dp[i * T + j] * q[off + i * hs + d];
                    dk[off + j * hs + d] = s;
                }
            free(pd);
        }
    free(p);
    free(dp);
}

/* got (float) against a double-precision reference, to 1e-5 absolute + 1e-4 relative (fp32), or
 * to the bf16 tolerance of test_full_bf16_vs_naive, 4e-3 + 4e-3 (bf16) */
static void assert_matches_at(const float *got, const double *ref, size_t n, const char *what, lra_precision p) {
    float *tmp = malloc(n * sizeof(float));
    for (size_t j = 0; j < n; j++) tmp[j] = (float)ref[j];
    double w = p == LRA_BF16 ? t_close(got, tmp, n, 4e-3, 4e-3) : t_close(got, tmp, n, 1e-5, 1e-4);
    free(tmp);
    ck_assert_msg(w <= 1.0, "%s (%s): off by %.2f tolerances", what, p == LRA_BF16 ? "bf16" : "fp32", w);
}
static void assert_matches(const float *got, const double *ref, size_t n, const char *what) {
    assert_matches_at(got, ref, n, what, LRA_FP32);
}

/* ---- a fixture: random q, k, v, dout and a ragged mask --------------------------------- */
typedef struct {
    lra_attn_shape s;
    const char *opts;
    size_t n;
    float *q, *k, *v, *o, *dout, *dq, *dk, *dv, *params, *dparams;
    uint8_t *mask;
    void *ws, *scratch; /* the layer's saved part, the shared scratch */
    lra_attn h;
} fixture;

/* lengths: batch element b keeps len[b] valid keys; holes: also mask every 5th key of element 0 */
static void fx_init(fixture *f, const char *backend, const char *opts, lra_attn_shape s, const int *len,
                    int holes, int nthreads) {
    char err[LRA_ERR_LEN];
    memset(f, 0, sizeof *f);
    f->s = s;
    f->opts = opts;
    f->n = (size_t)s.B * s.NH * s.T * s.hs;
    lra_status st = lra_attn_create(&f->h, backend, opts, s, nthreads, err);
    ck_assert_msg(st == LRA_OK, "%s: %s", backend, err);
    float **bufs[] = {&f->q, &f->k, &f->v, &f->o, &f->dout, &f->dq, &f->dk, &f->dv};
    for (int i = 0; i < 8; i++) *bufs[i] = calloc(f->n, sizeof(float));
    t_fill(f->q, f->n, 1.0f, 1);
    t_fill(f->k, f->n, 1.0f, 2);
    t_fill(f->v, f->n, 1.0f, 3);
    t_fill(f->dout, f->n, 1.0f, 4);
    size_t np = lra_attn_param_count(&f->h);
    f->params = calloc(np + 1, sizeof(float));
    f->dparams = calloc(np + 1, sizeof(float));
    lra_attn_init_params(&f->h, f->params, 5);
    if (np) t_fill(f->params, np, 0.5f, 6); /* away from any special init, so gradients are generic */
    f->mask = calloc((size_t)s.B * s.T, 1);
    for (int b = 0; b < s.B; b++)
        for (int t = 0; t < s.T; t++) f->mask[b * s.T + t] = t < len[b] && !(holes && b == 0 && t % 5 == 3);
    /* the saved part and the scratch as two allocations of exactly their stated sizes, so that
     * AddressSanitizer (make asan) fails a backend that writes past either */
    const size_t saved = lra_attn_saved_bytes(&f->h), scratch = lra_attn_scratch_bytes(&f->h);
    f->ws = calloc(saved ? saved : 1, 1);
    f->scratch = calloc(scratch ? scratch : 1, 1);
    lra_attn_share_scratch(&f->h, f->scratch);
}

static void fx_free(fixture *f) {
    float *bufs[] = {f->q, f->k, f->v, f->o, f->dout, f->dq, f->dk, f->dv, f->params, f->dparams};
    for (int i = 0; i < 10; i++) free(bufs[i]);
    free(f->mask);
    free(f->ws);
    free(f->scratch);
    lra_attn_free(&f->h);
}

static void fx_fwd(fixture *f, const lra_attn_args *a) {
    lra_attn_forward(&f->h, f->s, a, f->o, f->ws, f->q, f->k, f->v, f->params);
}

static void fx_fwd_bwd(fixture *f, const lra_attn_args *a) {
    fx_fwd(f, a);
    memset(f->dq, 0, f->n * sizeof(float));
    memset(f->dk, 0, f->n * sizeof(float));
    memset(f->dv, 0, f->n * sizeof(float));
    memset(f->dparams, 0, lra_attn_param_count(&f->h) * sizeof(float));
    lra_attn_backward(&f->h, f->s, a, f->dq, f->dk, f->dv, f->dparams, f->ws, f->dout, f->o, f->q,
                         f->k, f->v, f->params);
}

/* f's forward output against the float64 reference ro in bf16, then in fp32 (callers read the
 * fp32 output after) */
static void assert_forward_matches(fixture *f, const double *ro, const char *what) {
    for (int p = LRA_BF16; p >= LRA_FP32; p--) {
        lra_attn_args a = {f->mask, 0.0f, 1, (lra_precision)p};
        lra_attn_forward(&f->h, f->s, &a, f->o, f->ws, f->q, f->k, f->v, f->params);
        assert_matches_at(f->o, ro, f->n, what, (lra_precision)p);
    }
}

/* backend (with opts) gives full attention's outputs and gradients on the same inputs at shape sh
 * (batch element b keeps len[b] keys, element 0 with holes) */
static void assert_equals_full_at(const char *backend, const char *opts, float dropout, lra_attn_shape sh,
                                  const int *len) {
    fixture m, f;
    fx_init(&m, backend, opts, sh, len, 1, 2);
    fx_init(&f, "full", "", sh, len, 1, 2);
    lra_attn_args am = {m.mask, dropout, 8, LRA_FP32}, af = {f.mask, dropout, 8, LRA_FP32};
    fx_fwd_bwd(&m, &am);
    fx_fwd_bwd(&f, &af);
    const float *x[4] = {m.o, m.dq, m.dk, m.dv}, *y[4] = {f.o, f.dq, f.dk, f.dv};
    const char *names[4] = {"o", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
        double w = t_close(x[i], y[i], m.n, 1e-6, 1e-5);
        ck_assert_msg(w <= 1.0, "%s '%s' (dropout %.2f) vs full: %s off by %.2f tolerances", backend, opts,
                      (double)dropout, names[i], w);
    }
    fx_free(&m);
    fx_free(&f);
}

static void assert_equals_full(const char *backend, const char *opts, float dropout) {
    const int len[2] = {150, 77};
    assert_equals_full_at(backend, opts, dropout, (lra_attn_shape){2, 2, 150, 16}, len);
}

static double fx_loss(fixture *f, const lra_attn_args *a) {
    fx_fwd(f, a);
    double l = 0;
    for (size_t i = 0; i < f->n; i++) l += (double)f->o[i] * f->dout[i];
    return l;
}

typedef struct { fixture *f; const lra_attn_args *a; } fd_ctx;
static double fd_loss(void *p) { fd_ctx *c = p; return fx_loss(c->f, c->a); }

/* 100 sampled elements of x against the analytic gradient g */
static void fd_check(fixture *f, const lra_attn_args *a, float *x, const float *g, size_t n, const char *what) {
    char name[128];
    snprintf(name, sizeof name, "%s '%s' %s (dropout %.2f)", lra_attn_name(&f->h), f->opts, what, (double)a->dropout);
    fd_ctx c = {f, a};
    t_gradcheck(fd_loss, &c, x, g, n, 100, 5e-3f, 5e-4, 2e-2, name);
}

/* option sets per backend that change the math; "" for backends not listed. At T = 70 the moe
 * sets cover: every block chosen (the default b=64, s=2), own forced or not, a short last block
 * (70 = 4*16 + 6, 70 = 10*7), one block per query. */
static const char *const *option_sets(const char *name) {
    static const char *const none[] = {"", NULL};
    static const char *const moe[] = {"", "b=16,s=3", "b=16,s=3,own=0", "b=7,s=4,own=0", "b=32,s=1", NULL};
    /* agent: fewer valid rows than agents (37 < 50, overlapping bins 56 -> 50), conv, biases */
    static const char *const agent[] = {"n=16", "n=16,dwc=1", "n=8,bias=1", "n=50,dwc=1,bias=1", "n=70", NULL};
    /* mita: two experts per query, the sqrt temperature, route-only with experts holding every
     * valid key, more landmarks than valid rows (50 > 37) with three experts per query */
    static const char *const mita[] = {"m=8,k=16", "m=8,k=16,s=2", "m=8,k=16,shared_scale=sqrt", "m=4,k=70,shared=0",
                                       "m=50,k=8,s=3", NULL};
    if (strcmp(name, "moe") == 0) return moe;
    if (strcmp(name, "mita") == 0) return mita;
    if (strcmp(name, "agent") == 0) return agent;
    return none;
}

static void gradcheck_backend(const char *name, float rate) {
    const int len[2] = {70, 37};
    lra_attn_shape s = {2, 2, 70, 8}; /* T = 70: not a multiple of any tile size used */
    for (const char *const *o = option_sets(name); *o; o++) {
        fixture f;
        fx_init(&f, name, *o, s, len, 1, 2);
        lra_attn_args a = {f.mask, rate, 1234, LRA_FP32};
        fx_fwd_bwd(&f, &a);
        float *dq = malloc(f.n * 4), *dk = malloc(f.n * 4), *dv = malloc(f.n * 4);
        memcpy(dq, f.dq, f.n * 4); memcpy(dk, f.dk, f.n * 4); memcpy(dv, f.dv, f.n * 4);
        fd_check(&f, &a, f.q, dq, f.n, "dq");
        fd_check(&f, &a, f.k, dk, f.n, "dk");
        fd_check(&f, &a, f.v, dv, f.n, "dv");
        size_t np = lra_attn_param_count(&f.h);
        if (np) {
            float *dp = malloc(np * 4);
            memcpy(dp, f.dparams, np * 4);
            fd_check(&f, &a, f.params, dp, np, "dparams");
            free(dp);
        }
        /* padded keys receive no gradient and do not move the output */
        for (int t = 37; t < 70; t++)
            for (int h = 0; h < 2; h++)
                for (int d = 0; d < 8; d++) {
                    size_t i = ((size_t)(1 * 2 + h) * 70 + t) * 8 + d;
                    ck_assert_msg(dk[i] == 0 && dv[i] == 0, "%s: padded key %d got a gradient", name, t);
                }
        free(dq); free(dk); free(dv);
        fx_free(&f);
    }
}

START_TEST(test_gradcheck_registry) {
    for (int bi = 0; bi < lra_attn_count(); bi++)
        if (t_backend_tested(lra_attn_name_at(bi))) gradcheck_backend(lra_attn_name_at(bi), 0.0f);
}
END_TEST

START_TEST(test_gradcheck_registry_dropout) {
    for (int bi = 0; bi < lra_attn_count(); bi++)
        if (t_backend_tested(lra_attn_name_at(bi))) gradcheck_backend(lra_attn_name_at(bi), 0.25f);
}
END_TEST

/* results must not depend on the thread count, in either precision */
START_TEST(test_threads_bitwise) {
    const int len[3] = {200, 131, 64};
    lra_attn_shape s = {3, 2, 200, 16};
    for (int bi = 0; bi < lra_attn_count(); bi++) {
        if (!t_backend_tested(lra_attn_name_at(bi))) continue;
        for (int p = LRA_FP32; p <= LRA_BF16; p++) {
            fixture f1, f2;
            fx_init(&f1, lra_attn_name_at(bi), "", s, len, 1, 1);
            fx_init(&f2, lra_attn_name_at(bi), "", s, len, 1, 2);
            lra_attn_args a1 = {f1.mask, 0.1f, 99, (lra_precision)p}, a2 = {f2.mask, 0.1f, 99, (lra_precision)p};
            omp_set_num_threads(1);
            fx_fwd_bwd(&f1, &a1);
            omp_set_num_threads(2);
            fx_fwd_bwd(&f2, &a2);
            const char *name = lra_attn_name_at(bi), *prec = lra_attn_precision(&f1.h, (lra_precision)p) == LRA_BF16 ? "bf16" : "fp32";
            ck_assert_msg(memcmp(f1.o, f2.o, f1.n * 4) == 0, "%s (%s): output differs with 1 vs 2 threads", name, prec);
            ck_assert_msg(memcmp(f1.dq, f2.dq, f1.n * 4) == 0 && memcmp(f1.dk, f2.dk, f1.n * 4) == 0 &&
                              memcmp(f1.dv, f2.dv, f1.n * 4) == 0,
                          "%s (%s): gradients differ with 1 vs 2 threads", name, prec);
            fx_free(&f1);
            fx_free(&f2);
        }
    }
}
END_TEST

/* full's outputs and gradients at precision p against the float64 reference; returns the worst
 * element in units of (atol + rtol |ref|) */
static double full_vs_naive_error(lra_attn_shape s, const int *len, int holes, float rate, lra_precision p,
                                  double atol, double rtol, fixture *keep) {
    fixture f;
    fx_init(&f, "full", "", s, len, holes, 2);
    lra_attn_args a = {f.mask, rate, 4321, p};
    fx_fwd_bwd(&f, &a);
    double *ro = calloc(f.n, 8), *rq = calloc(f.n, 8), *rk = calloc(f.n, 8), *rv = calloc(f.n, 8);
    naive_full(ro, rq, rk, rv, f.q, f.k, f.v, f.dout, f.mask, s.B, s.NH, s.T, s.hs, rate, 4321);
    const double *refs[4] = {ro, rq, rk, rv};
    const float *got[4] = {f.o, f.dq, f.dk, f.dv};
    float *tmp = malloc(f.n * sizeof(float));
    double worst = 0;
    for (int i = 0; i < 4; i++) {
        for (size_t j = 0; j < f.n; j++) tmp[j] = (float)refs[i][j];
        const double w = t_close(got[i], tmp, f.n, atol, rtol);
        worst = w > worst ? w : worst;
    }
    free(tmp);
    free(ro); free(rq); free(rk); free(rv);
    if (keep) *keep = f;
    else fx_free(&f);
    return worst;
}

static void compare_full_with_naive(lra_attn_shape s, const int *len, int holes, float rate) {
    const double w = full_vs_naive_error(s, len, holes, rate, LRA_FP32, 1e-5, 1e-4, NULL);
    ck_assert_msg(w <= 1.0, "full vs naive (T=%d, hs %d, dropout %.2f): off by %.2f tolerances", s.T, s.hs,
                  (double)rate, w);
}

START_TEST(test_full_vs_naive) {
    const int len1[2] = {150, 77};
    compare_full_with_naive((lra_attn_shape){2, 3, 150, 16}, len1, 1, 0.0f);
    compare_full_with_naive((lra_attn_shape){2, 3, 150, 16}, len1, 0, 0.3f);
    const int len2[1] = {5};
    compare_full_with_naive((lra_attn_shape){1, 1, 5, 4}, len2, 0, 0.0f);
    const int len3[1] = {129}; /* one past two tiles */
    compare_full_with_naive((lra_attn_shape){1, 2, 129, 64}, len3, 1, 0.0f);
    /* past full.c's 512-query chunks: three chunks, the last of 76 rows, a last key block of 12,
     * and whole key blocks masked in the second sequence */
    const int len4[2] = {1100, 700};
    compare_full_with_naive((lra_attn_shape){2, 1, 1100, 24}, len4, 1, 0.2f);
}
END_TEST

/* bf16 (tile_bf16.h): the documented tolerance against the float64 reference, 4e-3 absolute +
 * 4e-3 relative on inputs of unit scale (docs/manual.md, "Precision": bf16 keeps 8 significant
 * bits, a relative rounding of 2^-9 = 2e-3 per operand; the worst element of these cases used 23%
 * of it on an AMD EPYC Zen 4, and one missing scale factor 66 times it); where the CPU has bf16
 * hardware it must be the bf16 path (not fp32's bits, and outside fp32's tolerance somewhere), and
 * with ONEDNN_MAX_CPU_ISA below AVX512_CORE_BF16 it must be exactly the fp32 path. */
static void full_bf16_case(lra_attn_shape s, const int *len, int holes, float rate) {
    fixture b, f32;
    const double w = full_vs_naive_error(s, len, holes, rate, LRA_BF16, 4e-3, 4e-3, &b);
    ck_assert_msg(w <= 1.0, "full in bf16 vs naive (T=%d, hs %d, dropout %.2f): off by %.2f bf16 tolerances", s.T,
                  s.hs, (double)rate, w);
    full_vs_naive_error(s, len, holes, rate, LRA_FP32, 1e-5, 1e-4, &f32);
    const int native = lra_attn_precision(&b.h, LRA_BF16) == LRA_BF16, same = memcmp(b.o, f32.o, b.n * 4) == 0 &&
        memcmp(b.dq, f32.dq, b.n * 4) == 0 && memcmp(b.dk, f32.dk, b.n * 4) == 0 && memcmp(b.dv, f32.dv, b.n * 4) == 0;
    ck_assert_msg(native ? !same : same, "full in bf16 (T=%d): %s", s.T,
                  native ? "the same bits as fp32: the bf16 path did not run" : "not fp32's bits without bf16 hardware");
    if (native) {
        const double w32 = full_vs_naive_error(s, len, holes, rate, LRA_BF16, 1e-5, 1e-4, NULL);
        ck_assert_msg(w32 > 1.0, "full in bf16 (T=%d) within fp32's tolerance: its products are not bf16", s.T);
    }
    fx_free(&b);
    fx_free(&f32);
}

START_TEST(test_full_bf16_vs_naive) {
    char *cap = getenv("ONEDNN_MAX_CPU_ISA") ? strdup(getenv("ONEDNN_MAX_CPU_ISA")) : NULL;
    const int len1[2] = {150, 77}, len2[1] = {129}, len3[2] = {1100, 700}, len4[1] = {7};
    for (int capped = 0; capped < 2; capped++) {
        if (capped) setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1); /* the fp32 fallback */
        full_bf16_case((lra_attn_shape){2, 3, 150, 16}, len1, 1, 0.0f);
        full_bf16_case((lra_attn_shape){2, 3, 150, 16}, len1, 0, 0.3f);
        full_bf16_case((lra_attn_shape){1, 2, 129, 64}, len2, 1, 0.0f);   /* one past two tiles */
        full_bf16_case((lra_attn_shape){2, 1, 1100, 24}, len3, 1, 0.2f);  /* three chunks, odd tails */
        full_bf16_case((lra_attn_shape){1, 1, 7, 5}, len4, 0, 0.0f);      /* odd head size and length */
        full_bf16_case((lra_attn_shape){1, 2, 333, 32}, (const int[]){331}, 0, 0.1f); /* the repro head size */
    }
    if (cap) setenv("ONEDNN_MAX_CPU_ISA", cap, 1);
    else unsetenv("ONEDNN_MAX_CPU_ISA");
    free(cap);
}
END_TEST

/* Every backend in bf16 against its own fp32 results, which the tests above hold to the float64
 * references and finite differences: within the bf16 tolerance of full's test above (routing is
 * computed in fp32 in both, so it cannot flip). A backend that takes bf16, on a CPU that has it,
 * must not give fp32's bits, uncapped or capped at AVX512_CORE_AMX or AVX512_CORE_BF16. Capped at
 * AVX512_CORE_AMX it gives the uncapped bits (the same kernel); at AVX512_CORE_BF16 too, except
 * on a CPU with AMX, where vdpbf16ps replaces the tiles and the last bits may change
 * (test_tile_bf16_kernels holds both kernels to a float64 product). With ONEDNN_MAX_CPU_ISA=AVX2
 * every backend gives exactly fp32's bits. */
START_TEST(test_registry_bf16) {
    char *cap = getenv("ONEDNN_MAX_CPU_ISA") ? strdup(getenv("ONEDNN_MAX_CPU_ISA")) : NULL;
    const char *caps[4] = {NULL, "AVX512_CORE_AMX", "AVX512_CORE_BF16", "AVX2"};
    const int len[2] = {150, 77};
    const lra_attn_shape s = {2, 2, 150, 16};
    for (int bi = 0; bi < lra_attn_count(); bi++) {
        const char *name = lra_attn_name_at(bi);
        if (!t_backend_tested(name)) continue;
        float *first = NULL; /* the uncapped bf16 output */
        for (int ci = 0; ci < 4; ci++) {
            if (caps[ci]) setenv("ONEDNN_MAX_CPU_ISA", caps[ci], 1);
            else unsetenv("ONEDNN_MAX_CPU_ISA");
            fixture f32, b;
            fx_init(&f32, name, "", s, len, 1, 2);
            fx_init(&b, name, "", s, len, 1, 2);
            lra_attn_args a32 = {f32.mask, 0.1f, 7, LRA_FP32}, ab = {b.mask, 0.1f, 7, LRA_BF16};
            fx_fwd_bwd(&f32, &a32);
            fx_fwd_bwd(&b, &ab);
            const float *got[4] = {b.o, b.dq, b.dk, b.dv}, *want[4] = {f32.o, f32.dq, f32.dk, f32.dv};
            const char *what[4] = {"o", "dq", "dk", "dv"}, *setting = caps[ci] ? caps[ci] : "uncapped";
            int same = 1;
            for (int i = 0; i < 4; i++) {
                const double w = t_close(got[i], want[i], b.n, 4e-3, 4e-3);
                ck_assert_msg(w <= 1.0, "%s in bf16 (%s): %s off its fp32 results by %.2f bf16 tolerances", name,
                              setting, what[i], w);
                same = same && memcmp(got[i], want[i], b.n * 4) == 0;
            }
            const int native = lra_attn_precision(&b.h, LRA_BF16) == LRA_BF16;
            ck_assert_msg(native ? !same : same, "%s in bf16 (%s): %s", name, setting,
                          native ? "fp32's bits: its bf16 path did not run" : "not fp32's bits, without bf16 products");
            if (ci == 0) first = memcpy(malloc(b.n * 4), b.o, b.n * 4);
            if (ci == 1 || (ci == 2 && !lra_tile_amx_usable()))
                ck_assert_msg(memcmp(first, b.o, b.n * 4) == 0, "%s in bf16: other bits at %s than uncapped", name,
                              setting);
            fx_free(&f32);
            fx_free(&b);
        }
        free(first);
    }
    if (cap) setenv("ONEDNN_MAX_CPU_ISA", cap, 1);
    else unsetenv("ONEDNN_MAX_CPU_ISA");
    free(cap);
}
END_TEST

/* Both transposes (the AVX-512 one where the CPU has it) against the definition, at sizes that
 * leave partial 16 x 16 blocks on both sides, with a row stride past n whose padding stays as it was */
START_TEST(test_transpose_paths) {
    static const int sizes[][2] = {{1, 1}, {16, 16}, {15, 17}, {64, 32}, {33, 64}, {100, 3}, {2001, 32}};
    void (*const paths[2])(float *, int, const float *, int, int) = {lra_transpose_loop, lra_transpose_avx512};
    const int npaths = lra_transpose_has_avx512() ? 2 : 1;
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
        const int n = sizes[z][0], d = sizes[z][1], ldo = n + 5;
        float *X = malloc(sizeof(float) * (size_t)n * d), *out = malloc(sizeof(float) * (size_t)d * ldo);
        ck_assert(X && out);
        for (int i = 0; i < n * d; i++) X[i] = (float)i + 0.5f;
        for (int p = 0; p < npaths; p++) {
            for (int i = 0; i < d * ldo; i++) out[i] = -1.0f;
            paths[p](out, ldo, X, n, d);
            for (int c = 0; c < d; c++)
                for (int r = 0; r < ldo; r++)
                    ck_assert_msg(out[(size_t)c * ldo + r] == (r < n ? X[(size_t)r * d + c] : -1.0f),
                                  "transpose path %d, n=%d d=%d: out[%d][%d] = %g", p, n, d, c, r, out[(size_t)c * ldo + r]);
        }
        free(X);
        free(out);
    }
}
END_TEST

/* vec.h's row gather and scatter-add against their definitions, at the repro head size (32, the
 * unrolled path) and beside it (8, 33): exact, rows gathered in idx order, a repeated index
 * accumulated twice, and the rows no index names left as they were. */
START_TEST(test_row_gather_scatter) {
    static const int dims[] = {8, 32, 33};
    static const int32_t idx[] = {5, 0, 9, 5, 2}; /* 5 twice; rows 1, 3, 4, 6-8 untouched */
    enum { N = 5, ROWS = 10 };
    for (size_t z = 0; z < sizeof dims / sizeof *dims; z++) {
        const int d = dims[z];
        float X[ROWS * 33], in[N * 33], out[N * 33], want[ROWS * 33];
        for (int i = 0; i < ROWS * d; i++) X[i] = want[i] = 0.25f * (float)i - 3.0f;
        for (int i = 0; i < N * d; i++) in[i] = 1.0f / (float)(i + 3);
        lra_gather_rows(out, X, idx, N, d);
        for (int r = 0; r < N; r++)
            for (int j = 0; j < d; j++)
                ck_assert_msg(out[r * d + j] == X[idx[r] * d + j], "gather d=%d: out[%d][%d] = %g", d, r, j,
                              out[r * d + j]);
        for (int r = 0; r < N; r++)
            for (int j = 0; j < d; j++) want[idx[r] * d + j] += in[r * d + j];
        lra_scatter_add_rows(X, in, idx, N, d);
        for (int i = 0; i < ROWS * d; i++)
            ck_assert_msg(X[i] == want[i], "scatter-add d=%d: X[%d][%d] = %g, want %g", d, i / d, i % d, X[i], want[i]);
    }
}
END_TEST

/* Both bf16 tile kernels (vdpbf16ps, and AMX where the CPU and Linux give it) against a float64
 * product of the same bf16 operands, at shapes that leave partial tiles in M, N and the reduction
 * (AMX's 16 rows, 16 columns and 16 pairs; vdpbf16ps's 4-8 rows and 16-64 columns), with strides
 * past the widths whose padding must stay as it was, and with C accumulated and overwritten. Each
 * element's sum is fp32 over at most 2 K2 products: within 2 K2 2^-24 of sum |a b|, plus a
 * denormal's worth (both kernels flush them). */
/* exp16.h's exp against exp() in double, over [-110, 89] (step 1/64, plus the step's odd
 * neighbours) and at the values softmax meets: within 3 ulp where the result is normal, within 2
 * denormal steps below, exactly 0 under -104 (masked logits) and NaN for NaN. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void exp16_of(float *out, const float *x) {
    _mm512_storeu_ps(out, lra_exp16(_mm512_loadu_ps(x)));
}

START_TEST(test_exp16) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return; /* no bf16 path to serve */
    float x[16], got[16];
    int worst_ulp = 0;
    for (int i = 0; i < 199 * 64; i += 16) {
        for (int l = 0; l < 16; l++) x[l] = -110.0f + (float)(i + l) / 64.0f + (l & 1 ? 1.0f / 1024 : 0.0f);
        exp16_of(got, x);
        for (int l = 0; l < 16; l++) {
            if (x[l] > 88.7f) continue;
            const double want = exp((double)x[l]);
            if (x[l] < -104.0f) {
                ck_assert_msg(got[l] == 0.0f, "exp16(%.9g) = %g, want exactly 0", (double)x[l], (double)got[l]);
            } else if (want < 0x1p-126) {
                ck_assert_msg(fabs(got[l] - want) <= 2 * 0x1p-149, "exp16(%.9g) = %g, want %g", (double)x[l], (double)got[l], want);
            } else {
                const double ulp = (double)nextafterf((float)want, INFINITY) - (float)want;
                const int u = (int)ceil(fabs(got[l] - want) / ulp);
                worst_ulp = u > worst_ulp ? u : worst_ulp;
                ck_assert_msg(u <= 3, "exp16(%.9g) = %.9g, want %.9g (%d ulp)", (double)x[l], (double)got[l], want, u);
            }
        }
    }
    const float special[16] = {0.0f, -1e30f, NAN, -0.0f, 1.0f, -1.0f, 0.5f, -87.0f, -104.5f, 88.0f, 1e-8f, -1e-8f, 2.0f, -2.0f, 10.0f, -10.0f};
    exp16_of(got, special);
    ck_assert(got[0] == 1.0f && got[1] == 0.0f && isnan(got[2]) && got[3] == 1.0f && got[8] == 0.0f);
    ck_assert_msg(worst_ulp >= 1, "exp16 matched exp to the last bit everywhere: the test does not measure it");
}
END_TEST

/* exp16.h's row helpers, as the bf16 softmax paths call them, against double: lra_max16 (exact),
 * lra_exp_row16 out of place and in place, with a scale, a shift and a key mask, at lengths that
 * leave partial 16-lane steps (nothing written past n), and the two online steps against the
 * softmax of the whole row in double (the output row's accumulator rescaled the same way). */
START_TEST(test_exp16_rows) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return; /* no bf16 path to serve */
    enum { NMAX = 75 };
    const int lens[] = {1, 15, 16, 17, 40, 75};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const int n = lens[li];
        float in[NMAX + 1], out[NMAX + 1], row[NMAX];
        uint8_t mask[NMAX];
        double mx = -1e300;
        for (int j = 0; j < n; j++) {
            in[j] = (float)(((j * 7919 + n * 104729) % 2000) - 1000) / 97.0f;
            mask[j] = (j % 5) != 3;
            mx = in[j] > mx ? in[j] : mx;
        }
        in[n] = out[n] = 12345.0f; /* a sentinel: the helpers must leave it */
        ck_assert_msg(lra_max16(in, n, -1e30f) == (float)mx, "lra_max16 at n=%d: %g, want %g", n,
                      (double)lra_max16(in, n, -1e30f), mx);
        ck_assert(lra_max16(in, n, 1e9f) == 1e9f);
        const float sc = 0.75f, sh = (float)mx * 0.75f;
        const float sum = lra_exp_row16(out, in, n, sc, sh, mask);
        double want_sum = 0;
        for (int j = 0; j < n; j++) {
            const double want = mask[j] ? exp((double)in[j] * sc - sh) : 0.0;
            want_sum += want;
            ck_assert_msg(fabs(out[j] - want) <= 1e-6 * want + 1e-30, "lra_exp_row16 n=%d [%d] = %.9g, want %.9g", n, j,
                          (double)out[j], want);
        }
        ck_assert_msg(fabs(sum - want_sum) <= 1e-6 * want_sum, "lra_exp_row16 n=%d sum %.9g, want %.9g", n, (double)sum,
                      want_sum);
        ck_assert_msg(out[n] == 12345.0f && in[n] == 12345.0f, "lra_exp_row16 wrote past n=%d", n);
        memcpy(row, in, sizeof(float) * n);
        lra_exp_row16(row, row, n, 1.0f, (float)mx, NULL); /* in place */
        for (int j = 0; j < n; j++)
            ck_assert_msg(fabs(row[j] - exp((double)in[j] - mx)) <= 1e-6, "in place n=%d [%d]", n, j);
        /* the online steps over the row in two tiles, the accumulator holding 1 per unit of weight */
        for (int form = 0; form < 2; form++) {
            float m = -1e30f, s = 0.0f, acc[2] = {0.0f, 0.0f};
            const int cut = n / 2;
            for (int part = 0; part < 2; part++) {
                const int j0 = part ? cut : 0, nj = part ? n - cut : cut;
                if (nj == 0) continue;
                memcpy(row, in + j0, sizeof(float) * nj);
                if (form) lra_online_softmax_rise16(row, nj, &m, &s, acc, 2);
                else lra_online_softmax_tile16(row, nj, &m, &s, acc, 2);
                for (int j = 0; j < nj; j++) acc[0] += row[j], acc[1] += row[j] * (float)(j0 + j);
            }
            double z = 0, zi = 0;
            for (int j = 0; j < n; j++) z += exp((double)in[j] - mx), zi += exp((double)in[j] - mx) * j;
            ck_assert_msg(m == (float)mx && fabs(s - z) <= 1e-5 * z, "online step %d at n=%d: max %g sum %.9g, want %g %.9g",
                          form, n, (double)m, (double)s, mx, z);
            ck_assert_msg(fabs(acc[0] / s - 1.0) <= 1e-5 && fabs(acc[1] / s - zi / z) <= 1e-4 * (1 + zi / z),
                          "online step %d at n=%d: weighted mean %.9g, want %.9g", form, n, (double)(acc[1] / s), zi / z);
        }
    }
}
END_TEST

static float bf16_value(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* n bf16 values: t_fill's uniform floats with their low half cut off */
static uint16_t *bf16_fill(size_t n, uint64_t seed) {
    float *f = malloc(4 * n);
    uint16_t *b = malloc(2 * n);
    ck_assert(f && b);
    t_fill(f, n, 1.0f, seed);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &f[i], sizeof u);
        b[i] = (uint16_t)(u >> 16);
    }
    free(f);
    return b;
}

/* lra_tile_gemm_b16 and _a16 (an operand rounded once by the caller) give lra_tile_gemm's bits:
 * B in pairs from rows and from columns, A rounded with alpha, plain and transposed, odd K,
 * accumulating and not */
START_TEST(test_tile_gemm_prerounded) {
    if (!lra_tile_bf16_native()) return; /* the fp32 path has no rounded operands */
    const lra_tile_isa isa = lra_tile_bf16_isa();
    enum { M = 37, N = 21, K = 19, LD = 40 };
    float *A = malloc(4 * LD * LD), *B = malloc(4 * LD * LD), *C0 = malloc(4 * M * N), *C1 = malloc(4 * M * N);
    uint16_t *work = malloc(2 * lra_tile_gemm_work(M, N, K)), *pre = malloc(2 * (size_t)(LD + 1) * (LD + 1));
    ck_assert(A && B && C0 && C1 && work && pre);
    t_fill(A, LD * LD, 1.0f, 61);
    t_fill(B, LD * LD, 1.0f, 62);
    const float alpha = 0.37f;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int beta = 0; beta < 2; beta++) {
                t_fill(C0, M * N, 1.0f, 63);
                memcpy(C1, C0, 4 * M * N);
                lra_tile_gemm(isa, work, ta, tb, M, N, K, alpha, A, LD, B, LD, (float)beta, C0, N);
                if (tb) lra_bf16_pairs_cols(pre, N, B, LD, N, K);
                else lra_bf16_pairs_rows(pre, N, B, LD, K, N, 1.0f);
                lra_tile_gemm_b16(isa, work, ta, M, N, K, alpha, A, LD, pre, (float)beta, C1, N);
                ck_assert_msg(memcmp(C0, C1, 4 * M * N) == 0, "lra_tile_gemm_b16 ta=%d tb=%d beta=%d: other bits", ta, tb, beta);
                if (tb) continue; /* _a16 takes B as stored */
                t_fill(C0, M * N, 1.0f, 63);
                t_fill(C1, M * N, 1.0f, 63);
                lra_tile_gemm(isa, work, ta, 0, M, N, K, alpha, A, LD, B, LD, (float)beta, C0, N);
                if (ta) lra_bf16_rows_t(pre, lra_bf16_even(K), A, LD, K, M, alpha);
                else lra_bf16_rows(pre, lra_bf16_even(K), A, LD, M, K, alpha);
                lra_tile_gemm_a16(isa, work, M, N, K, pre, B, LD, (float)beta, C1, N);
                ck_assert_msg(memcmp(C0, C1, 4 * M * N) == 0, "lra_tile_gemm_a16 ta=%d beta=%d: other bits", ta, beta);
            }
    free(A); free(B); free(C0); free(C1); free(work); free(pre);
}
END_TEST

/* Whatever a thread's tiles hold when lra_tile_amx starts - nothing (released), another
 * configuration, or oneDNN's after one of its AMX products - the product is the same bits */
__attribute__((target("amx-tile"))) static void tiles_release(void) { _tile_release(); }
__attribute__((target("amx-tile"))) static void tiles_foreign(void) {
    static const struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } half = {
        .palette = 1, .colsb = {32, 32, 32, 32, 32, 32, 32, 32}, .rows = {8, 8, 8, 8, 8, 8, 8, 8}};
    _tile_loadconfig(&half);
}

START_TEST(test_tile_amx_any_prior_state) {
    if (!lra_tile_amx_usable() || lra_tile_bf16_isa() != LRA_TILE_AMX) return;
    enum { M = 70, N = 45, K2 = 40 };
    uint16_t *A = bf16_fill((size_t)M * 2 * K2, 11), *Bp = bf16_fill((size_t)K2 * N * 2, 12);
    float *C0 = malloc(4 * M * N), *C = malloc(4 * M * N), *G = malloc(4 * 512 * 64);
    uint16_t *GA = bf16_fill(512 * 64, 13), *GB = bf16_fill(64 * 64, 14);
    ck_assert(C0 && C && G);
    lra_tile_amx(M, N, K2, A, 2 * K2, Bp, N, C0, N, 0);
    for (int prior = 0; prior < 4; prior++) {
        if (prior == 0) tiles_release();
        if (prior == 1) tiles_foreign();
        if (prior == 2) lra_gemm_bf16(0, 0, 512, 64, 64, GA, 64, GB, 64, 0.0f, G, 64); /* oneDNN's AMX kernel */
        /* prior 3: our own configuration, left by the call before */
        memset(C, 0, 4 * M * N);
        lra_tile_amx(M, N, K2, A, 2 * K2, Bp, N, C, N, 0);
        ck_assert_msg(memcmp(C, C0, 4 * M * N) == 0, "lra_tile_amx after prior tile state %d: other bits", prior);
    }
    free(A); free(Bp); free(C0); free(C); free(G); free(GA); free(GB);
}
END_TEST

START_TEST(test_tile_bf16_kernels) {
    static const int shapes[][3] = {{1, 1, 1},    {16, 16, 16},  {17, 33, 17}, {128, 64, 16},
                                    {32, 64, 64}, {15, 100, 3},  {40, 7, 40},  {64, 31, 9}};
    void (*const kernels[2])(int, int, int, const uint16_t *, int, const uint16_t *, int, float *, int, int) = {
        lra_tile_vdp, lra_tile_amx};
    if (!lra_tile_bf16_native()) return; /* no bf16 hardware: no kernel to run (the backends run fp32) */
    const int nkernels = lra_tile_amx_usable() ? 2 : 1;
    for (size_t z = 0; z < sizeof shapes / sizeof *shapes; z++) {
        const int M = shapes[z][0], N = shapes[z][1], K2 = shapes[z][2], lda = 2 * K2 + 6, ldb = N + 3, ldc = N + 5;
        uint16_t *A = bf16_fill((size_t)M * lda, 3 + z), *Bp = bf16_fill((size_t)K2 * ldb * 2, 50 + z);
        float *C0 = malloc(4 * (size_t)M * ldc), *C = malloc(4 * (size_t)M * ldc);
        ck_assert(C0 && C);
        t_fill(C0, (size_t)M * ldc, 1.0f, 90 + z);
        for (int kind = 0; kind < nkernels; kind++)
            for (int acc = 0; acc < 2; acc++) {
                memcpy(C, C0, 4 * (size_t)M * ldc);
                kernels[kind](M, N, K2, A, lda, Bp, ldb, C, ldc, acc);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < ldc; j++) {
                        const float got = C[(size_t)i * ldc + j];
                        if (j >= N) {
                            ck_assert_msg(got == C0[(size_t)i * ldc + j], "%s kernel, %d x %d x %d: C[%d][%d] past N written",
                                          kind ? "amx" : "vdp", M, N, K2, i, j);
                            continue;
                        }
                        double want = acc ? C0[(size_t)i * ldc + j] : 0.0, mag = fabs(want);
                        for (int kk = 0; kk < 2 * K2; kk++) {
                            const double p = (double)bf16_value(A[(size_t)i * lda + kk]) *
                                             bf16_value(Bp[((size_t)(kk / 2) * ldb + j) * 2 + kk % 2]);
                            want += p;
                            mag += fabs(p);
                        }
                        ck_assert_msg(fabs(got - want) <= (2.0 * K2 + 1) * 0x1p-24 * mag + 1e-37,
                                      "%s kernel, %d x %d x %d (accumulate %d): C[%d][%d] = %.9g, want %.9g",
                                      kind ? "amx" : "vdp", M, N, K2, acc, i, j, (double)got, want);
                    }
            }
        free(A);
        free(Bp);
        free(C0);
        free(C);
    }
}
END_TEST

START_TEST(test_full_no_quadratic_workspace) {
    lra_attn h;
    char err[LRA_ERR_LEN];
    lra_attn_shape s = {1, 4, 16384, 64};
    ck_assert_int_eq(lra_attn_create(&h, "full", "", s, 2, err), LRA_OK);
    size_t ws = lra_attn_workspace_bytes(&h);
    ck_assert_msg(ws < (size_t)16384 * 16384 * sizeof(float) / 16, "full needs %zu bytes at T=16384", ws);
    lra_attn_free(&h);
}
END_TEST

START_TEST(test_unknown_option_and_backend) {
    char err[LRA_ERR_LEN];
    lra_attn h;
    lra_attn_shape s = {1, 1, 16, 8};
    for (int bi = 0; bi < lra_attn_count(); bi++) {
        if (!t_backend_tested(lra_attn_name_at(bi))) continue;
        ck_assert_int_eq(lra_attn_create(&h, lra_attn_name_at(bi), "nonsense_key=3", s, 1, err), LRA_ERR_USAGE);
        ck_assert_msg(strstr(err, "nonsense_key"), "message does not name the option: %s", err);
        ck_assert_int_eq(lra_attn_create(&h, lra_attn_name_at(bi), "novalue", s, 1, err), LRA_ERR_USAGE);
    }
    ck_assert_int_eq(lra_attn_create(&h, "nope", "", s, 1, err), LRA_ERR_USAGE);
    ck_assert_msg(strstr(err, "nope") && strstr(err, "full"), "message: %s", err);
}
END_TEST

/* ---- agent: a naive reference (double, plain loops) ------------------------------------- */
static void naive_agent(double *o, const float *q, const float *k, const float *v, const uint8_t *mask, int B,
                        int NH, int T, int hs, int n, const float *dwc, const float *B1, const float *B2, int Tmax) {
    double *A = calloc((size_t)n * hs, 8), *VA = calloc((size_t)n * hs, 8), *w = calloc((size_t)T + n, 8);
    int *rows = calloc((size_t)T, sizeof(int));
    const double sc = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const size_t off = ((size_t)b * NH + h) * T * hs;
            int L = 0;
            for (int t = 0; t < T; t++)
                if (mask[b * T + t]) rows[L++] = t;
            int m = n < L ? n : L;
            for (int j = 0; j < m; j++) {
                int lo = (int)floor((double)j * L / m), hi = (int)ceil((double)(j + 1) * L / m);
                for (int d = 0; d < hs; d++) {
                    double acc = 0;
                    for (int r = lo; r < hi; r++) acc += q[off + rows[r] * hs + d];
                    A[j * hs + d] = acc / (hi - lo);
                }
            }
            for (int j = 0; j < m; j++) { /* aggregation */
                double mx = -INFINITY, sum = 0;
                for (int t = 0; t < T; t++) {
                    double l = 0;
                    for (int d = 0; d < hs; d++) l += A[j * hs + d] * k[off + t * hs + d];
                    l = l * sc + (B1 ? B1[((size_t)h * n + j) * Tmax + t] : 0);
                    w[t] = mask[b * T + t] ? l : -INFINITY;
                    mx = fmax(mx, w[t]);
                }
                for (int t = 0; t < T; t++) sum += w[t] = w[t] == -INFINITY ? 0 : exp(w[t] - mx);
                for (int d = 0; d < hs; d++) {
                    double acc = 0;
                    for (int t = 0; t < T; t++) acc += w[t] / sum * v[off + t * hs + d];
                    VA[j * hs + d] = acc;
                }
            }
            for (int t = 0; t < T; t++) { /* broadcast, then the convolution */
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < m; j++) {
                    double l = 0;
                    for (int d = 0; d < hs; d++) l += (double)q[off + t * hs + d] * A[j * hs + d];
                    w[j] = l * sc + (B2 ? B2[((size_t)h * Tmax + t) * n + j] : 0);
                    mx = fmax(mx, w[j]);
                }
                for (int j = 0; j < m; j++) sum += w[j] = exp(w[j] - mx);
                for (int d = 0; d < hs; d++) {
                    double acc = 0;
                    for (int j = 0; j < m; j++) acc += w[j] / sum * VA[j * hs + d];
                    if (dwc) {
                        const int ch = h * hs + d;
                        acc += dwc[3 * NH * hs + ch];
                        for (int z = -1; z <= 1; z++)
                            if (t + z >= 0 && t + z < T && mask[b * T + t + z]) acc += dwc[ch * 3 + z + 1] * v[off + (t + z) * hs + d];
                    }
                    o[off + t * hs + d] = acc;
                }
            }
        }
    free(A); free(VA); free(w); free(rows);
}

START_TEST(test_agent_vs_naive) {
    const int len[2] = {150, 77};
    const struct { const char *opts; int n, dwc, bias; } sets[] = {
        {"n=16", 16, 0, 0}, {"n=100,dwc=1", 100, 1, 0}, {"n=24,bias=1", 24, 0, 1}, {"n=7,dwc=1,bias=1", 7, 1, 1}};
    for (size_t c = 0; c < sizeof sets / sizeof *sets; c++) {
        fixture f;
        lra_attn_shape sh = {2, 2, 150, 16};
        fx_init(&f, "agent", sets[c].opts, sh, len, 1, 2);
        double *ro = calloc(f.n, 8);
        const float *dwc = sets[c].dwc ? f.params : NULL;
        const float *B1 = sets[c].bias ? f.params + (sets[c].dwc ? 4 * 2 * 16 : 0) : NULL;
        const float *B2 = B1 ? B1 + (size_t)2 * sets[c].n * 150 : NULL;
        naive_agent(ro, f.q, f.k, f.v, f.mask, 2, 2, 150, 16, sets[c].n, dwc, B1, B2, 150);
        char what[96];
        snprintf(what, sizeof what, "agent '%s' vs naive", sets[c].opts);
        assert_forward_matches(&f, ro, what);
        free(ro);
        fx_free(&f);
    }
    char err[LRA_ERR_LEN];
    lra_attn h;
    ck_assert_int_eq(lra_attn_create(&h, "agent", "n=151", (lra_attn_shape){1, 1, 150, 8}, 1, err), LRA_ERR_USAGE);
    ck_assert_msg(strstr(err, "n=151") && strstr(err, "150"), "%s", err);
    ck_assert_int_eq(lra_attn_create(&h, "agent", "dwc=2", (lra_attn_shape){1, 1, 150, 8}, 1, err), LRA_ERR_USAGE);
}
END_TEST

/* ---- mita: a naive reference (double, plain loops, full sorts for the top-k) ------------- */
typedef struct { double v; int i; } vi;
static int vi_desc(const void *a, const void *b) {
    const vi *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i - y->i;
}
static void naive_mita(double *o, const float *q, const float *k, const float *v, const uint8_t *mask, int B, int NH,
                       int T, int hs, int m, int kk, int s, int shared, int sqrt_tau) {
    double *A = calloc((size_t)m * hs, 8), *Vb = calloc((size_t)m * hs, 8), *w = calloc((size_t)m + s * T + T, 8);
    int *rows = calloc((size_t)T, sizeof(int)), *I = calloc((size_t)m * T, sizeof(int));
    vi *buf = calloc((size_t)T + m, sizeof(vi));
    const double sc = 1.0 / sqrt((double)hs), tau = sqrt_tau ? sqrt((double)hs) : (double)hs;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const size_t off = ((size_t)b * NH + h) * T * hs;
            int L = 0;
            for (int t = 0; t < T; t++)
                if (mask[b * T + t]) rows[L++] = t;
            const int me = m < L ? m : L, ke = kk < L ? kk : L;
            for (int j = 0; j < me; j++) {
                int lo = (int)floor((double)j * L / me), hi = (int)ceil((double)(j + 1) * L / me);
                for (int d = 0; d < hs; d++) {
                    double acc = 0;
                    for (int r = lo; r < hi; r++) acc += q[off + rows[r] * hs + d];
                    A[j * hs + d] = acc / (hi - lo);
                }
            }
            for (int j = 0; j < me; j++) {
                double mx = -INFINITY, sum = 0;
                for (int r = 0; r < L; r++) {
                    double z = 0;
                    for (int d = 0; d < hs; d++) z += A[j * hs + d] * k[off + rows[r] * hs + d];
                    buf[r] = (vi){z, rows[r]};
                    w[r] = z * sc;
                    mx = fmax(mx, w[r]);
                }
                qsort(buf, (size_t)L, sizeof(vi), vi_desc);
                for (int r = 0; r < ke; r++) I[j * T + r] = buf[r].i;
                for (int r = 0; r < L; r++) sum += w[r] = exp(w[r] - mx);
                for (int d = 0; d < hs; d++) {
                    double acc = 0;
                    for (int r = 0; r < L; r++) acc += w[r] / sum * v[off + rows[r] * hs + d];
                    Vb[j * hs + d] = acc;
                }
            }
            for (int i = 0; i < T; i++) {
                int n = 0;
                for (int j = 0; j < me; j++) {
                    double g = 0;
                    for (int d = 0; d < hs; d++) g += (double)q[off + i * hs + d] * A[j * hs + d];
                    buf[j] = (vi){g, j};
                    if (shared) w[n++] = g / tau;
                }
                qsort(buf, (size_t)me, sizeof(vi), vi_desc);
                const int se = s < me ? s : me;
                for (int e = 0; e < se; e++)
                    for (int r = 0; r < ke; r++) {
                        int t = I[buf[e].i * T + r];
                        double l = 0;
                        for (int d = 0; d < hs; d++) l += (double)q[off + i * hs + d] * k[off + t * hs + d];
                        w[n++] = l * sc;
                    }
                double mx = -INFINITY, sum = 0;
                for (int t = 0; t < n; t++) mx = fmax(mx, w[t]);
                for (int t = 0; t < n; t++) sum += w[t] = exp(w[t] - mx);
                for (int d = 0; d < hs; d++) {
                    double acc = 0;
                    int t = 0;
                    if (shared)
                        for (int j = 0; j < me; j++, t++) acc += w[t] / sum * Vb[j * hs + d];
                    for (int e = 0; e < se; e++)
                        for (int r = 0; r < ke; r++, t++) acc += w[t] / sum * v[off + I[buf[e].i * T + r] * hs + d];
                    o[off + i * hs + d] = acc;
                }
            }
        }
    free(A); free(Vb); free(w); free(rows); free(I); free(buf);
}

/* mita's forward on fixture f (batch 2, 2 heads, T = 150, head size 16) against naive_mita with
 * the same options; `note` goes into the failure message after the options */
static void assert_mita_matches_naive(fixture *f, int m, int k, int s, int shared, int sqrt_tau, const char *note) {
    double *ro = calloc(f->n, 8);
    naive_mita(ro, f->q, f->k, f->v, f->mask, f->s.B, f->s.NH, f->s.T, f->s.hs, m, k, s, shared, sqrt_tau);
    char what[128];
    snprintf(what, sizeof what, "mita '%s'%s vs naive", f->opts, note);
    assert_forward_matches(f, ro, what);
    free(ro);
}

START_TEST(test_mita_vs_naive) {
    const int len[2] = {150, 77};
    const struct { const char *opts; int m, k, s, shared, sq; } sets[] = {
        {"", 64, 64, 1, 1, 0}, {"m=16,k=20,s=2", 16, 20, 2, 1, 0}, {"m=16,k=20,shared_scale=sqrt", 16, 20, 1, 1, 1},
        {"m=8,k=30,s=3,shared=0", 8, 30, 3, 0, 0}, {"m=100,k=100,s=2", 100, 100, 2, 1, 0}};
    for (size_t c = 0; c < sizeof sets / sizeof *sets; c++) {
        fixture f;
        lra_attn_shape sh = {2, 2, 150, 16};
        fx_init(&f, "mita", sets[c].opts, sh, len, 1, 2);
        assert_mita_matches_naive(&f, sets[c].m, sets[c].k, sets[c].s, sets[c].shared, sets[c].sq, "");
        fx_free(&f);
    }
}
END_TEST

/* Keys that repeat with period 7 tie in every expert's activations: each expert must take the
 * lowest-indexed of the tied keys although its candidates are selected more than once (128 valid
 * keys, room for 2k + 64 candidates), and the output must match the reference's. q and k are
 * multiples of 1/4 and the 128 valid rows pool 16 to a landmark, so every activation and gate is
 * exact in float: the ties are ties in both. */
START_TEST(test_mita_selection_ties) {
    const int len[2] = {128, 128};
    const struct { const char *opts; int m, k, s; } sets[] = {{"m=8,k=20", 8, 20, 1}, {"m=8,k=30,s=2", 8, 30, 2}};
    for (size_t c = 0; c < sizeof sets / sizeof *sets; c++) {
        fixture f;
        lra_attn_shape sh = {2, 2, 150, 16};
        fx_init(&f, "mita", sets[c].opts, sh, len, 0, 2);
        for (size_t i = 0; i < f.n; i++) {
            f.q[i] = roundf(f.q[i] * 4.0f) / 4.0f;
            f.k[i] = roundf(f.k[i] * 4.0f) / 4.0f;
        }
        for (int bh = 0; bh < 4; bh++)
            for (int t = 7; t < 150; t++)
                memcpy(f.k + ((size_t)bh * 150 + t) * 16, f.k + ((size_t)bh * 150 + t % 7) * 16, 16 * sizeof(float));
        assert_mita_matches_naive(&f, sets[c].m, sets[c].k, sets[c].s, 1, 0, " with tied keys");
        fx_free(&f);
    }
}
END_TEST

/* mita with shared=0 and experts holding every key is full attention */
START_TEST(test_mita_route_only_all_keys_is_full) {
    assert_equals_full("mita", "m=4,k=150,shared=0", 0.0f);
    assert_equals_full("mita", "m=64,k=200,shared=0", 0.0f);
}
END_TEST

/* o, dq, dk, dv of backend `name` (default options, nthreads threads) at shape s, on a handle
 * configured for the maximum shape max, from the fixture's inputs laid out at s */
static void fwd_bwd_at(const char *name, int nthreads, lra_attn_shape max, lra_attn_shape s, const fixture *f,
                       float *out[4]) {
    char err[LRA_ERR_LEN];
    lra_attn h;
    ck_assert_msg(lra_attn_create(&h, name, "", max, nthreads, err) == LRA_OK, "%s", err);
    void *ws = calloc(lra_attn_workspace_bytes(&h), 1);
    lra_attn_args a = {f->mask, 0.1f, 1, LRA_FP32};
    for (int i = 1; i < 4; i++) memset(out[i], 0, f->n * sizeof(float));
    lra_attn_forward(&h, s, &a, out[0], ws, f->q, f->k, f->v, NULL);
    lra_attn_backward(&h, s, &a, out[1], out[2], out[3], NULL, ws, f->dout, out[0], f->q, f->k, f->v, NULL);
    free(ws);
    lra_attn_free(&h);
}

/* name's o, dq, dk, dv at shape s (handle for max) are the same bits with 1 thread and with 2 */
static void assert_threads_bitwise(const char *name, lra_attn_shape max, lra_attn_shape s, const fixture *f) {
    const char *names[4] = {"o", "dq", "dk", "dv"};
    float *x[4], *y[4];
    for (int i = 0; i < 4; i++) { x[i] = calloc(f->n, sizeof(float)); y[i] = calloc(f->n, sizeof(float)); }
    fwd_bwd_at(name, 1, max, s, f, x);
    fwd_bwd_at(name, 2, max, s, f, y);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(memcmp(x[i], y[i], f->n * sizeof(float)) == 0, "%s at T=%d: %s differs with 1 vs 2 threads", name,
                      s.T, names[i]);
        free(x[i]);
        free(y[i]);
    }
}

/* Long sequences: past 2048 queries mita routes and attends a chunk at a time (mita.c's QC), and a
 * handle configured past T = 4096 uses tiles of 32 rows instead of 64. At T = 4500: the forward
 * against the reference, and with routing only over experts that hold every key, outputs and
 * gradients against full attention (three chunks, 32-row tiles); at T = 4000 (two chunks), with
 * dropout, tiles of 32 against tiles of 64 for outputs and every gradient, the shared and
 * compression paths included, and 1 thread against 2 bit for bit. */
START_TEST(test_mita_long_sequences) {
    const int len[2] = {4500, 4133};
    const lra_attn_shape s = {2, 1, 4500, 8};
    fixture f;
    fx_init(&f, "mita", "", s, len, 1, 2);
    assert_mita_matches_naive(&f, 64, 64, 1, 1, 0, " at T=4500");
    fx_free(&f);
    assert_equals_full_at("mita", "m=4,k=4500,shared=0", 0.0f, s, len);

    const int len4k[2] = {4000, 3555};
    const lra_attn_shape at = {2, 1, 4000, 8};
    fx_init(&f, "mita", "", at, len4k, 1, 2);
    float *x[4], *y[4];
    for (int i = 0; i < 4; i++) { x[i] = calloc(f.n, sizeof(float)); y[i] = calloc(f.n, sizeof(float)); }
    const lra_attn_shape long_max = {2, 1, 5000, 8};
    fwd_bwd_at("mita", 2, at, at, &f, x);       /* max T 4000: 64-row tiles */
    fwd_bwd_at("mita", 2, long_max, at, &f, y); /* max T 5000: 32-row tiles */
    const char *names[4] = {"o", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
        double w = t_close(y[i], x[i], f.n, 1e-6, 1e-5);
        ck_assert_msg(w <= 1.0, "mita at T=4000, 32-row tiles against 64: %s off by %.2f tolerances", names[i], w);
        free(x[i]);
        free(y[i]);
    }
    assert_threads_bitwise("mita", long_max, at, &f);
    fx_free(&f);
}
END_TEST

START_TEST(test_mita_options_and_diagnostics) {
    char err[LRA_ERR_LEN];
    lra_attn h;
    lra_attn_shape s = {1, 1, 100, 8};
    ck_assert_int_eq(lra_attn_create(&h, "mita", "m=101", s, 1, err), LRA_ERR_USAGE);
    ck_assert_msg(strstr(err, "m=101") && strstr(err, "100"), "%s", err);
    ck_assert_int_eq(lra_attn_create(&h, "mita", "m=4,s=5", s, 1, err), LRA_ERR_USAGE);
    ck_assert_msg(strstr(err, "s=5") && strstr(err, "m=4"), "%s", err);
    ck_assert_int_eq(lra_attn_create(&h, "mita", "k=0", s, 1, err), LRA_ERR_USAGE);
    ck_assert_int_eq(lra_attn_create(&h, "mita", "shared_scale=cube", s, 1, err), LRA_ERR_USAGE);
    ck_assert_msg(strstr(err, "cube"), "%s", err);
    ck_assert_int_eq(lra_attn_create(&h, "mita", "k=500,shared_scale=sqrt", s, 1, err), LRA_OK);
    cJSON *d = lra_attn_describe(&h);
    ck_assert_int_eq(cJSON_GetObjectItem(d, "k")->valueint, 100); /* resolved: at most every key */
    ck_assert_str_eq(cJSON_GetObjectItem(d, "shared_scale")->valuestring, "sqrt");
    cJSON_Delete(d);
    lra_attn_free(&h);
    /* experts of 10 keys from 5 landmarks hold at most 50 of 100 keys: at least half unselected */
    const int len[1] = {100};
    fixture f;
    fx_init(&f, "mita", "m=5,k=10", s, len, 0, 1);
    lra_attn_args a = {f.mask, 0.0f, 1, LRA_FP32};
    fx_fwd(&f, &a);
    d = lra_attn_diagnostics(&f.h, f.ws, s, &a);
    ck_assert(cJSON_GetObjectItem(d, "unselected_key_fraction")->valuedouble >= 0.5);
    ck_assert_double_eq(cJSON_GetObjectItem(d, "queries_per_expert_mean")->valuedouble, 20.0); /* 100 / 5 */
    cJSON_Delete(d);
    fx_free(&f);
}
END_TEST

/* ---- moe: a naive reference (double, plain loops, its own routing) ---------------------- */
static void naive_moe(double *o, const float *q, const float *k, const float *v, const uint8_t *mask, int B, int NH,
                      int T, int hs, int bsz, int s, int own) {
    const int nb = (T + bsz - 1) / bsz;
    double *kbar = calloc((size_t)nb * hs, sizeof(double)), *g = calloc((size_t)nb, sizeof(double));
    int *cnt = calloc((size_t)nb, sizeof(int)), *chosen = calloc((size_t)nb, sizeof(int));
    double *w = calloc((size_t)T, sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const size_t off = ((size_t)b * NH + h) * T * hs;
            for (int i = 0; i < nb; i++) {
                cnt[i] = 0;
                for (int d = 0; d < hs; d++) kbar[i * hs + d] = 0;
                for (int t = i * bsz; t < T && t < (i + 1) * bsz; t++)
                    if (mask[b * T + t]) {
                        cnt[i]++;
                        for (int d = 0; d < hs; d++) kbar[i * hs + d] += k[off + t * hs + d];
                    }
                for (int d = 0; d < hs; d++) kbar[i * hs + d] /= cnt[i] ? cnt[i] : 1;
            }
            for (int t = 0; t < T; t++) {
                for (int i = 0; i < nb; i++) {
                    g[i] = 0;
                    for (int d = 0; d < hs; d++) g[i] += (double)q[off + t * hs + d] * kbar[i * hs + d];
                    chosen[i] = 0;
                }
                int n = 0;
                if (own && cnt[t / bsz]) { chosen[t / bsz] = 1; n++; }
                for (; n < s; n++) { /* the largest remaining gate, lowest index on ties */
                    int best = -1;
                    for (int i = 0; i < nb; i++)
                        if (cnt[i] && !chosen[i] && (best < 0 || g[i] > g[best])) best = i;
                    if (best < 0) break;
                    chosen[best] = 1;
                }
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    w[j] = -INFINITY;
                    if (!chosen[j / bsz] || !mask[b * T + j]) continue;
                    double l = 0;
                    for (int d = 0; d < hs; d++) l += (double)q[off + t * hs + d] * k[off + j * hs + d];
                    w[j] = l / sqrt((double)hs);
                    if (w[j] > mx) mx = w[j];
                }
                for (int j = 0; j < T; j++) sum += w[j] = w[j] == -INFINITY ? 0 : exp(w[j] - mx);
                for (int d = 0; d < hs; d++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++) acc += w[j] / sum * v[off + j * hs + d];
                    o[off + t * hs + d] = acc;
                }
            }
        }
    free(kbar); free(g); free(cnt); free(chosen); free(w);
}

START_TEST(test_moe_vs_naive) {
    const int len[2] = {150, 77};
    const struct { const char *opts; int b, s, own; } sets[] = {
        {"b=16,s=2", 16, 2, 1}, {"b=16,s=3,own=0", 16, 3, 0}, {"b=7,s=5,own=1", 7, 5, 1}, {"b=64,s=1,own=0", 64, 1, 0}};
    for (size_t c = 0; c < sizeof sets / sizeof *sets; c++) {
        fixture f;
        fx_init(&f, "moe", sets[c].opts, (lra_attn_shape){2, 2, 150, 16}, len, 1, 2);
        double *ro = calloc(f.n, 8);
        naive_moe(ro, f.q, f.k, f.v, f.mask, 2, 2, 150, 16, sets[c].b, sets[c].s, sets[c].own);
        char what[96];
        snprintf(what, sizeof what, "moe '%s' vs naive", sets[c].opts);
        assert_forward_matches(&f, ro, what);
        free(ro);
        fx_free(&f);
    }
}
END_TEST

/* moe with s = every block is full attention: outputs and gradients, with masks and dropout */
START_TEST(test_moe_all_blocks_is_full) {
    const char *opts[] = {"b=16,s=10,own=0", "b=16,s=10,own=1", "b=64,s=3", "b=150,s=1"};
    for (int c = 0; c < 4; c++) {
        assert_equals_full("moe", opts[c], 0.0f);
        assert_equals_full("moe", opts[c], 0.2f);
    }
}
END_TEST

/* Past 4096 queries moe inverts its routing a chunk of queries at a time (moe.c's QC): at T = 4500
 * the second chunk's queries must still see their blocks - against the naive reference, and with s =
 * every block against full attention, gradients and dropout included. */
START_TEST(test_moe_query_chunks) {
    const int len[2] = {4500, 4133};
    fixture f;
    fx_init(&f, "moe", "b=64,s=2", (lra_attn_shape){2, 1, 4500, 8}, len, 1, 2);
    lra_attn_args a = {f.mask, 0.0f, 1, LRA_FP32};
    fx_fwd(&f, &a);
    double *ro = calloc(f.n, 8);
    naive_moe(ro, f.q, f.k, f.v, f.mask, 2, 1, 4500, 8, 64, 2, 1);
    assert_matches(f.o, ro, f.n, "moe 'b=64,s=2' at T=4500 vs naive");
    free(ro);
    fx_free(&f);
    assert_equals_full_at("moe", "b=1125,s=4", 0.0f, (lra_attn_shape){2, 1, 4500, 8}, len);
    assert_equals_full_at("moe", "b=1125,s=4", 0.2f, (lra_attn_shape){2, 1, 4500, 8}, len);
    /* 1 thread against 2, bit for bit, with dropout */
    const lra_attn_shape sh = {2, 1, 4500, 8};
    fx_init(&f, "moe", "", sh, len, 1, 2);
    assert_threads_bitwise("moe", sh, sh, &f);
    fx_free(&f);
}
END_TEST

START_TEST(test_moe_options_and_diagnostics) {
    char err[LRA_ERR_LEN];
    lra_attn h;
    lra_attn_shape s = {1, 1, 100, 8};
    ck_assert_int_eq(lra_attn_create(&h, "moe", "s=3,b=50", s, 1, err), LRA_ERR_USAGE);
    ck_assert_msg(strstr(err, "s=3") && strstr(err, "2"), "%s", err);
    ck_assert_int_eq(lra_attn_create(&h, "moe", "b=0", s, 1, err), LRA_ERR_USAGE);
    ck_assert_msg(strstr(err, "b=0"), "%s", err);
    ck_assert_int_eq(lra_attn_create(&h, "moe", "b=101", s, 1, err), LRA_ERR_USAGE);
    ck_assert_int_eq(lra_attn_create(&h, "moe", "own=2", s, 1, err), LRA_ERR_USAGE);
    /* routes are uint16: at most 65535 blocks */
    ck_assert_int_eq(lra_attn_create(&h, "moe", "b=1,s=1", (lra_attn_shape){1, 1, 70000, 8}, 1, err), LRA_ERR_USAGE);
    ck_assert_msg(strstr(err, "70000 blocks exceed 65535") && strstr(err, "raise b"), "%s", err);
    ck_assert_int_eq(lra_attn_create(&h, "moe", "b=10,s=4,own=0", s, 1, err), LRA_OK);
    cJSON *d = lra_attn_describe(&h);
    ck_assert_int_eq(cJSON_GetObjectItem(d, "b")->valueint, 10);
    ck_assert_int_eq(cJSON_GetObjectItem(d, "s")->valueint, 4);
    ck_assert_int_eq(cJSON_GetObjectItem(d, "own")->valueint, 0);
    cJSON_Delete(d);
    lra_attn_free(&h);
    /* diagnostics: with s = every block, every valid key is selected and each expert gets every query */
    const int len[1] = {100};
    fixture f;
    fx_init(&f, "moe", "b=10,s=10", s, len, 0, 1);
    lra_attn_args a = {f.mask, 0.0f, 1, LRA_FP32};
    fx_fwd(&f, &a);
    d = lra_attn_diagnostics(&f.h, f.ws, s, &a);
    ck_assert_double_eq(cJSON_GetObjectItem(d, "unselected_key_fraction")->valuedouble, 0.0);
    ck_assert_double_eq(cJSON_GetObjectItem(d, "queries_per_expert_max")->valuedouble, 100.0);
    cJSON_Delete(d);
    fx_free(&f);
    /* one block per query with own=1: each query's own block, so each expert has its 10 queries */
    fx_init(&f, "moe", "b=10,s=1,own=1", s, len, 0, 1);
    a.mask = f.mask;
    fx_fwd(&f, &a);
    d = lra_attn_diagnostics(&f.h, f.ws, s, &a);
    ck_assert_double_eq(cJSON_GetObjectItem(d, "queries_per_expert_max")->valuedouble, 10.0);
    ck_assert_double_eq(cJSON_GetObjectItem(d, "queries_per_expert_mean")->valuedouble, 10.0);
    cJSON_Delete(d);
    fx_free(&f);
}
END_TEST

/* Every registered backend that has an exact limit (backend.h's exact_opts) equals full
 * attention there: outputs and gradients, masks with holes (without dropout, which a backend may
 * apply to its own probabilities: moe's and mita's own tests cover theirs). A new
 * backend that declares one is held to it with no new test code. */
START_TEST(test_registry_exact_limits) {
    int checked = 0;
    for (int i = 0; i < lra_attn_count(); i++) {
        if (!t_backend_tested(lra_attn_name_at(i))) continue;
        char opts[256];
        if (!lra_attn_exact_opts_at(i, (lra_attn_shape){2, 2, 150, 16}, opts, sizeof opts)) continue;
        assert_equals_full(lra_attn_name_at(i), opts, 0.0f); /* mita drops within its experts: no dropout here */
        checked++;
    }
    if (t_backend_tested("full") && t_backend_tested("moe") && t_backend_tested("mita"))
        ck_assert_int_ge(checked, 3); /* full, moe and mita have one */
}
END_TEST

/* Every registered backend, at its default options, attends: a query's output moves toward the
 * value of a key made to match it. Query i of a random (2 heads x 256 x 32) input; key j is set
 * to 4 q_i while its value u (norm 4, the same in both runs) stays, and the component of o_i along
 * u is measured before and after, for five (i, j) pairs (j at the start, middle and end, before
 * and after i). Measured: full, mita and moe move 3.2-3.9 of 4 (moe 0 where the query's route
 * misses the key's block, as routing may), agent 0.02-0.05 (its pooled agents see one key
 * faintly). So: no pair may move away from u (below -0.001: keys used with the wrong sign), and
 * the five together must move at least 0.05. A backend that ignores the keys (uniform weights,
 * say) moves 0 and fails. */
START_TEST(test_registry_attends) {
    enum { T = 256, HS = 32, NH = 2 };
    const lra_attn_shape sh = {1, NH, T, HS};
    const int pairs[5][2] = {{10, 200}, {200, 10}, {128, 0}, {5, 255}, {250, 130}};
    const size_t n = (size_t)NH * T * HS;
    float *q = malloc(n * sizeof(float)), *k = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
    float *o0 = malloc(n * sizeof(float)), *o1 = malloc(n * sizeof(float)), u[HS];
    uint8_t mask[T];
    memset(mask, 1, sizeof mask);
    for (int b = 0; b < lra_attn_count(); b++) {
        if (!t_backend_tested(lra_attn_name_at(b))) continue;
        const char *name = lra_attn_name_at(b);
        char err[LRA_ERR_LEN];
        lra_attn h;
        ck_assert_msg(lra_attn_create(&h, name, "", sh, 2, err) == LRA_OK, "%s", err);
        void *ws = calloc(lra_attn_workspace_bytes(&h), 1);
        float *params = calloc(lra_attn_param_count(&h) + 1, sizeof(float));
        lra_attn_init_params(&h, params, 5);
        lra_attn_args a = {mask, 0.0f, 1, LRA_FP32};
        double total = 0;
        for (int p = 0; p < 5; p++) {
            const int i = pairs[p][0], j = pairs[p][1], hd = p % NH;
            t_fill(q, n, 1.0f, 100 + p);
            t_fill(k, n, 1.0f, 200 + p);
            t_fill(v, n, 1.0f, 300 + p);
            t_fill(u, HS, 1.0f, 400 + p);
            double un = 0;
            for (int d = 0; d < HS; d++) un += (double)u[d] * u[d];
            float *qi = q + ((size_t)hd * T + i) * HS, *kj = k + ((size_t)hd * T + j) * HS, *vj = v + ((size_t)hd * T + j) * HS;
            for (int d = 0; d < HS; d++) vj[d] = (float)(4.0 * u[d] / sqrt(un));
            lra_attn_forward(&h, sh, &a, o0, ws, q, k, v, params);
            for (int d = 0; d < HS; d++) kj[d] = 4.0f * qi[d];
            lra_attn_forward(&h, sh, &a, o1, ws, q, k, v, params);
            double rise = 0;
            const float *a0 = o0 + ((size_t)hd * T + i) * HS, *a1 = o1 + ((size_t)hd * T + i) * HS;
            for (int d = 0; d < HS; d++) rise += (a1[d] - a0[d]) * (u[d] / sqrt(un));
            ck_assert_msg(rise > -1e-3, "%s: query %d of head %d moved %.4f away from the value of the key %d made to "
                          "match it", name, i, hd, -rise, j);
            total += rise;
        }
        ck_assert_msg(total > 0.05, "%s: five queries moved %.4f in all toward the values of keys made to match them (at "
                      "least 0.05 expected): the backend does not attend to its keys", name, total);
        free(params);
        free(ws);
        lra_attn_free(&h);
    }
    free(q); free(k); free(v); free(o0); free(o1);
}
END_TEST

Suite *attention_suite(void) {
    Suite *s = suite_create("attention");
    TCase *tc = tcase_create("gradients");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_set_tags(tc, "slow"); /* make asan leaves it out in CI (ASAN_EXCLUDE_TAGS) */
    tcase_add_test(tc, test_gradcheck_registry);
    tcase_add_test(tc, test_gradcheck_registry_dropout);
    suite_add_tcase(s, tc);
    tc = tcase_create("reference");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_full_vs_naive);
    tcase_add_test(tc, test_full_bf16_vs_naive);
    tcase_add_test(tc, test_registry_bf16);
    tcase_add_test(tc, test_tile_bf16_kernels);
    tcase_add_test(tc, test_tile_amx_any_prior_state);
    tcase_add_test(tc, test_tile_gemm_prerounded);
    tcase_add_test(tc, test_exp16);
    tcase_add_test(tc, test_exp16_rows);
    tcase_add_test(tc, test_threads_bitwise);
    tcase_add_test(tc, test_moe_vs_naive);
    tcase_add_test(tc, test_agent_vs_naive);
    tcase_add_test(tc, test_mita_vs_naive);
    tcase_add_test(tc, test_mita_selection_ties);
    tcase_add_test(tc, test_mita_route_only_all_keys_is_full);
    tcase_add_test(tc, test_mita_long_sequences);
    tcase_add_test(tc, test_mita_options_and_diagnostics);
    tcase_add_test(tc, test_moe_all_blocks_is_full);
    tcase_add_test(tc, test_moe_query_chunks);
    tcase_add_test(tc, test_moe_options_and_diagnostics);
    suite_add_tcase(s, tc);
    tc = tcase_create("interface");
    tcase_add_test(tc, test_registry_exact_limits);
    tcase_add_test(tc, test_registry_attends);
    tcase_add_test(tc, test_full_no_quadratic_workspace);
    tcase_add_test(tc, test_transpose_paths);
    tcase_add_test(tc, test_row_gather_scatter);
    tcase_add_test(tc, test_unknown_option_and_backend);
    suite_add_tcase(s, tc);
    return s;
}
