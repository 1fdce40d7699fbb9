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
 * Speed comes from inverting the routing: for every block, the queries that chose it are gathered
 * into tiles of up to 64 rows, so logits, p v and every backward product run on sgemm against the
 * block's contiguous keys and values. Gates q . kbar come from sgemm over tiles of queries too.
 * Forward runs an online softmax per query over its blocks (running max and sum, o rescaled when
 * the max rises), so no per-(query, slot) partial output exists.
 *
 * Memory. Saved for backward: the chosen blocks (B, NH, T, s) and the row log-sum-exp (B, NH, T),
 * 4 (s + 1) bytes per (batch, head, token). Per thread: the tiles, one head's block means and
 * counts, its routing inverted (T s int32) and each query's running sum (T; see moe_scratch).
 * Parallel over batch*head (one thread routes a head and owns its o, dq, dk and dv, working
 * through it in a fixed order): results do not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "backend.h"

#define NEG_BIG (-1e30f) /* see full.c: this file builds with -ffast-math */

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

/* Saved for backward: the chosen blocks sel (B, NH, T, s) and the row log-sum-exp (B, NH, T).
 * Per thread: the tiles of one block's gathered queries, the gates of GT queries, one head's block
 * means and counts, and its routing inverted. */
enum { QT = 64, GT = 16 }; /* queries per attention tile (rows gathered for one sgemm); per gate tile */

typedef struct {
    float *Qg, *Gg, *Ag;  /* (QT, hs) each: gathered q, gathered dO, tile result (acc or dQ) */
    float *S, *P, *dP;    /* (QT, b) each: logits, dropped probabilities, their gradient */
    float *gate;          /* (GT, nb) gate tile, then 2 s floats for route's best-so-far */
    float *kbar, *cnt;    /* (nb, hs) block means, (nb) their valid keys */
    float *qsum;          /* (T) each query's running sum of exponentials in forward */
    int32_t *list, *off;  /* (T*s) routing inverted: query*s + slot, grouped by block; (nb + 1) */
} moe_scratch;

static size_t scratch_floats(const moe_ctx *c, lra_attn_shape s) {
    const size_t T = (size_t)s.T, hs = (size_t)s.hs, nb = (size_t)nblocks(c, s.T), b = (size_t)c->b;
    return 3 * QT * hs + 3 * QT * b + GT * nb + 2 * (size_t)c->s + nb * (hs + 1) + T + T * c->s + nb + 1;
}

static moe_scratch scratch_at(const moe_ctx *c, lra_attn_shape s, float *base) {
    const size_t T = (size_t)s.T, hs = (size_t)s.hs, nb = (size_t)nblocks(c, s.T), b = (size_t)c->b;
    moe_scratch x;
    x.Qg = base;
    x.Gg = x.Qg + QT * hs;
    x.Ag = x.Gg + QT * hs;
    x.S = x.Ag + QT * hs;
    x.P = x.S + QT * b;
    x.dP = x.P + QT * b;
    x.gate = x.dP + QT * b;
    x.kbar = x.gate + GT * nb + 2 * (size_t)c->s;
    x.cnt = x.kbar + nb * hs;
    x.qsum = x.cnt + nb;
    x.list = (int32_t *)(x.qsum + T);
    x.off = x.list + T * c->s;
    return x;
}

/* saved: each query's blocks (s int32) and log-sum-exp, 4 (s + 1) bytes per (batch, head, token) */
static size_t moe_saved_bytes(const void *ctx, lra_attn_shape s) {
    const moe_ctx *c = ctx;
    const size_t rows = (size_t)s.B * s.NH * s.T;
    return rows * (size_t)c->s * sizeof(int32_t) + rows * sizeof(float);
}

static size_t moe_scratch_bytes(const void *ctx, lra_attn_shape s) {
    const moe_ctx *c = ctx;
    return (size_t)c->nthreads * scratch_floats(c, s) * sizeof(float);
}

