/* mita.c - MiTA, Mixture of Top-k Activations (Wen and Huang, 2026), after the authors' official
 * code as ../shared/spec/attention.md states it:
 *
 *   A    = pool(q, m)                        (m, d)  landmark queries: adaptive average pooling of
 *                                                    the valid rows (m = L when L < m valid rows)
 *   I_j  = topk(A_j k^T + M, k)              (m, k)  expert j: its k most activated valid keys
 *                                                    (no scale; all valid keys when fewer than k)
 *   Vbar = softmax(A k^T / sqrt(d) + M) v    (m, d)  compressed values; compressed keys are A
 *   e(i) = topk(A q_i, s)                            routing: s experts per query
 *   one softmax over m + s*k logits per query:
 *       shared  q_i . A_j / tau    (tau = d, or sqrt(d) with shared_scale=sqrt)
 *       routed  q_i . k_t / sqrt(d), t in I_e for e in e(i)   (a key in two experts counts twice)
 *   o_i  = sum_j p_j Vbar_j + sum_t p_t v_t
 *
 * Ties in every top-k go to the lower index; top-k over a row of T keys is a selection
 * (quickselect), not a sort. The hard choices carry no gradient; gradients reach q (both paths
 * and through the pooling), the gathered k and v rows, and k and v through Vbar's softmax.
 * Options m (64), k (64), s (1), shared_scale=d|sqrt, shared=0|1. Attention dropout drops the
 * final probabilities (shared and routed, entry index as in the logit list), not the compression.
 *
 * Workspace per head: A, Vbar (m x d), the compression softmax (m x T), the routing/shared dot
 * products G = q A^T (T x m), the experts (m x k), each query's experts (T x s), its log-sum-exp;
 * per thread: scratch matrices for backward and the selection buffer. Each head is one thread's,
 * so results do not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "attention.h"
#include "pool.h"
#include "vec.h"

#define NEG_BIG (-1e30f) /* see full.c: this file builds with -ffast-math */

typedef struct {
    int m, k, s, shared, scale_sqrt;
    int nthreads;
    lra_attn_shape max;
} mita_ctx;

static lra_status mita_opt(const char *key, const char *val, void *user, char *err) {
    mita_ctx *c = user;
    if (strcmp(key, "m") == 0) return lra_attn_opt_int("mita", key, val, 1, 1 << 20, &c->m, err);
    if (strcmp(key, "k") == 0) return lra_attn_opt_int("mita", key, val, 1, 1 << 24, &c->k, err);
    if (strcmp(key, "s") == 0) return lra_attn_opt_int("mita", key, val, 1, 1 << 20, &c->s, err);
    if (strcmp(key, "shared") == 0) return lra_attn_opt_int("mita", key, val, 0, 1, &c->shared, err);
    if (strcmp(key, "shared_scale") == 0) {
        if (strcmp(val, "d") == 0) c->scale_sqrt = 0;
        else if (strcmp(val, "sqrt") == 0) c->scale_sqrt = 1;
        else return lra_fail(err, LRA_ERR_USAGE, "mita: shared_scale='%s' must be d or sqrt", val);
        return LRA_OK;
    }
    return lra_fail(err, LRA_ERR_USAGE, "mita: unknown option '%s' (known: m, k, s, shared_scale, shared)", key);
}

static lra_status mita_configure(void **ctx, const char *opts, lra_attn_shape max, int nthreads, char *err) {
    mita_ctx c = {.m = 64, .k = 64, .s = 1, .shared = 1, .nthreads = nthreads, .max = max};
    lra_status st = lra_attn_parse_opts("mita", opts, mita_opt, &c, err);
    if (st != LRA_OK) return st;
    if (c.m > max.T) return lra_fail(err, LRA_ERR_USAGE, "mita: m=%d landmarks exceed the sequence length T=%d", c.m, max.T);
    if (c.s > c.m) return lra_fail(err, LRA_ERR_USAGE, "mita: s=%d exceeds the number of experts m=%d", c.s, c.m);
    if (c.k > max.T) c.k = max.T; /* an expert holds at most every key */
    mita_ctx *p = malloc(sizeof *p);
    if (!p) return lra_fail(err, LRA_ERR_NOMEM, "mita: out of memory");
    *p = c;
    *ctx = p;
    return LRA_OK;
}

