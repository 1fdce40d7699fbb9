/* moe.c - routing mixture-of-experts attention (MoBA, Moonshot AI 2025), non-causal.
 *
 * Keys are cut into contiguous blocks of b (the last may be shorter); each block is an expert.
 *   kbar_i = mean of the valid keys of block i          (a block with none is never chosen)
 *   g_i(q) = q . kbar_i                                  (no scale, no parameters)
 *   S(q)   = top-s blocks by g (ties: lower index); own=1 forces the query's own block in, and
 *            it counts toward s
 *   o      = softmax over the valid keys of the blocks in S of q k^T / sqrt(d), times v
 * Routing is hard: no gradient through g or the choice; gradients reach q and the selected k, v.
 * When a batch is shorter than s blocks (or has fewer blocks with a valid key), every eligible
 * block is used. Attention dropout follows full.c: the mask of (head, query i, key j) is the
 * same function of the seed, so moe with s = all blocks reproduces full attention exactly.
 *
 * Workspace per call: the chosen blocks (B, NH, T, s) and the row log-sum-exp (B, NH, T), saved
 * for backward; the block means and valid counts of every head, computed once per head; per
 * thread, gate values and one row of logits.
 * Parallel over (batch*head, query block) forward and over batch*head backward, where a head's dk
 * and dv are written by one thread only, so results do not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "attention.h"
#include "vec.h"

#define NEG_BIG (-1e30f) /* see full.c: this file builds with -ffast-math */
enum { QCHUNK = 64 };

typedef struct {
    int b, s, own;
    int nthreads;
    lra_attn_shape max;
} moe_ctx;

static lra_status moe_opt(const char *key, const char *val, void *user, char *err) {
    moe_ctx *c = user;
    if (strcmp(key, "b") == 0) return lra_attn_opt_int("moe", key, val, 1, 1 << 20, &c->b, err);
    if (strcmp(key, "s") == 0) return lra_attn_opt_int("moe", key, val, 1, 1 << 20, &c->s, err);
    if (strcmp(key, "own") == 0) return lra_attn_opt_int("moe", key, val, 0, 1, &c->own, err);
    return lra_fail(err, LRA_ERR_USAGE, "moe: unknown option '%s' (known: b, s, own)", key);
}

static int nblocks(const moe_ctx *c, int T) { return (T + c->b - 1) / c->b; }

static lra_status moe_configure(void **ctx, const char *opts, lra_attn_shape max, int nthreads, char *err) {
    moe_ctx c = {.b = 64, .s = 2, .own = 1, .nthreads = nthreads, .max = max};
    lra_status st = lra_attn_parse_opts("moe", opts, moe_opt, &c, err);
    if (st != LRA_OK) return st;
    if (c.b > max.T)
        return lra_fail(err, LRA_ERR_USAGE, "moe: b=%d exceeds the sequence length T=%d", c.b, max.T);
    if (c.s > nblocks(&c, max.T))
        return lra_fail(err, LRA_ERR_USAGE, "moe: s=%d exceeds the number of blocks ceil(T/b) = %d (T=%d, b=%d)",
                        c.s, nblocks(&c, max.T), max.T, c.b);
    moe_ctx *p = malloc(sizeof *p);
    if (!p) return lra_fail(err, LRA_ERR_NOMEM, "moe: out of memory");
    *p = c;
    *ctx = p;
    return LRA_OK;
}

static void moe_release(void *ctx) { free(ctx); }

static cJSON *moe_describe(const void *ctx) {
    const moe_ctx *c = ctx;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "b", c->b);
    cJSON_AddNumberToObject(j, "s", c->s);
    cJSON_AddNumberToObject(j, "own", c->own);
    return j;
}

/* per head: block means and valid counts; per thread: gate, taken, one row of logits */
static size_t means_floats(const moe_ctx *c, lra_attn_shape s) { return (size_t)nblocks(c, s.T) * (s.hs + 1); }
static size_t scratch_floats(const moe_ctx *c, lra_attn_shape s) {
    return 2 * (size_t)nblocks(c, s.T) + (size_t)c->s * c->b + 16;
}

static size_t moe_workspace_bytes(const void *ctx, lra_attn_shape s) {
    const moe_ctx *c = ctx;
    const size_t rows = (size_t)s.B * s.NH * s.T;
    return rows * (size_t)c->s * sizeof(int32_t) + rows * sizeof(float) +
           (size_t)s.B * s.NH * means_floats(c, s) * sizeof(float) +
           (size_t)c->nthreads * scratch_floats(c, s) * sizeof(float);
}

static void moe_flops(const void *ctx, lra_attn_shape s, double *fwd, double *bwd) {
    const moe_ctx *c = ctx;
    const double heads = (double)s.B * s.NH, T = s.T, d = s.hs, nb = nblocks(c, s.T);
    const double keys = (double)c->s * c->b < T ? (double)c->s * c->b : T;
    *fwd = heads * (T * d + 2.0 * T * nb * d + 4.0 * T * keys * d); /* block means, gate, attention */
    *bwd = heads * 10.0 * T * keys * d; /* recomputed logits, dP, dq, dk, dv */
}