static void moe_flops(const void *ctx, lra_attn_shape s, double *fwd, double *bwd) {
    const moe_ctx *c = ctx;
    const double heads = (double)s.B * s.NH, T = s.T, d = s.hs, nb = nblocks(c, s.T);
    const double keys = (double)c->s * c->b < T ? (double)c->s * c->b : T;
    *fwd = heads * (T * d + 2.0 * T * nb * d + 4.0 * T * keys * d); /* block means, gates, attention */
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

/* Chooses the blocks of one query from its gate row: writes up to s block ids (ascending) into
 * sel, -1 past the last; returns how many. Blocks without a valid key are never chosen. One pass
 * keeps the best s so far in descending order (ties go to the lower index: strict >); best holds
 * 2 s floats of scratch. */
static int route(const moe_ctx *c, int32_t *sel, const float *gate, float *best, const float *cnt, int own, int nb) {
    const int forced = c->own && own < nb && cnt[own] > 0;
    const int want = c->s - forced;
    float *bv = best;
    int32_t *bi = (int32_t *)(best + c->s);
    int n = 0;
    for (int i = 0; i < nb && want > 0; i++) {
        if (cnt[i] == 0 || (forced && i == own)) continue;
        const float g = gate[i];
        if (n == want && !(g > bv[n - 1])) continue;
        int p = n < want ? n++ : n - 1;
        while (p > 0 && g > bv[p - 1]) { bv[p] = bv[p - 1]; bi[p] = bi[p - 1]; p--; }
        bv[p] = g;
        bi[p] = i;
    }
    if (forced) bi[n++] = own;
    for (int x = 1; x < n; x++) /* ascending block order: insertion sort of at most s ids */
        for (int y = x; y > 0 && bi[y] < bi[y - 1]; y--) { int32_t t = bi[y]; bi[y] = bi[y - 1]; bi[y - 1] = t; }
    for (int x = 0; x < c->s; x++) sel[x] = x < n ? bi[x] : -1;
    return n;
}

/* Inverts one head's routing: off[e]..off[e+1] in list are the (query*s + slot) entries that chose
 * block e, in ascending query order. */
static void invert(const moe_ctx *c, int32_t *list, int32_t *off, const int32_t *sel, int T, int nb) {
    memset(off, 0, sizeof(int32_t) * (nb + 1));
    for (int x = 0; x < T * c->s; x++)
        if (sel[x] >= 0) off[sel[x] + 1]++;
    for (int e = 0; e < nb; e++) off[e + 1] += off[e];
    for (int x = 0; x < T * c->s; x++)
        if (sel[x] >= 0) list[off[sel[x]]++] = x;
    for (int e = nb; e > 0; e--) off[e] = off[e - 1]; /* off[e] was advanced to the end of block e */
    off[0] = 0;
}

/* The key range of block e. */
static void block_range(const moe_ctx *c, int e, int T, int *j0, int *nk) {
    *j0 = e * c->b;
    *nk = T - *j0 < c->b ? T - *j0 : c->b;
}

static void gather_rows(float *dst, const float *src, const int32_t *ent, int n, int s, int hs) {
    for (int r = 0; r < n; r++) memcpy(dst + (size_t)r * hs, src + (size_t)(ent[r] / s) * hs, sizeof(float) * hs);
}

/* The next tile of a block's entries (query*s + slot, ascending) from list[at .. end): the rows
 * of `src` of up to QT of them gathered into dst; returns how many. */
static int gather_tile(float *dst, const float *src, const int32_t *list, int at, int end, int S, int hs) {
    const int n = end - at < QT ? end - at : QT;
    gather_rows(dst, src, list + at, n, S, hs);
    return n;
}

/* S (n x nk, stride b) = the gathered queries' logits against block [j0, j0 + nk), masked keys NEG_BIG */
static void block_logits(const moe_ctx *c, float *S, const float *Qg, const float *K, const uint8_t *mask, int n,
                         int j0, int nk, int hs, float scale) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, hs, scale, Qg, hs, K + (size_t)j0 * hs, hs, 0.0f, S,
                c->b);
    for (int r = 0; r < n; r++)
        for (int j = 0; j < nk; j++) S[(size_t)r * c->b + j] = mask[j0 + j] ? S[(size_t)r * c->b + j] : NEG_BIG;
}

/* Routes one head: block means, gates from sgemm GT queries at a time, each query's blocks into
 * sel (T, s), then the routing inverted into x. */