static void mita_release(void *ctx) { free(ctx); }

static cJSON *mita_describe(const void *ctx) {
    const mita_ctx *c = ctx;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "m", c->m);
    cJSON_AddNumberToObject(j, "k", c->k);
    cJSON_AddNumberToObject(j, "s", c->s);
    cJSON_AddStringToObject(j, "shared_scale", c->scale_sqrt ? "sqrt" : "d");
    cJSON_AddNumberToObject(j, "shared", c->shared);
    return j;
}

/* workspace (in 4-byte words): per head A, Vbar, Pc (m x T), G (T x m), experts (m x k),
 * routes (T x s), lse (T), nexp (1); per thread Gs and Gd (T x m), dPc (m x T), dA and dVbar
 * (m x d), logits (s*k), selection pairs (2T), valid rows (T) */
typedef struct { size_t a, vbar, pc, g, ex, rt, lse, ne, head, gs, gd, dpc, da, dvb, lg, sel, idx, thread; } layout;
static layout lay(const mita_ctx *c, lra_attn_shape s) {
    layout l;
    const size_t m = (size_t)c->m, d = (size_t)s.hs, T = (size_t)s.T, k = (size_t)c->k, S = (size_t)c->s;
    l.a = 0; l.vbar = m * d; l.pc = 2 * m * d; l.g = l.pc + m * T; l.ex = l.g + T * m; l.rt = l.ex + m * k;
    l.lse = l.rt + T * S; l.ne = l.lse + T; l.head = l.ne + 2;
    l.gs = 0; l.gd = T * m; l.dpc = 2 * T * m; l.da = 3 * T * m; l.dvb = l.da + m * d; l.lg = l.dvb + m * d;
    l.sel = l.lg + S * k; l.idx = l.sel + 2 * T; l.thread = l.idx + T;
    return l;
}

static size_t mita_workspace_bytes(const void *ctx, lra_attn_shape s) {
    const mita_ctx *c = ctx;
    layout l = lay(c, s);
    return 4 * ((size_t)s.B * s.NH * l.head + (size_t)c->nthreads * l.thread);
}

static void mita_flops(const void *ctx, lra_attn_shape s, double *fwd, double *bwd) {
    const mita_ctx *c = ctx;
    const double heads = (double)s.B * s.NH, T = s.T, d = s.hs, m = c->m, sk = (double)c->s * c->k;
    /* A k^T, Vbar, q A^T (routing and shared logits at once), p_shared Vbar; routed logits and p v */
    *fwd = heads * (T * d + 8.0 * m * T * d + 4.0 * T * sk * d);
    *bwd = heads * (T * d + 16.0 * m * T * d + 10.0 * T * sk * d);
}

/* ---- top-k by selection: (value desc, index asc) order, a strict total order ---- */
typedef struct { float v; int32_t i; } pair;
static int before(pair a, pair b) { return a.v > b.v || (a.v == b.v && a.i < b.i); }

/* Rearranges x[0..n) so that its first k are the k first in (value desc, index asc) order
 * (quickselect with a median-of-three pivot; deterministic). */
