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
 * The routed part runs one expert at a time: the queries routed to expert e share its k keys, so
 * their logits are one sgemm of the gathered queries against the gathered keys, and their values
 * one sgemm of probabilities against the gathered values (backward likewise: dq, dk, dv per expert,
 * scattered back in a fixed order). Every other product is an sgemm of the whole head.
 *
 * Saved for backward, per head: A, Vbar (m x d), the experts as key indices (m x k), each query's
 * experts (T x s) and log-sum-exp (T): 4 (3 m d + T (s + 1)) bytes, about 4 (s + 1) bytes per
 * (batch, head, token) plus 48 KiB per head at m = k = 64, d = 64. Backward recomputes what
 * costs one sgemm each - G = q A^T, the compression softmax, each expert's routed logits - with
 * the same calls on the same inputs as forward, so the recomputed values are forward's bits.
 * Per thread: those recomputed matrices, gathers and scratch. Each head is one thread's, so
 * results do not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "backend.h"
#include "pool.h"

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

/* workspace (in 4-byte words): per head, saved for backward, A, Vbar (m x d), the experts
 * (m x k), each query's experts (T x s), lse (T) and the head's (m, k) in effect; per thread,
 * Pc (m x T) and then G = q A^T (T x m) in the same place, and the routed logits (T x s x k),
 * recomputed in backward; two more T x m matrices, m x T, two m x d, the per-expert gathers
 * (queries and their output gradients T x d, keys and values k x d, two T x k tiles), the routed
 * probabilities (T x s x k), the inverted routing (T x s entries, m + 1 offsets), the selection
 * pairs (2 T) and their radix keys (T), and the valid rows (T) */
typedef struct {
    size_t a, vbar, ex, rt, lse, ne, head;
    size_t pc, g, lg, keys, gs, gd, dpc, da, dvb, qe, oe, ke, ve, t1, t2, pr, inv, off, sel, idx, thread;
} layout;
static layout lay(const mita_ctx *c, lra_attn_shape s) {
    layout l;
    const size_t m = (size_t)c->m, d = (size_t)s.hs, T = (size_t)s.T, k = (size_t)c->k, S = (size_t)c->s;
    size_t off = 0;
#define CARVE(field, n) do { l.field = off; off += (n); } while (0)
    /* per head, kept from forward for backward */
    CARVE(a, m * d);      // (m, d): the landmarks A, pooled queries
    CARVE(vbar, m * d);   // (m, d): the compressed values
    CARVE(ex, m * k);     // (m, k): each expert's keys (int32)
    CARVE(rt, T * S);     // (T, s): each query's experts (int32)
    CARVE(lse, T);        // (T): each query's log-sum-exp
    CARVE(ne, 2);         // the (m, k) in effect for this head (int32)
    l.head = off;
    off = 0;
    /* per thread: computed in forward, recomputed in backward */
    CARVE(pc, m * T);     // (m, T): the compression softmax over keys, dead once Vbar is made
    l.g = l.pc;           // (T, m): q A^T, routing and shared logits at once, in pc's place
    CARVE(lg, T * S * k); // (T, s, k): the routed logits (backward: one expert's, (n, k))
    /* per thread, scratch */
    CARVE(gs, T * m);     // (T, m): the shared softmax
    CARVE(gd, T * m);     // (T, m): its gradient
    CARVE(dpc, m * T);    // (m, T): d pc
    CARVE(da, m * d);     // (m, d): d A
    CARVE(dvb, m * d);    // (m, d): d vbar
    CARVE(qe, T * d);     // (T, d): one expert's gathered queries
    CARVE(oe, T * d);     // (T, d): their output gradients
    CARVE(ke, k * d);     // (k, d): the expert's keys
    CARVE(ve, k * d);     // (k, d): the expert's values
    CARVE(t1, T * k);     // (T, k): a tile of logits or probabilities
    CARVE(t2, T * k);     // (T, k): a second tile
    CARVE(pr, T * S * k); // (T, s, k): the routed probabilities
    CARVE(inv, T * S);    // (T s): the inverted routing, queries by expert (int32)
    CARVE(off, m + 1);    // (m + 1): its offsets (int32)
    CARVE(sel, 2 * T);    // (2T): the selection pairs
    CARVE(keys, T);       // (T): their values' bit patterns, for the selection (uint32)
    CARVE(idx, T);        // (T): the valid rows (int32)
    l.thread = off;
#undef CARVE
    return l;
}