static void route_head(const moe_ctx *c, const moe_scratch *x, int32_t *sel, const float *Q, const float *K,
                       const uint8_t *mask, int T, int hs) {
    const int nb = nblocks(c, T);
    block_means(c, x->kbar, x->cnt, K, mask, T, hs);
    for (int i0 = 0; i0 < T; i0 += GT) {
        const int n = T - i0 < GT ? T - i0 : GT;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nb, hs, 1.0f, Q + (size_t)i0 * hs, hs, x->kbar, hs,
                    0.0f, x->gate, nb);
        for (int r = 0; r < n; r++)
            route(c, sel + (size_t)(i0 + r) * c->s, x->gate + (size_t)r * nb, x->gate + (size_t)GT * nb, x->cnt,
                  (i0 + r) / c->b, nb);
    }
    invert(c, x->list, x->off, sel, T, nb);
}

/* Forward per head: routing, then over each block's gathered queries an online softmax (each
 * query's running max and sum; o accumulates unnormalised and is rescaled when a block raises the
 * max), so memory per query is two floats. Blocks are visited in ascending order by one thread
 * per head: the result does not depend on the thread count. */
static void moe_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws,
                        void *scratch, const float *q, const float *k, const float *v, const float *params) {
    (void)params;
    const moe_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, nb = nblocks(c, T), S = c->s;
    const float scale = 1.0f / sqrtf((float)hs);
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    int32_t *sel_all = ws;
    float *lse_all = (float *)(sel_all + (size_t)BH * T * S), *scratch0 = scratch;
    const size_t per = scratch_floats(c, s);

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        const moe_scratch x = scratch_at(c, s, scratch0 + (size_t)omp_get_thread_num() * per);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head;
        float *O = o + head, *lse = lse_all + (size_t)bh * T;
        route_head(c, &x, sel_all + (size_t)bh * T * S, Q, K, mask, T, hs);
        /* the softmax online, as full.c's: lse holds each query's running max until the end */
        float *mx = lse, *sum = x.qsum;
        for (int i = 0; i < T; i++) { mx[i] = NEG_BIG; sum[i] = 0.0f; }
        memset(O, 0, sizeof(float) * T * hs);
        for (int e = 0; e < nb; e++) {
            int j0, nk;
            block_range(c, e, T, &j0, &nk);
            for (int at = x.off[e], n; at < x.off[e + 1]; at += n) {
                const int32_t *ent = x.list + at;
                n = gather_tile(x.Qg, Q, x.list, at, x.off[e + 1], S, hs);
                block_logits(c, x.S, x.Qg, K, mask, n, j0, nk, hs, scale);
                for (int r = 0; r < n; r++) {
                    const int i = ent[r] / S;
                    float *row = x.S + (size_t)r * c->b, mi = mx[i], si = 0.0f;
                    for (int j = 0; j < nk; j++) mi = row[j] > mi ? row[j] : mi;
                    if (mi > mx[i]) { /* the block raises the row's max: rescale what it holds */
                        const float rescale = expf(mx[i] - mi);
                        for (int d = 0; d < hs; d++) O[(size_t)i * hs + d] *= rescale;
                        sum[i] *= rescale;
                        mx[i] = mi;
                    }
                    for (int j = 0; j < nk; j++) row[j] = expf(row[j] - mi); /* 0 for masked keys */
                    for (int j = 0; j < nk; j++) si += row[j];
                    sum[i] += si;
                    if (thr) {
                        const uint32_t rs = (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)i);
                        for (int j = 0; j < nk; j++) row[j] *= lra_keep(rs, (uint32_t)(j0 + j), thr) ? keep_scale : 0.0f;
                    }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, nk, 1.0f, x.S, c->b, V + (size_t)j0 * hs,
                            hs, 0.0f, x.Ag, hs);
                for (int r = 0; r < n; r++) {
                    float *oi = O + (size_t)(ent[r] / S) * hs;
                    const float *g = x.Ag + (size_t)r * hs;
                    for (int d = 0; d < hs; d++) oi[d] += g[d];
                }
            }
        }
        for (int i = 0; i < T; i++) {
            if (sum[i] == 0.0f) { lse[i] = -NEG_BIG; continue; } /* no block (no valid key): o = 0, backward's p = 0 */
            for (int d = 0; d < hs; d++) O[(size_t)i * hs + d] /= sum[i];
            lse[i] = mx[i] + logf(sum[i]);
        }
    }
}