static void select_top(pair *x, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (before(x[mid], x[lo])) { pair t = x[mid]; x[mid] = x[lo]; x[lo] = t; }
        if (before(x[hi], x[lo])) { pair t = x[hi]; x[hi] = x[lo]; x[lo] = t; }
        if (before(x[hi], x[mid])) { pair t = x[hi]; x[hi] = x[mid]; x[mid] = t; }
        pair piv = x[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (before(x[i], piv)) i++;
            while (before(piv, x[j])) j--;
            if (i <= j) { pair t = x[i]; x[i] = x[j]; x[j] = t; i++; j--; }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

static int cmp_idx(const void *a, const void *b) { return *(const int32_t *)a - *(const int32_t *)b; }

/* the shared and routed logits of query i into lg (m + nr entries): returns nr */
static int row_logits(const mita_ctx *c, float *lg, const float *G, const int32_t *ex, const int32_t *rt, int me,
                      int ke, const float *qi, const float *K, int hs, float tau_inv, float scale) {
    int n = 0;
    if (c->shared)
        for (int j = 0; j < me; j++) lg[n++] = G[j] * tau_inv;
    for (int e = 0; e < c->s && rt[e] >= 0; e++)
        for (int r = 0; r < ke; r++) {
            const float *kt = K + (size_t)ex[(size_t)rt[e] * c->k + r] * hs;
            float acc = 0.0f;
            for (int d = 0; d < hs; d++) acc += qi[d] * kt[d];
            lg[n++] = acc * scale;
        }
    return n;
}

static void mita_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws,
                         const float *q, const float *k, const float *v, const float *params) {
    (void)params;
    const mita_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, M = c->m;
    const float scale = 1.0f / sqrtf((float)hs), tau_inv = c->scale_sqrt ? scale : 1.0f / (float)hs;
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    const layout l = lay(c, s);
    float *w0 = ws, *t0 = w0 + (size_t)BH * l.head;

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        float *hw = w0 + (size_t)bh * l.head, *tw = t0 + (size_t)omp_get_thread_num() * l.thread;
        float *A = hw + l.a, *Vbar = hw + l.vbar, *Pc = hw + l.pc, *G = hw + l.g, *lse = hw + l.lse, *lg = tw + l.lg;
        int32_t *ex = (int32_t *)(hw + l.ex), *rt = (int32_t *)(hw + l.rt), *idx = (int32_t *)(tw + l.idx);
        int32_t *ne = (int32_t *)(hw + l.ne);
        pair *sel = (pair *)(tw + l.sel);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head;
        float *O = o + head;
        const int L = lra_valid_rows(mask, T, idx);
        const int me = M < L ? M : L, ke = c->k < L ? c->k : L;
        ne[0] = me;
        ne[1] = ke;
        memset(O, 0, sizeof(float) * T * hs);
        if (me == 0) continue;
        lra_pool_rows_forward(A, Q, idx, L, me, hs); /* landmarks */
        /* activations A k^T (me x T): experts by selection, then the compression softmax */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, me, T, hs, 1.0f, A, hs, K, hs, 0.0f, Pc, T);
        for (int j = 0; j < me; j++) {
            float *z = Pc + (size_t)j * T;
            for (int r = 0; r < L; r++) sel[r] = (pair){z[idx[r]], idx[r]};
            select_top(sel, L, ke);
            int32_t *e = ex + (size_t)j * c->k;
            for (int r = 0; r < ke; r++) e[r] = sel[r].i;
            qsort(e, (size_t)ke, sizeof(int32_t), cmp_idx);
            if (!c->shared) continue; /* the compression feeds only the shared expert */
            float mx = NEG_BIG, sum = 0.0f;
            for (int t = 0; t < T; t++) {
                z[t] = mask[t] ? z[t] * scale : NEG_BIG;
                mx = z[t] > mx ? z[t] : mx;
            }
            for (int t = 0; t < T; t++) {
                z[t] = expf(z[t] - mx);
                sum += z[t];
            }
            for (int t = 0; t < T; t++) z[t] /= sum;
        }
        if (c->shared)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, me, hs, T, 1.0f, Pc, T, V, hs, 0.0f, Vbar, hs);
        /* G = Q A^T (T x me, stride M): routing and, scaled, the shared logits */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, me, hs, 1.0f, Q, hs, A, hs, 0.0f, G, M);
        for (int i = 0; i < T; i++) {
            const float *gi = G + (size_t)i * M;
            int32_t *ri = rt + (size_t)i * c->s;
            for (int j = 0; j < me; j++) sel[j] = (pair){gi[j], j};
            const int se = c->s < me ? c->s : me;
            select_top(sel, me, se);
            for (int e = 0; e < c->s; e++) ri[e] = e < se ? sel[e].i : -1;
            qsort(ri, (size_t)se, sizeof(int32_t), cmp_idx);
            const float *qi = Q + (size_t)i * hs;
            int n = row_logits(c, lg, gi, ex, ri, me, ke, qi, K, hs, tau_inv, scale);
            float mx = NEG_BIG, sum = 0.0f;
            for (int t = 0; t < n; t++) mx = lg[t] > mx ? lg[t] : mx;
            for (int t = 0; t < n; t++) {
                lg[t] = expf(lg[t] - mx);
                sum += lg[t];
            }
            lse[i] = mx + logf(sum);
            const float inv = 1.0f / sum;
            const uint32_t rs = thr ? (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)i) : 0;
            float *oi = O + (size_t)i * hs;
            int t = 0;
            if (c->shared)
                for (int j = 0; j < me; j++, t++) {
                    float p = lg[t] * inv * (thr ? (lra_keep(rs, (uint32_t)t, thr) ? keep_scale : 0.0f) : 1.0f);
                    for (int d = 0; d < hs; d++) oi[d] += p * Vbar[(size_t)j * hs + d];
                }
            for (int e = 0; e < se; e++)
                for (int r = 0; r < ke; r++, t++) {
                    float p = lg[t] * inv * (thr ? (lra_keep(rs, (uint32_t)t, thr) ? keep_scale : 0.0f) : 1.0f);
                    const float *vt = V + (size_t)ex[(size_t)ri[e] * c->k + r] * hs;
                    for (int d = 0; d < hs; d++) oi[d] += p * vt[d];
                }
        }
    }
}

