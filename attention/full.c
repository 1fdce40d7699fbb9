/* full.c - softmax attention, the reference backend.
 *
 *   o = softmax(q k^T / sqrt(d) + M) v,   M[j] = 0 if mask[j] else -inf
 *
 * Tiled with an online (running max / running sum) softmax so that no (T x T) buffer exists:
 * forward keeps one (BQ x BK) tile of scores per thread and saves each row's log-sum-exp;
 * backward recomputes the tiles from it (FlashAttention-2's scheme). Attention dropout is applied
 * to the normalised probabilities with a mask that is a pure function of (seed, head, row, col),
 * so backward regenerates it instead of storing it.
 *
 * Parallelism: forward over (batch*head, query block); backward over batch*head, because dk
 * and dv of one head collect contributions from every query block and must be summed in a fixed
 * order for results not to depend on the thread count. Key blocks with no valid key are skipped. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "backend.h"

/* 128 query rows a tile: every tile reads all of the head's K and V, so taller tiles halve that
 * traffic - at T = 16384, head size 64 (8 MB of K and V a head) 59-60% of the peak against 52-53%
 * with 64 rows, in the same sitting */
enum { BQ = 128, BK = 64 };
/* Masked logits. This file is built with -ffast-math (so that gcc vectorises expf through glibc's
 * vector math library), which assumes no infinities: a large finite value stands in for -inf,
 * and exp(NEG_BIG - m) is exactly 0 for any logit m in range. */
#define NEG_BIG (-1e30f)

typedef struct {
    int nthreads;
} full_ctx;

static lra_status full_opt(const char *key, const char *val, void *user, char *err) {
    (void)val; (void)user;
    return lra_fail(err, LRA_ERR_USAGE, "full: unknown option '%s' (full attention takes no options)", key);
}

static lra_status full_configure(void **ctx, const char *opts, lra_attn_shape max, int nthreads, char *err) {
    (void)max;
    lra_status st = lra_attn_parse_opts("full", opts, full_opt, NULL, err);
    if (st != LRA_OK) return st;
    full_ctx *c = calloc(1, sizeof *c);
    if (!c) return lra_fail(err, LRA_ERR_NOMEM, "full: out of memory");
    c->nthreads = nthreads;
    *ctx = c;
    return LRA_OK;
}

static void full_release(void *ctx) { free(ctx); }

static cJSON *full_describe(const void *ctx) { (void)ctx; return cJSON_CreateObject(); }

/* per-thread scratch: scores S, dP, dropped P (BQ x BK each), accumulator (BQ x hs), m, l (BQ) */
static size_t scratch_floats(int hs) { return 3 * BQ * BK + (size_t)BQ * hs + 2 * BQ; }

/* saved: each row's log-sum-exp (forward) and D (backward's), 8 bytes per (batch, head, token) */
static size_t full_saved_bytes(const void *ctx, lra_attn_shape s) {
    (void)ctx;
    return sizeof(float) * 2 * (size_t)s.B * s.NH * s.T;
}

static size_t full_scratch_bytes(const void *ctx, lra_attn_shape s) {
    const full_ctx *c = ctx;
    return sizeof(float) * (size_t)c->nthreads * scratch_floats(s.hs);
}

static void full_flops(const void *ctx, lra_attn_shape s, double *fwd, double *bwd) {
    (void)ctx;
    double t2d = (double)s.B * s.NH * s.T * (double)s.T * s.hs;
    *fwd = 4.0 * t2d;  /* q k^T and p v */
    *bwd = 10.0 * t2d; /* recomputed q k^T, dO v^T, p^T dO, dS k, dS^T q */
}

static int block_has_key(const uint8_t *mask, int j0, int nk) {
    for (int j = 0; j < nk; j++)
        if (mask[j0 + j]) return 1;
    return 0;
}