/* Backward per head, block by block over the routing inverted again: probabilities recomputed
 * from the saved log-sum-exp, dV and dK of the block from sgemm, dQ of the gathered tile
 * scattered back in a fixed order. D_i = dO_i . o_i is formed per gathered row. */
static void moe_backward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *dq, float *dk,
                         float *dv, float *dparams, void *ws, void *scratch, const float *dout, const float *o, const float *q,
                         const float *k, const float *v, const float *params) {
    (void)params; (void)dparams;
    const moe_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, nb = nblocks(c, T), S = c->s;
    const float scale = 1.0f / sqrtf((float)hs);
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    const int32_t *sel_all = ws;
    const float *lse_all = (const float *)(sel_all + (size_t)BH * T * S);
    float *scratch0 = scratch;
    const size_t per = scratch_floats(c, s);

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        const moe_scratch x = scratch_at(c, s, scratch0 + (size_t)omp_get_thread_num() * per);
        const size_t head = (size_t)bh * T * hs;
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const float *lse = lse_all + (size_t)bh * T, *O = o + head, *dO = dout + head;
        invert(c, x.list, x.off, sel_all + (size_t)bh * T * S, T, nb);
        for (int e = 0; e < nb; e++) {
            int j0, nk;
            block_range(c, e, T, &j0, &nk);
            const float *K = k + head + (size_t)j0 * hs, *V = v + head + (size_t)j0 * hs;
            for (int at = x.off[e], n; at < x.off[e + 1]; at += n) {
                const int32_t *ent = x.list + at;
                n = gather_tile(x.Qg, q + head, x.list, at, x.off[e + 1], S, hs);
                gather_rows(x.Gg, dO, ent, n, S, hs);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, hs, scale, x.Qg, hs, K, hs, 0.0f, x.S, c->b);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, hs, 1.0f, x.Gg, hs, V, hs, 0.0f, x.dP, c->b);
                for (int r = 0; r < n; r++) {
                    const int i = ent[r] / S;
                    const float li = lse[i], *gi = x.Gg + (size_t)r * hs, *oi = O + (size_t)i * hs;
                    float Di = 0.0f;
                    for (int d = 0; d < hs; d++) Di += gi[d] * oi[d];
                    float *srow = x.S + (size_t)r * c->b, *dprow = x.dP + (size_t)r * c->b, *prow = x.P + (size_t)r * c->b;
                    for (int j = 0; j < nk; j++) srow[j] = mask[j0 + j] ? expf(srow[j] - li) : 0.0f;
                    if (thr) {
                        const uint32_t rs = (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)i);
                        for (int j = 0; j < nk; j++) {
                            const float z = lra_keep(rs, (uint32_t)(j0 + j), thr) ? keep_scale : 0.0f;
                            prow[j] = srow[j] * z;
                            dprow[j] *= z;
                        }
                    }
                    for (int j = 0; j < nk; j++) dprow[j] = srow[j] * (dprow[j] - Di); /* dS */
                }
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, n, 1.0f, thr ? x.P : x.S, c->b, x.Gg, hs,
                            1.0f, dv + head + (size_t)j0 * hs, hs);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, n, scale, x.dP, c->b, x.Qg, hs, 1.0f,
                            dk + head + (size_t)j0 * hs, hs);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, nk, scale, x.dP, c->b, K, hs, 0.0f, x.Ag, hs);
                for (int r = 0; r < n; r++) {
                    float *dqi = dq + head + (size_t)(ent[r] / S) * hs;
                    const float *g = x.Ag + (size_t)r * hs;
                    for (int d = 0; d < hs; d++) dqi[d] += g[d];
                }
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
    .saved_bytes = moe_saved_bytes,
    .scratch_bytes = moe_scratch_bytes,
    .flops = moe_flops,
    .forward = moe_forward,
    .backward = moe_backward,
    .diagnostics = moe_diagnostics,
};