static size_t mita_saved_bytes(const void *ctx, lra_attn_shape s) {
    return sizeof(float) * (size_t)s.B * s.NH * lay(ctx, s).head;
}

static size_t mita_scratch_bytes(const void *ctx, lra_attn_shape s) {
    const mita_ctx *c = ctx;
    return sizeof(float) * (size_t)c->nthreads * lay(c, s).thread;
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

/* The k-th largest of the n values (1 <= k <= n) by radix selection on their order-preserving
 * bit patterns: a byte at a time from the top, one histogram pass per byte over the candidates
 * that share the bytes chosen so far - no data-dependent branches, where a quickselect mispredicts
 * about once per element. keys: n uint32 of scratch. */
static float kth_largest(const pair *x, int n, int k, uint32_t *keys) {
    for (int r = 0; r < n; r++) {
        uint32_t u;
        memcpy(&u, &x[r].v, sizeof u);
        keys[r] = u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u); /* float order = unsigned order */
    }
    uint32_t prefix = 0, mask = 0;
    int need = k; /* how many more of the largest lie at or below the prefix chosen so far */
    for (int shift = 24; shift >= 0; shift -= 8) {
        int hist[256] = {0};
        for (int r = 0; r < n; r++) hist[(keys[r] >> shift) & 255] += (keys[r] & mask) == prefix;
        int byte = 255;
        while (hist[byte] < need) need -= hist[byte--];
        prefix |= (uint32_t)byte << shift;
        mask |= 255u << shift;
    }
    const uint32_t u = prefix & 0x80000000u ? prefix ^ 0x80000000u : ~prefix;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Rearranges x[0..n), whose indices ascend, so that its first k are the k first in (value desc,
 * index asc) order: those above the k-th largest value, then the lowest-indexed of its ties.
 * keys: n uint32 of scratch. */
static void select_top(pair *x, int n, int k, uint32_t *keys) {
    if (k == 1) { /* routing with s = 1: one pass for the first in the order (the same element) */
        int best = 0;
        for (int i = 1; i < n; i++)
            if (before(x[i], x[best])) best = i;
        pair t = x[0]; x[0] = x[best]; x[best] = t;
        return;
    }
    if (k >= n) return;
    const float kth = kth_largest(x, n, k, keys);
    int ties = k;
    for (int r = 0; r < n; r++) ties -= x[r].v > kth;
    for (int r = 0, taken = 0; r < n && taken < k; r++) /* in index order: the lowest ties first */
        if (x[r].v > kth || (x[r].v == kth && ties-- > 0)) { pair t = x[taken]; x[taken++] = x[r]; x[r] = t; }
}

static int cmp_idx(const void *a, const void *b) { return *(const int32_t *)a - *(const int32_t *)b; }

/* The inverted routing: for expert e, entries inv[off[e] .. off[e+1]) are the codes i * s + slot
 * of the queries routed to it, in query order. */
static void invert_routes(int32_t *inv, int32_t *off, const int32_t *rt, int T, int S, int me) {
    for (int e = 0; e <= me; e++) off[e] = 0;
    for (int i = 0; i < T * S; i++)
        if (rt[i] >= 0) off[rt[i] + 1]++;
    for (int e = 0; e < me; e++) off[e + 1] += off[e];
    for (int i = 0; i < T * S; i++)
        if (rt[i] >= 0) inv[off[rt[i]]++] = i;
    for (int e = me; e > 0; e--) off[e] = off[e - 1];
    off[0] = 0;
}

/* rows idx[0..n) of X (., d) into out (n, d) */
static void gather_rows(float *out, const float *X, const int32_t *idx, int n, int d, int div) {
    for (int r = 0; r < n; r++) memcpy(out + (size_t)r * d, X + (size_t)(idx[r] / div) * d, sizeof(float) * d);
}
/* X rows idx[r] (/div) += rows of in (n, d), in order */
static void scatter_add(float *X, const float *in, const int32_t *idx, int n, int d, int div) {
    for (int r = 0; r < n; r++) {
        float *x = X + (size_t)(idx[r] / div) * d;
        const float *y = in + (size_t)r * d;
        for (int j = 0; j < d; j++) x[j] += y[j];
    }
}

/* Row z (T) of A K^T becomes the compression softmax over the valid keys, in place. */
static void compression_softmax(float *z, const uint8_t *mask, int T, float scale) {
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

/* dropout factor of entry t of query i's logit list */
static inline float keep_factor(uint32_t rs, int t, uint32_t thr, float keep_scale) {
    return thr ? (lra_keep(rs, (uint32_t)t, thr) ? keep_scale : 0.0f) : 1.0f;
}

static void mita_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws, void *scratch,
                         const float *q, const float *k, const float *v, const float *params) {
    (void)params;
    const mita_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, M = c->m, S = c->s, Kx = c->k;
    const float scale = 1.0f / sqrtf((float)hs), tau_inv = c->scale_sqrt ? scale : 1.0f / (float)hs;
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    const layout l = lay(c, s);
    float *w0 = ws, *t0 = scratch;

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        float *hw = w0 + (size_t)bh * l.head, *tw = t0 + (size_t)omp_get_thread_num() * l.thread;
        float *A = hw + l.a, *Vbar = hw + l.vbar, *lse = hw + l.lse;
        float *Pc = tw + l.pc, *G = tw + l.g, *Lg = tw + l.lg;
        float *Psh = tw + l.gs, *Qe = tw + l.qe, *Ke = tw + l.ke, *Ve = tw + l.ve, *R = tw + l.t1, *Pr = tw + l.pr;
        int32_t *ex = (int32_t *)(hw + l.ex), *rt = (int32_t *)(hw + l.rt), *idx = (int32_t *)(tw + l.idx);
        int32_t *ne = (int32_t *)(hw + l.ne), *inv = (int32_t *)(tw + l.inv), *off = (int32_t *)(tw + l.off);
        pair *sel = (pair *)(tw + l.sel);
        uint32_t *keys = (uint32_t *)(tw + l.keys);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head;
        float *O = o + head;
        const int L = lra_valid_rows(mask, T, idx);
        const int me = M < L ? M : L, ke = Kx < L ? Kx : L, se = S < me ? S : me, base = c->shared ? me : 0;
        ne[0] = me;
        ne[1] = ke;
        memset(O, 0, sizeof(float) * T * hs);
        if (me == 0) continue;
        lra_pool_rows_forward(A, Q, mask, L, me, hs); /* landmarks */
        /* activations A k^T (me x T): experts by selection, then the compression softmax */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, me, T, hs, 1.0f, A, hs, K, hs, 0.0f, Pc, T);
        for (int j = 0; j < me; j++) {
            float *z = Pc + (size_t)j * T;
            for (int r = 0; r < L; r++) sel[r] = (pair){z[idx[r]], idx[r]};
            select_top(sel, L, ke, keys);
            int32_t *e = ex + (size_t)j * Kx;
            for (int r = 0; r < ke; r++) e[r] = sel[r].i;
            qsort(e, (size_t)ke, sizeof(int32_t), cmp_idx);
            if (c->shared) compression_softmax(z, mask, T, scale); /* it feeds only the shared expert */
        }
        if (c->shared)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, me, hs, T, 1.0f, Pc, T, V, hs, 0.0f, Vbar, hs);
        /* G = Q A^T (T x me, stride M): routing and, scaled, the shared logits */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, me, hs, 1.0f, Q, hs, A, hs, 0.0f, G, M);
        for (int i = 0; i < T; i++) {
            const float *gi = G + (size_t)i * M;
            int32_t *ri = rt + (size_t)i * S;
            for (int j = 0; j < me; j++) sel[j] = (pair){gi[j], j};
            select_top(sel, me, se, keys);
            for (int e = 0; e < S; e++) ri[e] = e < se ? sel[e].i : -1;
            qsort(ri, (size_t)se, sizeof(int32_t), cmp_idx);
        }
        /* routed logits, one expert at a time: its queries against its k keys in one sgemm */
        invert_routes(inv, off, rt, T, S, me);
        for (int e = 0; e < me; e++) {
            const int n = off[e + 1] - off[e];
            if (!n) continue;
            const int32_t *codes = inv + off[e];
            gather_rows(Qe, Q, codes, n, hs, S);
            gather_rows(Ke, K, ex + (size_t)e * Kx, ke, hs, 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, ke, hs, scale, Qe, hs, Ke, hs, 0.0f, R, ke);
            for (int r = 0; r < n; r++) memcpy(Lg + (size_t)codes[r] * Kx, R + (size_t)r * ke, sizeof(float) * ke);
        }
        /* one softmax per query over its m shared and se*ke routed logits */
        for (int i = 0; i < T; i++) {
            const float *gi = G + (size_t)i * M, *li = Lg + (size_t)i * S * Kx;
            float mx = NEG_BIG, sum = 0.0f;
            if (c->shared)
                for (int j = 0; j < me; j++) mx = gi[j] * tau_inv > mx ? gi[j] * tau_inv : mx;
            for (int e = 0; e < se; e++)
                for (int r = 0; r < ke; r++) mx = li[e * Kx + r] > mx ? li[e * Kx + r] : mx;
            if (c->shared)
                for (int j = 0; j < me; j++) sum += expf(gi[j] * tau_inv - mx);
            for (int e = 0; e < se; e++)
                for (int r = 0; r < ke; r++) sum += expf(li[e * Kx + r] - mx);
            lse[i] = mx + logf(sum);
            const uint32_t rs = thr ? (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)i) : 0;
            if (c->shared)
                for (int j = 0; j < me; j++)
                    Psh[(size_t)i * me + j] = expf(gi[j] * tau_inv - lse[i]) * keep_factor(rs, j, thr, keep_scale);
            float *pri = Pr + (size_t)i * S * Kx;
            for (int e = 0; e < se; e++)
                for (int r = 0; r < ke; r++)
                    pri[e * Kx + r] = expf(li[e * Kx + r] - lse[i]) * keep_factor(rs, base + e * ke + r, thr, keep_scale);
        }
        if (c->shared)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, me, 1.0f, Psh, me, Vbar, hs, 0.0f, O, hs);
        /* routed values, one expert at a time, added to each query's row in expert order */
        for (int e = 0; e < me; e++) {
            const int n = off[e + 1] - off[e];
            if (!n) continue;
            const int32_t *codes = inv + off[e];
            for (int r = 0; r < n; r++) memcpy(R + (size_t)r * ke, Pr + (size_t)codes[r] * Kx, sizeof(float) * ke);
            gather_rows(Ve, V, ex + (size_t)e * Kx, ke, hs, 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, ke, 1.0f, R, ke, Ve, hs, 0.0f, Qe, hs);
            scatter_add(O, Qe, codes, n, hs, S);
        }
    }
}

