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
 * block's contiguous keys and values. Each (query, slot) keeps a partial (acc, max, sum); they are
 * merged per query in slot order. Gates q . kbar come from sgemm over tiles of queries too.
 *
 * Workspace per call: the chosen blocks (B, NH, T, s) and the row log-sum-exp (B, NH, T), saved
 * for backward; the block means and valid counts of every head; per thread, the tiles and one
 * head's partials and inverted routing (see moe_scratch).
 * Parallel over batch*head for the means, the attention and backward (one thread owns a head's
 * o, dq, dk and dv and works through it in a fixed order), over (batch*head, query tile) for the
 * routing: results do not depend on the thread count. */
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

/* Layout of the workspace: saved for backward, the chosen blocks sel (B, NH, T, s) and the row
 * log-sum-exp (B, NH, T); the block means of every head (B, NH, nb, hs) and their valid counts
 * (B, NH, nb); then one scratch area per thread. */
enum { QT = 64 }; /* queries per tile: rows gathered for one sgemm */

typedef struct {
    float *Qg, *Gg, *Ag; /* (QT, hs) each: gathered q, gathered dO, tile result (acc or dQ) */
    float *S, *P, *dP;   /* (QT, b) each */
    float *gate;         /* (QT, nb) gate tile, then 2 s floats for route's best-so-far */
    float *part;         /* (T, s, hs + 2): per (query, slot) partial acc, max, sum */
    float *D;            /* (T) dO . o */
    int32_t *list, *off; /* (T*s) routing inverted: query*s + slot, grouped by block; (nb + 1) */
} moe_scratch;

static size_t scratch_floats(const moe_ctx *c, lra_attn_shape s) {
    const size_t T = (size_t)s.T, hs = (size_t)s.hs, nb = (size_t)nblocks(c, s.T), b = (size_t)c->b;
    return 3 * QT * hs + 3 * QT * b + QT * nb + 2 * (size_t)c->s + T * c->s * (hs + 2) + T + T * c->s + nb + 1 + 64;
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
    x.part = x.gate + QT * nb + 2 * (size_t)c->s;
    x.D = x.part + T * c->s * (hs + 2);
    x.list = (int32_t *)(x.D + T);
    x.off = x.list + T * c->s;
    return x;
}

static size_t means_floats(const moe_ctx *c, lra_attn_shape s) { return (size_t)nblocks(c, s.T) * (s.hs + 1); }

/* saved: each query's blocks (s int32) and log-sum-exp, 4 (s + 1) bytes per (batch, head, token),
 * and each head's block means and counts */
static size_t moe_saved_bytes(const void *ctx, lra_attn_shape s) {
    const moe_ctx *c = ctx;
    const size_t rows = (size_t)s.B * s.NH * s.T;
    return rows * (size_t)c->s * sizeof(int32_t) + rows * sizeof(float) +
           (size_t)s.B * s.NH * means_floats(c, s) * sizeof(float);
}

static size_t moe_scratch_bytes(const void *ctx, lra_attn_shape s) {
    const moe_ctx *c = ctx;
    return (size_t)c->nthreads * scratch_floats(c, s) * sizeof(float);
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

/* Forward in three passes: block means (per head), routing with gates from sgemm (per tile of
 * queries), and attention (per head): for every block, the queries that chose it are gathered
 * into tiles whose logits and p v products run on sgemm; each (query, slot) keeps a partial
 * (acc, max, sum), merged per query in slot order, so the result does not depend on threads. */
static void moe_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws,
                        void *scratch, const float *q, const float *k, const float *v, const float *params) {
    (void)params;
    const moe_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, nq = (T + QT - 1) / QT, nb = nblocks(c, T), S = c->s;
    const float scale = 1.0f / sqrtf((float)hs);
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    int32_t *sel_all = ws;
    float *lse = (float *)(sel_all + (size_t)BH * T * S);
    float *means0 = lse + (size_t)BH * T, *scratch0 = scratch;
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
            moe_scratch x = scratch_at(c, s, scratch0 + (size_t)omp_get_thread_num() * per);
            const int i0 = qc * QT, n = T - i0 < QT ? T - i0 : QT;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nb, hs, 1.0f, q + ((size_t)bh * T + i0) * hs, hs,
                        kbar, hs, 0.0f, x.gate, nb);
            for (int r = 0; r < n; r++)
                route(c, sel_all + ((size_t)bh * T + i0 + r) * S, x.gate + (size_t)r * nb, x.gate + (size_t)QT * nb,
                      cnt, (i0 + r) / c->b, nb);
        }