static void mita_backward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *dq, float *dk,
                          float *dv, float *dparams, void *ws, const float *dout, const float *o, const float *q,
                          const float *k, const float *v, const float *params) {
    (void)params; (void)dparams;
    const mita_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, M = c->m;
    const float scale = 1.0f / sqrtf((float)hs), tau_inv = c->scale_sqrt ? scale : 1.0f / (float)hs;
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    const layout l = lay(c, s);
    float *w0 = ws, *t0 = w0 + (size_t)BH * l.head;

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        float *hw = w0 + (size_t)bh * l.head, *tw = t0 + (size_t)omp_get_thread_num() * l.thread;
        float *A = hw + l.a, *Vbar = hw + l.vbar, *Pc = hw + l.pc, *G = hw + l.g, *lse = hw + l.lse;
        float *Gs = tw + l.gs, *Gd = tw + l.gd, *dPc = tw + l.dpc, *dA = tw + l.da, *dVbar = tw + l.dvb, *lg = tw + l.lg;
        const int32_t *ex = (const int32_t *)(hw + l.ex), *rt = (const int32_t *)(hw + l.rt);
        const int32_t *ne = (const int32_t *)(hw + l.ne);
        int32_t *idx = (int32_t *)(tw + l.idx);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head, *dO = dout + head, *O = o + head;
        float *dQ = dq + head, *dK = dk + head, *dV = dv + head;
        const int me = ne[0], ke = ne[1];
        if (me == 0) continue;
        const int L = lra_valid_rows(mask, T, idx);
        /* per query: dS of every logit. Shared ones go to Gs (T x me) and p*z to Gd, for the
         * matrix products below; routed ones are applied at once. */
        memset(dA, 0, sizeof(float) * (size_t)me * hs);
        for (int i = 0; i < T; i++) {
            const float *gi = G + (size_t)i * M, *qi = Q + (size_t)i * hs, *go = dO + (size_t)i * hs;
            const int32_t *ri = rt + (size_t)i * c->s;
            float *dqi = dQ + (size_t)i * hs;
            row_logits(c, lg, gi, ex, ri, me, ke, qi, K, hs, tau_inv, scale);
            float D = 0.0f;
            for (int d = 0; d < hs; d++) D += go[d] * O[(size_t)i * hs + d];
            const uint32_t rs = thr ? (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)i) : 0;
            int t = 0;
            if (c->shared)
                for (int j = 0; j < me; j++, t++) {
                    const float p = expf(lg[t] - lse[i]);
                    const float z = thr ? (lra_keep(rs, (uint32_t)t, thr) ? keep_scale : 0.0f) : 1.0f;
                    float dp = 0.0f;
                    for (int d = 0; d < hs; d++) dp += go[d] * Vbar[(size_t)j * hs + d];
                    Gs[(size_t)i * me + j] = p * (dp * z - D) * tau_inv;
                    Gd[(size_t)i * me + j] = p * z;
                }
            for (int e = 0; e < c->s && ri[e] >= 0; e++)
                for (int r = 0; r < ke; r++, t++) {
                    const int32_t kt = ex[(size_t)ri[e] * c->k + r];
                    const float *kv = K + (size_t)kt * hs, *vv = V + (size_t)kt * hs;
                    const float p = expf(lg[t] - lse[i]);
                    const float z = thr ? (lra_keep(rs, (uint32_t)t, thr) ? keep_scale : 0.0f) : 1.0f;
                    float dp = 0.0f;
                    for (int d = 0; d < hs; d++) dp += go[d] * vv[d];
                    const float ds = p * (dp * z - D) * scale;
                    lra_axpy3(dqi, kv, ds, dK + (size_t)kt * hs, qi, ds, dV + (size_t)kt * hs, go, p * z, hs);
                }
        }
        if (c->shared) {
            /* shared logits q_i . A_j * tau_inv (scale folded into Gs), o += (p z) Vbar */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, me, 1.0f, Gs, me, A, hs, 1.0f, dQ, hs);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, me, hs, T, 1.0f, Gs, me, Q, hs, 1.0f, dA, hs);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, me, hs, T, 1.0f, Gd, me, dO, hs, 0.0f, dVbar, hs);
            /* Vbar = Pc V, Pc = softmax(A K^T scale + M) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, me, 1.0f, Pc, T, dVbar, hs, 1.0f, dV, hs);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, me, T, hs, 1.0f, dVbar, hs, V, hs, 0.0f, dPc, T);
            for (int j = 0; j < me; j++) {
                float *g = dPc + (size_t)j * T;
                const float *p = Pc + (size_t)j * T;
                float Dj = 0.0f;
                for (int t = 0; t < T; t++) Dj += p[t] * g[t];
                for (int t = 0; t < T; t++) g[t] = p[t] * (g[t] - Dj);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, me, hs, T, scale, dPc, T, K, hs, 1.0f, dA, hs);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, me, scale, dPc, T, A, hs, 1.0f, dK, hs);
        }
        lra_pool_rows_backward(dQ, dA, idx, L, me, hs); /* through the pooling into q */
    }
}