/* Block means of the valid keys of one head; cnt[i] = number of valid keys of block i. */
static void block_means(const moe_ctx *c, float *kbar, float *cnt, const float *k, const uint8_t *mask, int T,
                        int hs) {
    const int nb = nblocks(c, T);
    for (int i = 0; i < nb; i++) {
        float *m = kbar + (size_t)i * hs;
        memset(m, 0, sizeof(float) * hs);
        int n = 0;
        for (int t = i * c->b; t < T && t < (i + 1) * c->b; t++) {
            if (!mask[t]) continue;
            n++;
            for (int d = 0; d < hs; d++) m[d] += k[(size_t)t * hs + d];
        }
        cnt[i] = (float)n;
        if (n)
            for (int d = 0; d < hs; d++) m[d] /= (float)n;
    }
}

/* Chooses the blocks of query row q: writes up to s block ids (ascending) into sel, -1 past the
 * last; returns how many. */
static int route(const moe_ctx *c, int32_t *sel, float *gate, float *tk, const float *q, const float *kbar,
                 const float *cnt, int own, int T, int hs) {
    const int nb = nblocks(c, T);
    int eligible = 0;
    for (int i = 0; i < nb; i++) {
        if (cnt[i] == 0) { gate[i] = NEG_BIG; continue; }
        eligible++;
        float g = 0.0f;
        for (int d = 0; d < hs; d++) g += q[d] * kbar[(size_t)i * hs + d];
        gate[i] = g;
    }
    int want = c->s < eligible ? c->s : eligible, n = 0;
    memset(tk, 0, sizeof(float) * nb);
    if (c->own && own < nb && cnt[own] > 0) { tk[own] = 1; n++; }
    /* s is small: repeated scans (ties go to the lower index: strict >) */
    while (n < want) {
        int best = -1;
        for (int i = 0; i < nb; i++)
            if (!tk[i] && cnt[i] > 0 && (best < 0 || gate[i] > gate[best])) best = i;
        tk[best] = 1;
        n++;
    }
    int w = 0;
    for (int i = 0; i < nb && w < c->s; i++)
        if (tk[i]) sel[w++] = i;
    for (int i = w; i < c->s; i++) sel[i] = -1;
    return w;
}

static void moe_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws,
                        const float *q, const float *k, const float *v, const float *params) {
    (void)params;
    const moe_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, nq = (T + QCHUNK - 1) / QCHUNK, nb = nblocks(c, T);
    const float scale = 1.0f / sqrtf((float)hs);
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    int32_t *sel_all = ws;
    float *lse = (float *)(sel_all + (size_t)BH * T * c->s);
    float *means0 = lse + (size_t)BH * T, *scratch0 = means0 + (size_t)BH * means_floats(c, s);
    const size_t per = scratch_floats(c, s), per_head = means_floats(c, s);

#pragma omp parallel for schedule(static) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        float *kbar = means0 + (size_t)bh * per_head;
        block_means(c, kbar, kbar + (size_t)nb * hs, k + (size_t)bh * T * hs, a->mask + (size_t)(bh / s.NH) * T, T, hs);
    }
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++)
        for (int qc = 0; qc < nq; qc++) {
            const float *kbar = means0 + (size_t)bh * per_head, *cnt = kbar + (size_t)nb * hs;
            float *gate = scratch0 + (size_t)omp_get_thread_num() * per, *taken = gate + nb, *row = taken + nb;
            const size_t head = (size_t)bh * T * hs;
            const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
            for (int i = qc * QCHUNK; i < T && i < (qc + 1) * QCHUNK; i++) {
                const float *qi = q + head + (size_t)i * hs;
                int32_t *sel = sel_all + ((size_t)bh * T + i) * c->s;
                int ns = route(c, sel, gate, taken, qi, kbar, cnt, i / c->b, T, hs);
                float mx = NEG_BIG;
                int n = 0;
                for (int e = 0; e < ns; e++)
                    for (int j = sel[e] * c->b; j < T && j < (sel[e] + 1) * c->b; j++, n++) {
                        float l = 0.0f;
                        for (int d = 0; d < hs; d++) l += qi[d] * k[head + (size_t)j * hs + d];
                        row[n] = mask[j] ? l * scale : NEG_BIG;
                        mx = row[n] > mx ? row[n] : mx;
                    }
                float sum = 0.0f;
                for (int t = 0; t < n; t++) {
                    row[t] = expf(row[t] - mx);
                    sum += row[t];
                }
                float *out = o + head + (size_t)i * hs;
                memset(out, 0, sizeof(float) * hs);
                const uint32_t rs = thr ? (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)i) : 0;
                const float inv = sum > 0 ? 1.0f / sum : 0.0f;
                n = 0;
                for (int e = 0; e < ns; e++)
                    for (int j = sel[e] * c->b; j < T && j < (sel[e] + 1) * c->b; j++, n++) {
                        float p = row[n] * inv;
                        if (thr) p *= lra_keep(rs, (uint32_t)j, thr) ? keep_scale : 0.0f;
                        const float *vj = v + head + (size_t)j * hs;
                        for (int d = 0; d < hs; d++) out[d] += p * vj[d];
                    }
                lse[(size_t)bh * T + i] = sum > 0 ? mx + logf(sum) : -NEG_BIG;
            }
        }
}