static void mita_backward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *dq, float *dk,
                          float *dv, float *dparams, void *ws, void *scratch, const float *dout, const float *o, const float *q,
                          const float *k, const float *v, const float *params) {
    (void)params; (void)dparams;
    const mita_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, M = c->m, S = c->s, Kx = c->k;
    const float scale = 1.0f / sqrtf((float)hs), tau_inv = c->scale_sqrt ? scale : 1.0f / (float)hs;
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    const layout l = lay(c, s);
    float *w0 = ws, *t0 = scratch;

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        float *hw = w0 + (size_t)bh * l.head, *tw = t0 + (size_t)omp_get_thread_num() * l.thread;
        const float *A = hw + l.a, *Vbar = hw + l.vbar, *lse = hw + l.lse;
        float *Pc = tw + l.pc, *G = tw + l.g, *Lg = tw + l.lg;
        float *Gs = tw + l.gs, *Gd = tw + l.gd, *dPc = tw + l.dpc, *dA = tw + l.da, *dVbar = tw + l.dvb;
        float *Qe = tw + l.qe, *dOe = tw + l.oe, *Ke = tw + l.ke, *Ve = tw + l.ve, *T1 = tw + l.t1, *T2 = tw + l.t2;
        float *Dq = tw + l.pr; /* D_i = dO_i . o_i for every query (T floats of the routed-probability scratch) */
        const int32_t *ex = (const int32_t *)(hw + l.ex), *rt = (const int32_t *)(hw + l.rt);
        const int32_t *ne = (const int32_t *)(hw + l.ne);
        int32_t *idx = (int32_t *)(tw + l.idx), *inv = (int32_t *)(tw + l.inv), *off = (int32_t *)(tw + l.off);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head, *dO = dout + head, *O = o + head;
        float *dQ = dq + head, *dK = dk + head, *dV = dv + head;
        const int me = ne[0], ke = ne[1];
        if (me == 0) continue;
        const int base = c->shared ? me : 0;
        const int L = lra_valid_rows(mask, T, idx);
        for (int i = 0; i < T; i++) {
            float D = 0.0f;
            for (int d = 0; d < hs; d++) D += dO[(size_t)i * hs + d] * O[(size_t)i * hs + d];
            Dq[i] = D;
        }
        memset(dA, 0, sizeof(float) * (size_t)me * hs);
        /* routed entries, one expert at a time: dS = p (z dP - D) scale, dP = dO V^T */
        invert_routes(inv, off, rt, T, S, me);
        for (int e = 0; e < me; e++) {
            const int n = off[e + 1] - off[e];
            if (!n) continue;
            const int32_t *codes = inv + off[e], *keys = ex + (size_t)e * Kx;
            gather_rows(Qe, Q, codes, n, hs, S);
            gather_rows(dOe, dO, codes, n, hs, S);
            gather_rows(Ke, K, keys, ke, hs, 1);
            gather_rows(Ve, V, keys, ke, hs, 1);
            /* the routed logits again: forward's sgemm on the same gathered rows */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, ke, hs, scale, Qe, hs, Ke, hs, 0.0f, Lg, ke);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, ke, hs, 1.0f, dOe, hs, Ve, hs, 0.0f, T1, ke);
            for (int r = 0; r < n; r++) {
                const int i = codes[r] / S, slot = codes[r] % S;
                const uint32_t rs = thr ? (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)i) : 0;
                const float *lr = Lg + (size_t)r * ke;
                float *dp = T1 + (size_t)r * ke, *pz = T2 + (size_t)r * ke;
                for (int j = 0; j < ke; j++) {
                    const float p = expf(lr[j] - lse[i]), z = keep_factor(rs, base + slot * ke + j, thr, keep_scale);
                    dp[j] = p * (dp[j] * z - Dq[i]) * scale; /* dS */
                    pz[j] = p * z;
                }
            }
            /* dV_e = (p z)^T dO_e, dQ_e = dS K_e, dK_e = dS^T Q_e, each scattered back in a fixed order;
             * the order of the products lets each output reuse a gather buffer no longer needed */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ke, hs, n, 1.0f, T2, ke, dOe, hs, 0.0f, Ve, hs);
            scatter_add(dV, Ve, keys, ke, hs, 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, ke, 1.0f, T1, ke, Ke, hs, 0.0f, dOe, hs);
            scatter_add(dQ, dOe, codes, n, hs, S);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ke, hs, n, 1.0f, T1, ke, Qe, hs, 0.0f, Ke, hs);
            scatter_add(dK, Ke, keys, ke, hs, 1);
        }
        if (c->shared) {
            /* G = Q A^T again, as forward computed it */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, me, hs, 1.0f, Q, hs, A, hs, 0.0f, G, M);
            /* shared logits q_i . A_j * tau_inv: dP = dO Vbar^T, then dS (scale folded in) and p z */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, me, hs, 1.0f, dO, hs, Vbar, hs, 0.0f, Gs, me);
            for (int i = 0; i < T; i++) {
                const uint32_t rs = thr ? (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)i) : 0;
                for (int j = 0; j < me; j++) {
                    const float p = expf(G[(size_t)i * M + j] * tau_inv - lse[i]), z = keep_factor(rs, j, thr, keep_scale);
                    float *g = Gs + (size_t)i * me + j;
                    *g = p * (*g * z - Dq[i]) * tau_inv;
                    Gd[(size_t)i * me + j] = p * z;
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, me, 1.0f, Gs, me, A, hs, 1.0f, dQ, hs);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, me, hs, T, 1.0f, Gs, me, Q, hs, 1.0f, dA, hs);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, me, hs, T, 1.0f, Gd, me, dO, hs, 0.0f, dVbar, hs);
            /* the compression softmax again, in G's place (G is done with) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, me, T, hs, 1.0f, A, hs, K, hs, 0.0f, Pc, T);
            for (int j = 0; j < me; j++) compression_softmax(Pc + (size_t)j * T, mask, T, scale);
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
        lra_pool_rows_backward(dQ, dA, mask, L, me, hs); /* through the pooling into q */
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
    .saved_bytes = mita_saved_bytes,
    .scratch_bytes = mita_scratch_bytes,
    .flops = mita_flops,
    .forward = mita_forward,
    .backward = mita_backward,
    .diagnostics = mita_diagnostics,
};