/* Over the last forward: real queries per expert (max, mean) and the fraction of valid keys
 * that no expert holds. */
static cJSON *mita_diagnostics(const void *ctx, const void *ws, lra_attn_shape s, const lra_attn_args *a) {
    const mita_ctx *c = ctx;
    const int T = s.T, BH = s.B * s.NH, M = c->m;
    const layout l = lay(c, s);
    long *count = calloc((size_t)M, sizeof(long));
    uint8_t *held = calloc((size_t)T, 1);
    double maxq = 0, sumq = 0;
    long experts = 0, keys = 0, unheld = 0;
    for (int bh = 0; bh < BH && count && held; bh++) {
        const float *hw = (const float *)ws + (size_t)bh * l.head;
        const int32_t *ex = (const int32_t *)(hw + l.ex), *rt = (const int32_t *)(hw + l.rt);
        const int32_t *ne = (const int32_t *)(hw + l.ne);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const int me = ne[0], ke = ne[1];
        memset(count, 0, sizeof(long) * M);
        memset(held, 0, (size_t)T);
        for (int i = 0; i < T; i++)
            for (int e = 0; e < c->s && mask[i]; e++)
                if (rt[(size_t)i * c->s + e] >= 0) count[rt[(size_t)i * c->s + e]]++;
        for (int j = 0; j < me; j++) {
            maxq = count[j] > maxq ? (double)count[j] : maxq;
            sumq += (double)count[j];
            experts++;
            for (int r = 0; r < ke; r++) held[ex[(size_t)j * c->k + r]] = 1;
        }
        for (int t = 0; t < T; t++) {
            keys += mask[t];
            unheld += mask[t] && !held[t];
        }
    }
    free(count);
    free(held);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "queries_per_expert_max", maxq);
    cJSON_AddNumberToObject(j, "queries_per_expert_mean", experts ? sumq / (double)experts : 0);
    cJSON_AddNumberToObject(j, "unselected_key_fraction", keys ? (double)unheld / (double)keys : 0);
    return j;
}

const lra_attn_i lra_attn_mita = {
    .name = "mita",
    .summary = "MiTA: m landmark queries, a shared compressed expert + top-k routed experts; m, k, s, shared_scale, shared",
    .configure = mita_configure,
    .release = mita_release,
    .describe = mita_describe,
    .workspace_bytes = mita_workspace_bytes,
    .flops = mita_flops,
    .forward = mita_forward,
    .backward = mita_backward,
    .diagnostics = mita_diagnostics,
};