static void moe_backward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *dq, float *dk,
                         float *dv, float *dparams, void *ws, const float *dout, const float *o, const float *q,
                         const float *k, const float *v, const float *params) {
    (void)params; (void)dparams;
    const moe_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    const int32_t *sel_all = ws;
    const float *lse = (const float *)(sel_all + (size_t)BH * T * c->s);

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        const size_t head = (size_t)bh * T * hs;
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        for (int i = 0; i < T; i++) {
            const int32_t *sel = sel_all + ((size_t)bh * T + i) * c->s;
            const float *qi = q + head + (size_t)i * hs, *gi = dout + head + (size_t)i * hs;
            const float *oi = o + head + (size_t)i * hs;
            float *dqi = dq + head + (size_t)i * hs;
            float D = 0.0f;
            for (int d = 0; d < hs; d++) D += gi[d] * oi[d];
            const float li = lse[(size_t)bh * T + i];
            const uint32_t rs = thr ? (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)i) : 0;
            for (int e = 0; e < c->s && sel[e] >= 0; e++)
                for (int j = sel[e] * c->b; j < T && j < (sel[e] + 1) * c->b; j++) {
                    if (!mask[j]) continue;
                    const float *kj = k + head + (size_t)j * hs, *vj = v + head + (size_t)j * hs;
                    float l = 0.0f, dp = 0.0f;
                    for (int d = 0; d < hs; d++) {
                        l += qi[d] * kj[d];
                        dp += gi[d] * vj[d];
                    }
                    const float p = expf(l * scale - li);
                    const float z = thr ? (lra_keep(rs, (uint32_t)j, thr) ? keep_scale : 0.0f) : 1.0f;
                    const float ds = p * (dp * z - D) * scale;
                    lra_axpy3(dqi, kj, ds, dk + head + (size_t)j * hs, qi, ds, dv + head + (size_t)j * hs, gi, p * z, hs);
                }
        }
    }
}

/* Over the last forward's batch: queries (real ones) per expert, max and mean over the experts
 * that hold a valid key, and the fraction of valid keys that no query selected. */
static cJSON *moe_diagnostics(const void *ctx, const void *ws, lra_attn_shape s, const lra_attn_args *a) {
    const moe_ctx *c = ctx;
    const int T = s.T, nb = nblocks(c, T), BH = s.B * s.NH;
    const int32_t *sel = ws;
    long *count = calloc((size_t)nb, sizeof(long)), *valid = calloc((size_t)nb, sizeof(long));
    double maxq = 0, sumq = 0;
    long experts = 0, keys = 0, unselected = 0;
    for (int bh = 0; bh < BH && count && valid; bh++) {
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        memset(count, 0, sizeof(long) * nb);
        memset(valid, 0, sizeof(long) * nb);
        for (int t = 0; t < T; t++) valid[t / c->b] += mask[t];
        for (int i = 0; i < T; i++) {
            if (!mask[i]) continue;
            for (int e = 0; e < c->s; e++) {
                int32_t blk = sel[((size_t)bh * T + i) * c->s + e];
                if (blk >= 0) count[blk]++;
            }
        }
        for (int e = 0; e < nb; e++) {
            if (!valid[e]) continue;
            maxq = count[e] > maxq ? (double)count[e] : maxq;
            sumq += (double)count[e];
            experts++;
            keys += valid[e];
            if (!count[e]) unselected += valid[e];
        }
    }
    free(count);
    free(valid);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "queries_per_expert_max", maxq);
    cJSON_AddNumberToObject(j, "queries_per_expert_mean", experts ? sumq / (double)experts : 0);
    cJSON_AddNumberToObject(j, "unselected_key_fraction", keys ? (double)unselected / (double)keys : 0);
    return j;
}

const lra_attn_i lra_attn_moe = {
    .name = "moe",
    .summary = "routing MoE attention (MoBA, non-causal): top-s key blocks per query; b, s, own",
    .configure = moe_configure,
    .release = moe_release,
    .describe = moe_describe,
    .workspace_bytes = moe_workspace_bytes,
    .flops = moe_flops,
    .forward = moe_forward,
    .backward = moe_backward,
    .diagnostics = moe_diagnostics,
};