#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        moe_scratch x = scratch_at(c, s, scratch0 + (size_t)omp_get_thread_num() * per);
        const int32_t *sel = sel_all + (size_t)bh * T * S;
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        invert(c, x.list, x.off, sel, T, nb);
        for (int e = 0; e < nb; e++) {
            int j0, nk;
            block_range(c, e, T, &j0, &nk);
            for (int t0 = x.off[e]; t0 < x.off[e + 1]; t0 += QT) {
                const int32_t *ent = x.list + t0;
                const int n = x.off[e + 1] - t0 < QT ? x.off[e + 1] - t0 : QT;
                gather_rows(x.Qg, q + head, ent, n, S, hs);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, hs, scale, x.Qg, hs,
                            k + head + (size_t)j0 * hs, hs, 0.0f, x.S, c->b);
                for (int r = 0; r < n; r++) {
                    float *row = x.S + (size_t)r * c->b, mx = NEG_BIG, sum = 0.0f;
                    for (int j = 0; j < nk; j++) {
                        row[j] = mask[j0 + j] ? row[j] : NEG_BIG;
                        mx = row[j] > mx ? row[j] : mx;
                    }
                    for (int j = 0; j < nk; j++) {
                        row[j] = expf(row[j] - mx); /* 0 for masked keys */
                        sum += row[j];
                    }
                    if (thr) {
                        const uint32_t rs = (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)(ent[r] / S));
                        for (int j = 0; j < nk; j++) row[j] *= lra_keep(rs, (uint32_t)(j0 + j), thr) ? keep_scale : 0.0f;
                    }
                    float *pt = x.part + (size_t)ent[r] * (hs + 2);
                    pt[hs] = mx;
                    pt[hs + 1] = sum;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, nk, 1.0f, x.S, c->b,
                            v + head + (size_t)j0 * hs, hs, 0.0f, x.Ag, hs);
                for (int r = 0; r < n; r++)
                    memcpy(x.part + (size_t)ent[r] * (hs + 2), x.Ag + (size_t)r * hs, sizeof(float) * hs);
            }
        }
        for (int i = 0; i < T; i++) { /* merge the slots of each query */
            const int32_t *si = sel + (size_t)i * S;
            float *out = o + head + (size_t)i * hs, mx = NEG_BIG, sum = 0.0f;
            memset(out, 0, sizeof(float) * hs);
            for (int e = 0; e < S && si[e] >= 0; e++) {
                const float m = x.part[((size_t)i * S + e) * (hs + 2) + hs];
                mx = m > mx ? m : mx;
            }
            for (int e = 0; e < S && si[e] >= 0; e++) {
                const float *pt = x.part + ((size_t)i * S + e) * (hs + 2), w = expf(pt[hs] - mx);
                sum += w * pt[hs + 1];
                for (int d = 0; d < hs; d++) out[d] += w * pt[d];
            }
            if (sum > 0) {
                const float inv = 1.0f / sum;
                for (int d = 0; d < hs; d++) out[d] *= inv;
            }
            lse[(size_t)bh * T + i] = sum > 0 ? mx + logf(sum) : -NEG_BIG; /* no valid key: o = 0, p = 0 */
        }
    }
}

/* Backward per head, block by block over the same inverted routing: recomputed probabilities from
 * the saved log-sum-exp, dV and dK of the block from sgemm, dQ of the gathered tile scattered
 * back in a fixed order. */
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
    const float *lse = (const float *)(sel_all + (size_t)BH * T * S);
    float *scratch0 = scratch;
    const size_t per = scratch_floats(c, s);

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        moe_scratch x = scratch_at(c, s, scratch0 + (size_t)omp_get_thread_num() * per);
        const size_t head = (size_t)bh * T * hs;
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        for (int i = 0; i < T; i++) {
            const float *gi = dout + head + (size_t)i * hs, *oi = o + head + (size_t)i * hs;
            float D = 0.0f;
            for (int d = 0; d < hs; d++) D += gi[d] * oi[d];
            x.D[i] = D;
        }
        invert(c, x.list, x.off, sel_all + (size_t)bh * T * S, T, nb);
        for (int e = 0; e < nb; e++) {
            int j0, nk;
            block_range(c, e, T, &j0, &nk);
            const float *K = k + head + (size_t)j0 * hs, *V = v + head + (size_t)j0 * hs;
            for (int t0 = x.off[e]; t0 < x.off[e + 1]; t0 += QT) {
                const int32_t *ent = x.list + t0;
                const int n = x.off[e + 1] - t0 < QT ? x.off[e + 1] - t0 : QT;
                gather_rows(x.Qg, q + head, ent, n, S, hs);
                gather_rows(x.Gg, dout + head, ent, n, S, hs);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, hs, scale, x.Qg, hs, K, hs, 0.0f, x.S, c->b);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, hs, 1.0f, x.Gg, hs, V, hs, 0.0f, x.dP, c->b);
                for (int r = 0; r < n; r++) {
                    const int i = ent[r] / S;
                    const float li = lse[(size_t)bh * T + i], Di = x.D[i];
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