static void full_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws,
                         void *scratch, const float *q, const float *k, const float *v, const float *params) {
    (void)params;
    const full_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, nqb = (T + BQ - 1) / BQ;
    const float scale = 1.0f / sqrtf((float)hs);
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    float *lse = ws;                                    /* (B, NH, T) */
    float *scratch0 = scratch;

#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        for (int qb = 0; qb < nqb; qb++) {
            float *S = scratch0 + (size_t)omp_get_thread_num() * scratch_floats(hs);
            float *acc = S + 3 * BQ * BK, *m = acc + BQ * hs, *l = m + BQ;
            const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
            const size_t head = (size_t)bh * T * hs;
            const int i0 = qb * BQ, nq = T - i0 < BQ ? T - i0 : BQ;
            const float *Q = q + head + (size_t)i0 * hs;
            for (int r = 0; r < nq; r++) { m[r] = NEG_BIG; l[r] = 0.0f; }
            memset(acc, 0, sizeof(float) * (size_t)nq * hs);
            for (int j0 = 0; j0 < T; j0 += BK) {
                const int nk = T - j0 < BK ? T - j0 : BK;
                if (!block_has_key(mask, j0, nk)) continue;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hs, scale, Q, hs,
                            k + head + (size_t)j0 * hs, hs, 0.0f, S, BK);
                const uint8_t *mk = mask + j0;
                for (int r = 0; r < nq; r++) {
                    float *row = S + r * BK;
                    float mx = NEG_BIG;
                    for (int j = 0; j < nk; j++) {
                        row[j] = mk[j] ? row[j] : NEG_BIG;
                        mx = row[j] > mx ? row[j] : mx;
                    }
                    const float mnew = m[r] > mx ? m[r] : mx;
                    const float corr = expf(m[r] - mnew); /* 0 on the first valid block */
                    float sum = 0.0f;
                    for (int j = 0; j < nk; j++) {
                        float p = expf(row[j] - mnew); /* 0 for masked keys */
                        row[j] = p;
                        sum += p;
                    }
                    l[r] = l[r] * corr + sum;
                    m[r] = mnew;
                    float *ar = acc + (size_t)r * hs;
                    for (int d = 0; d < hs; d++) ar[d] *= corr;
                    if (thr) {
                        const uint32_t rs = (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)(i0 + r));
                        for (int j = 0; j < nk; j++)
                            row[j] *= lra_keep(rs, (uint32_t)(j0 + j), thr) ? keep_scale : 0.0f;
                    }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hs, nk, 1.0f, S, BK,
                            v + head + (size_t)j0 * hs, hs, 1.0f, acc, hs);
            }
            for (int r = 0; r < nq; r++) {
                float *out = o + head + (size_t)(i0 + r) * hs;
                const float *ar = acc + (size_t)r * hs;
                if (l[r] > 0.0f) {
                    const float inv = 1.0f / l[r];
                    for (int d = 0; d < hs; d++) out[d] = ar[d] * inv;
                    lse[(size_t)bh * T + i0 + r] = m[r] + logf(l[r]);
                } else { /* no valid key at all: output 0, and backward sees p = exp(s - big) = 0 */
                    for (int d = 0; d < hs; d++) out[d] = 0.0f;
                    lse[(size_t)bh * T + i0 + r] = -NEG_BIG;
                }
            }
        }
    }
}

static void full_backward(const void *ctx, lra_attn_shape s, const lra_attn_args *a,
                          float *dq, float *dk, float *dv, float *dparams, void *ws, void *scratch, const float *dout,
                          const float *o, const float *q, const float *k, const float *v,
                          const float *params) {
    (void)params; (void)dparams;
    const full_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    const float *lse = ws;
    float *Dall = (float *)ws + (size_t)BH * T; /* D_i = dO_i . o_i = sum_j P_ij dP_ij */
    float *scratch0 = scratch;

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        float *S = scratch0 + (size_t)omp_get_thread_num() * scratch_floats(hs);
        float *dP = S + BQ * BK, *Pd = dP + BQ * BK;
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        float *D = Dall + (size_t)bh * T;
        for (int i = 0; i < T; i++) {
            const float *g = dout + head + (size_t)i * hs, *y = o + head + (size_t)i * hs;
            float acc = 0.0f;
            for (int d = 0; d < hs; d++) acc += g[d] * y[d];
            D[i] = acc;
        }
        for (int i0 = 0; i0 < T; i0 += BQ) {
            const int nq = T - i0 < BQ ? T - i0 : BQ;
            const float *Q = q + head + (size_t)i0 * hs, *dO = dout + head + (size_t)i0 * hs;
            float *dQ = dq + head + (size_t)i0 * hs;
            for (int j0 = 0; j0 < T; j0 += BK) {
                const int nk = T - j0 < BK ? T - j0 : BK;
                if (!block_has_key(mask, j0, nk)) continue;
                const float *K = k + head + (size_t)j0 * hs, *V = v + head + (size_t)j0 * hs;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hs, scale, Q, hs, K, hs, 0.0f, S, BK);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hs, 1.0f, dO, hs, V, hs, 0.0f, dP, BK);
                const uint8_t *mk = mask + j0;
                for (int r = 0; r < nq; r++) {
                    float *srow = S + r * BK, *dprow = dP + r * BK;
                    const float li = lse[(size_t)bh * T + i0 + r], Di = D[i0 + r];
                    for (int j = 0; j < nk; j++) {
                        float p = expf(srow[j] - li);
                        srow[j] = mk[j] ? p : 0.0f;
                    }
                    if (thr) {
                        float *pdrow = Pd + r * BK;
                        const uint32_t rs = (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)(i0 + r));
                        for (int j = 0; j < nk; j++) {
                            float z = lra_keep(rs, (uint32_t)(j0 + j), thr) ? keep_scale : 0.0f;
                            pdrow[j] = srow[j] * z;
                            dprow[j] *= z;
                        }
                    }
                    /* dP now holds dL/dP for the undropped P; turn it into dS in place */
                    for (int j = 0; j < nk; j++) dprow[j] = srow[j] * (dprow[j] - Di);
                }
                /* dV_j += P^T dO (dropped P when dropout is on) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, nq, 1.0f, thr ? Pd : S, BK,
                            dO, hs, 1.0f, dv + head + (size_t)j0 * hs, hs);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hs, nk, scale, dP, BK, K, hs, 1.0f, dQ, hs);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, nq, scale, dP, BK, Q, hs,
                            1.0f, dk + head + (size_t)j0 * hs, hs);
            }
        }
    }
}

const lra_attn_i lra_attn_full = {
    .name = "full",
    .summary = "softmax attention, tiled online softmax (the reference)",
    .configure = full_configure,
    .release = full_release,
    .describe = full_describe,
    .saved_bytes = full_saved_bytes,
    .scratch_bytes = full_scratch_bytes,
    .flops = full_flops,
    .forward = full_forward,
    .backward = full_backward,
};
