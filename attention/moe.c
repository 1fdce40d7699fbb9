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
 * The products against keys and values (gates, logits, dP) take them transposed (block means once
 * a head, a block's K and V once a chunk) so that OpenBLAS runs them in its small-matrix kernels
 * (see lra_transpose): 11-30% faster forward+backward than "A times B^T" at T = 1024 to 16384.
 * Forward runs an online softmax per query over its blocks (running max and sum, o rescaled when
 * the max rises), so no per-(query, slot) partial output exists.
 *
 * bf16 (args->precision, tile_bf16.h): a block's K and V are rounded once for the queries that
 * chose it, each tile's gathered q, dO, P and dS once for its products; gates, routing, the
 * softmaxes and every accumulator stay fp32.
 *
 * Memory. Saved for backward: the row log-sum-exp (B, NH, T) and the chosen blocks (B, NH, T, s)
 * as uint16, 4 + 2 s bytes per (batch, head, token) - full's 8 at s = 2. Per thread, in one
 * region: routing's block means (2 T hs / b floats, with their transpose) and a gate tile, or
 * attention's chunk of QC queries (their inverted routing and running sums), its tiles and one
 * block's K^T and V^T (see moe_scratch).
 * Parallel over batch*head (one thread routes a head and owns its o, dq, dk and dv, working
 * through it in a fixed order): results do not depend on the thread count. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "backend.h"
#include "exp16.h"
#include "route.h"
#include "tile_bf16.h"
#include "vec.h"

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
    if (nblocks(&c, max.T) > 65535) /* routes are uint16, LRA_NO_ROUTE excluded */
        return lra_fail(err, LRA_ERR_USAGE, "moe: ceil(T/b) = %d blocks exceed 65535 (T=%d, b=%d): raise b",
                        nblocks(&c, max.T), max.T, c.b);
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

/* Saved for backward: each row's log-sum-exp (B, NH, T), then its blocks (B, NH, T, s) as uint16
 * (LRA_NO_ROUTE past the last; configure caps the blocks at 65535).
 *
 * Per thread, two phases share one region. Routing: one head's block means and counts and the
 * gates of GT queries. Attention, over the queries QC at a time: their routing inverted (block ->
 * the chunk's queries that chose it, as uint16 offsets), their running sums, and the tiles of one
 * block's gathered queries. Chunks bound the per-thread memory at long T - every query's blocks
 * are visited within its own chunk, in ascending order - while at T <= QC (every LRA task but
 * Path-X) there is one chunk and each block's tile is all the queries that chose it. */
enum { QT = 64, GT = 16, QC = 4096 }; /* queries per attention tile; per gate tile; per chunk */

typedef struct {
    float *kbar, *cnt;    /* routing: (nb, hs) block means, (nb) their valid keys */
    float *kbarT;         /* (hs, nb) the block means transposed: gates run as "A times B" */
    float *gate;          /* (GT, nb) gate tile, then 2 s floats for route's best-so-far */
    float *qsum;          /* attention: (QC) the chunk's running sums of exponentials in forward; in
                           * backward its D_i = dO_i . o_i */
    float *Qg, *Gg;       /* (QT, hs) each: gathered q (then the tile's result: p v, or dQ), gathered dO */
    float *S, *P, *dP;    /* (QT, b) each: logits, then probabilities; dropped probabilities; their gradient */
    float *Kt, *Vt;       /* (hs, b) each: the block's keys and values transposed (see lra_transpose) */
    /* bf16 (tile_bf16.h; hp, bp: hs, b rounded up to even): the tile's q and dO as rows (QT, hp)
     * and in pairs of rows (QT / 2, hs, 2); the block's K and V in pairs of columns (hp / 2, b, 2)
     * and of rows (bp / 2, hs, 2); P or dS as rows (QT, bp) and transposed (b, QT) */
    uint16_t *Qb, *Gb, *Qp, *Gp, *Kp, *Vp, *Kr, *Vr, *Sb, *ST;
    int32_t *off;         /* (nb + 1): where each block's queries start in list */
    uint16_t *list;       /* (QC s): the chunk's queries (offsets from its first) grouped by block */
} moe_scratch;

/* queries in a chunk, rounded up to 16 floats so that the tiles after qsum stay 64-byte aligned */
static size_t chunk_of(int T) { return ((size_t)(T < QC ? T : QC) + 15) & ~(size_t)15; }
static size_t routing_floats(const moe_ctx *c, lra_attn_shape s) {
    const size_t nb = (size_t)nblocks(c, s.T);
    return nb * (2 * (size_t)s.hs + 1) + GT * nb + 2 * (size_t)c->s;
}
/* the bf16 tiles, in floats: 4 of the tile's rows, 4 of the block's, 2 of P or dS */
static size_t bf16_floats(const moe_ctx *c, lra_attn_shape s) {
    const size_t hp = (size_t)lra_bf16_even(s.hs), bp = (size_t)lra_bf16_even(c->b);
    return (4 * QT * hp + 4 * hp * bp + QT * bp + bp * QT + 1) / 2;
}
static size_t attention_floats(const moe_ctx *c, lra_attn_shape s) {
    const size_t hs = (size_t)s.hs, nb = (size_t)nblocks(c, s.T), b = (size_t)c->b, n = chunk_of(s.T);
    return n + 2 * QT * hs + 3 * QT * b + 2 * hs * b + nb + 1 + (n * c->s + 1) / 2 + bf16_floats(c, s);
}
static size_t scratch_floats(const moe_ctx *c, lra_attn_shape s) {
    const size_t r = routing_floats(c, s), a = attention_floats(c, s);
    return r > a ? r : a;
}

static moe_scratch scratch_at(const moe_ctx *c, lra_attn_shape s, float *base) {
    const size_t hs = (size_t)s.hs, nb = (size_t)nblocks(c, s.T), b = (size_t)c->b;
    moe_scratch x;
    x.kbar = base;
    x.kbarT = x.kbar + nb * hs;
    x.cnt = x.kbarT + nb * hs;
    x.gate = x.cnt + nb;
    x.qsum = base;
    x.Qg = x.qsum + chunk_of(s.T);
    x.Gg = x.Qg + QT * hs;
    x.S = x.Gg + QT * hs;
    x.P = x.S + QT * b;
    x.dP = x.P + QT * b;
    x.Kt = x.dP + QT * b;
    x.Vt = x.Kt + hs * b;
    const size_t hp = (size_t)lra_bf16_even(s.hs), bp = (size_t)lra_bf16_even(c->b);
    x.Qb = (uint16_t *)(x.Vt + hs * b);
    x.Gb = x.Qb + QT * hp;
    x.Qp = x.Gb + QT * hp;
    x.Gp = x.Qp + QT * hp;
    x.Kp = x.Gp + QT * hp;
    x.Vp = x.Kp + hp * bp;
    x.Kr = x.Vp + hp * bp;
    x.Vr = x.Kr + hp * bp;
    x.Sb = x.Vr + hp * bp;
    x.ST = x.Sb + QT * bp;
    x.off = (int32_t *)(x.Vt + hs * b + bf16_floats(c, s));
    x.list = (uint16_t *)(x.off + nb + 1);
    return x;
}

/* saved: each row's log-sum-exp and blocks, 4 + 2 s bytes per (batch, head, token) */
static size_t moe_saved_bytes(const void *ctx, lra_attn_shape s) {
    const moe_ctx *c = ctx;
    const size_t rows = (size_t)s.B * s.NH * s.T;
    return rows * sizeof(float) + rows * (size_t)c->s * sizeof(lra_route);
}
static float *saved_lse(void *ws) { return ws; }
static lra_route *saved_sel(void *ws, lra_attn_shape s) { return (lra_route *)((float *)ws + (size_t)s.B * s.NH * s.T); }

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
 * sel, LRA_NO_ROUTE past the last; returns how many. Blocks without a valid key are never chosen. One
 * pass keeps the best s so far in descending order (ties go to the lower index: strict >); best
 * holds 2 s floats of scratch. One block to choose besides the own (the default) is the first
 * index of the maximum, the same choice, found by a max and a min over indices, both written so
 * that gcc vectorises them (branchless: the scalar pass was 5% of moe's step, and a max and a
 * search with && conditions still ran one block at a time). */
static int route(const moe_ctx *c, lra_route *sel, const float *gate, float *best, const float *cnt, int own, int nb) {
    const int forced = c->own && own < nb && cnt[own] > 0;
    const int want = c->s - forced;
    float *bv = best;
    int32_t *bi = (int32_t *)(best + c->s);
    int n = 0, from = 0;
    if (want == 1) { /* the default (s = 2, own block forced): the argmax, found in two vector passes */
        const int skip = forced ? own : -1;
        float mx = -FLT_MAX; /* an ineligible block counts as -FLT_MAX, which never raises it */
        for (int i = 0; i < nb; i++) {
            const float g = ((cnt[i] != 0) & (i != skip)) ? gate[i] : -FLT_MAX;
            mx = g > mx ? g : mx;
        }
        int first = nb; /* the first eligible index at the max, as a min over indices */
        for (int i = 0; i < nb; i++) {
            const int at = ((cnt[i] != 0) & (i != skip) & (gate[i] == mx)) ? i : nb;
            first = at < first ? at : first;
        }
        if (first < nb) { bv[0] = mx; bi[0] = first; n = 1; }
        from = n ? nb : 0; /* no gate above -FLT_MAX: the general pass below decides */
    }
    for (int i = from; i < nb && want > 0; i++) {
        if (cnt[i] == 0 || (forced && i == own)) continue;
        const float g = gate[i];
        if (n == want && !(g > bv[n - 1])) continue;
        int p = n < want ? n++ : n - 1;
        while (p > 0 && g > bv[p - 1]) { bv[p] = bv[p - 1]; bi[p] = bi[p - 1]; p--; }
        bv[p] = g;
        bi[p] = i;
    }
    if (forced) bi[n++] = own;
    if (n == 2) { /* the default: a min and a max, without the sort's unpredictable branch */
        const int32_t lo = bi[0] < bi[1] ? bi[0] : bi[1], hi = bi[0] < bi[1] ? bi[1] : bi[0];
        bi[0] = lo;
        bi[1] = hi;
    } else { /* ascending block order: insertion sort of at most s ids */
        for (int x = 1; x < n; x++)
            for (int y = x; y > 0 && bi[y] < bi[y - 1]; y--) { int32_t t = bi[y]; bi[y] = bi[y - 1]; bi[y - 1] = t; }
    }
    for (int x = 0; x < c->s; x++) sel[x] = x < n ? (lra_route)bi[x] : LRA_NO_ROUTE;
    return n;
}

/* The key range of block e. */
static void block_range(const moe_ctx *c, int e, int T, int *j0, int *nk) {
    *j0 = e * c->b;
    *nk = T - *j0 < c->b ? T - *j0 : c->b;
}

/* S (n x nk, stride b) = the gathered queries' logits against block [j0, j0 + nk), masked keys
 * NEG_BIG: fp32 from Qg and Kt (its keys transposed, (hs, b)), or bf16 from Qb and Kp (tile_bf16.h) */
static void block_logits(const moe_ctx *c, const moe_scratch *x, float *S, const float *Qg, const uint8_t *mask,
                         int n, int j0, int nk, int hs, float scale, lra_tile_isa b16) {
    float sc = 1.0f;
    if (b16) {
        lra_tile_bf16(b16, n, nk, lra_bf16_even(hs) / 2, x->Qb, lra_bf16_even(hs), x->Kp, c->b, S, c->b, 0);
        sc = scale;
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, nk, hs, scale, Qg, hs, x->Kt, c->b, 0.0f, S, c->b);
    }
    for (int r = 0; r < n; r++)
        for (int j = 0; j < nk; j++) S[(size_t)r * c->b + j] = mask[j0 + j] ? S[(size_t)r * c->b + j] * sc : NEG_BIG;
}

/* Routes one head: block means, gates from sgemm GT queries at a time, each query's blocks into
 * sel (T, s). */
static void route_head(const moe_ctx *c, const moe_scratch *x, lra_route *sel, const float *Q, const float *K,
                       const uint8_t *mask, int T, int hs) {
    const int nb = nblocks(c, T);
    block_means(c, x->kbar, x->cnt, K, mask, T, hs);
    lra_transpose(x->kbarT, nb, x->kbar, nb, hs);
    for (int i0 = 0; i0 < T; i0 += GT) {
        const int n = T - i0 < GT ? T - i0 : GT;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, nb, hs, 1.0f, Q + (size_t)i0 * hs, hs, x->kbarT, nb,
                    0.0f, x->gate, nb);
        for (int r = 0; r < n; r++)
            route(c, sel + (size_t)(i0 + r) * c->s, x->gate + (size_t)r * nb, x->gate + (size_t)GT * nb, x->cnt,
                  (i0 + r) / c->b, nb);
    }
}

/* One tile's online-softmax step in forward: the tile's logits S (n rows against block [j0, j0 +
 * nk)) become dropped probabilities relative to each row's running max mx; a row whose max rises
 * has its output O and sum rescaled first. rows[r] is row r's query, counted from i0 (as O, mx and
 * sum are). */
static void online_tile(const moe_ctx *c, const lra_attn_args *a, int bh, float *S, float *O, float *mx, float *sum,
                        const int32_t *rows, int i0, int n, int j0, int nk, int hs, lra_tile_isa b16) {
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    for (int r = 0; r < n; r++) {
        const int i = rows[r];
        float *row = S + (size_t)r * c->b;
        /* 0 for masked keys; bf16 on exp16.h's exp (fp32 keeps libmvec's, and its bits) */
        if (b16) lra_online_softmax_rise16(row, nk, &mx[i], &sum[i], O + (size_t)i * hs, hs);
        else lra_online_softmax_rise(row, nk, &mx[i], &sum[i], O + (size_t)i * hs, hs);
        if (thr) {
            const uint32_t rs = (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)(i0 + i));
            for (int j = 0; j < nk; j++) row[j] *= lra_keep(rs, (uint32_t)(j0 + j), thr) ? keep_scale : 0.0f;
        }
    }
}

/* Forward per head: routing, then chunk by chunk, over each block's gathered queries, an online
 * softmax (each query's running max in lse and sum in qsum; o accumulates unnormalised and is
 * rescaled when a block raises the max). Blocks are visited in ascending order by one thread per
 * head: the result does not depend on the thread count. */
static void moe_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws,
                        void *scratch, const float *q, const float *k, const float *v, const float *params) {
    (void)params;
    const moe_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, nb = nblocks(c, T);
    const lra_tile_isa b16 = lra_attn_bf16_kernel(a);
    const int hp = lra_bf16_even(hs), bp = lra_bf16_even(c->b);
    const float scale = 1.0f / sqrtf((float)hs);
    lra_route *sel_all = saved_sel(ws, s);
    float *lse_all = saved_lse(ws), *scratch0 = scratch;
    const size_t per = scratch_floats(c, s);

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        const moe_scratch x = scratch_at(c, s, scratch0 + (size_t)omp_get_thread_num() * per);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head;
        int32_t rows[QT]; /* a tile's queries, from the chunk's first */
        lra_route *sel = sel_all + (size_t)bh * T * c->s;
        route_head(c, &x, sel, Q, K, mask, T, hs);
        memset(o + head, 0, sizeof(float) * T * hs);
        for (int i0 = 0; i0 < T; i0 += QC) {
            const int nq = T - i0 < QC ? T - i0 : QC;
            /* the chunk's rows; lse holds each query's running max until the end, as full.c's */
            const float *Qc = Q + (size_t)i0 * hs;
            float *O = o + head + (size_t)i0 * hs, *mx = lse_all + (size_t)bh * T + i0, *sum = x.qsum;
            for (int i = 0; i < nq; i++) { mx[i] = NEG_BIG; sum[i] = 0.0f; }
            lra_invert_routes(x.list, x.off, sel + (size_t)i0 * c->s, nq, c->s, nb);
            for (int e = 0; e < nb; e++) {
                int j0, nk;
                block_range(c, e, T, &j0, &nk);
                if (x.off[e] < x.off[e + 1]) {
                    if (b16) {
                        lra_bf16_pairs_cols(x.Kp, c->b, K + (size_t)j0 * hs, hs, nk, hs);
                        lra_bf16_pairs_rows(x.Vr, hs, V + (size_t)j0 * hs, hs, nk, hs, 1.0f);
                    } else {
                        lra_transpose(x.Kt, c->b, K + (size_t)j0 * hs, nk, hs);
                    }
                }
                for (int at = x.off[e], n; at < x.off[e + 1]; at += n) {
                    n = lra_routed_tile(rows, x.list, at, x.off[e + 1], QT, 0);
                    lra_gather_rows(x.Qg, Qc, rows, n, hs);
                    if (b16) lra_bf16_rows(x.Qb, hp, x.Qg, hs, n, hs, 1.0f);
                    block_logits(c, &x, x.S, x.Qg, mask, n, j0, nk, hs, scale, b16);
                    online_tile(c, a, bh, x.S, O, mx, sum, rows, i0, n, j0, nk, hs, b16);
                    if (b16) {
                        lra_bf16_rows(x.Sb, bp, x.S, c->b, n, nk, 1.0f);
                        lra_tile_bf16(b16, n, hs, lra_bf16_even(nk) / 2, x.Sb, bp, x.Vr, hs, x.Qg, hs, 0);
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, nk, 1.0f, x.S, c->b,
                                    V + (size_t)j0 * hs, hs, 0.0f, x.Qg, hs);
                    }
                    lra_scatter_add_rows(O, x.Qg, rows, n, hs);
                }
            }
            for (int i = 0; i < nq; i++) {
                if (sum[i] == 0.0f) { mx[i] = -NEG_BIG; continue; } /* no block (no valid key): o = 0, backward's p = 0 */
                for (int d = 0; d < hs; d++) O[(size_t)i * hs + d] /= sum[i];
                mx[i] += logf(sum[i]); /* the log-sum-exp */
            }
        }
    }
}

/* Backward of one tile of n gathered queries (rows, from i0 on) against block [j0, j0 + nk):
 * probabilities recomputed from the saved log-sum-exp, dV and dK of the block from sgemm, dQ of
 * the tile scattered back. D_i = dO_i . o_i comes in qsum (the chunk's, by row). Uses Qg and Gg
 * as gathered, Kt and Vt as transposed, S, P and dP. */
static void backward_tile(const moe_ctx *c, const moe_scratch *x, const lra_attn_args *a, lra_tile_isa b16, int bh,
                          const float *lse, const float *K, float *dQ, float *dK, float *dV,
                          const uint8_t *mask, const int32_t *rows, int i0, int n, int j0, int nk, int hs) {
    const float scale = 1.0f / sqrtf((float)hs);
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    const int hp = lra_bf16_even(hs), bp = lra_bf16_even(c->b);
    float sc = 1.0f; /* bf16: the logits' scale, applied below */
    if (b16) {
        lra_bf16_rows(x->Qb, hp, x->Qg, hs, n, hs, 1.0f);
        lra_bf16_rows(x->Gb, hp, x->Gg, hs, n, hs, 1.0f);
        lra_tile_bf16(b16, n, nk, hp / 2, x->Qb, hp, x->Kp, c->b, x->S, c->b, 0);
        lra_tile_bf16(b16, n, nk, hp / 2, x->Gb, hp, x->Vp, c->b, x->dP, c->b, 0);
        sc = scale;
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, nk, hs, scale, x->Qg, hs, x->Kt, c->b, 0.0f, x->S, c->b);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, nk, hs, 1.0f, x->Gg, hs, x->Vt, c->b, 0.0f, x->dP, c->b);
    }
    for (int r = 0; r < n; r++) {
        const int i = rows[r];
        const float li = lse[i], Di = x->qsum[i];
        float *srow = x->S + (size_t)r * c->b, *dprow = x->dP + (size_t)r * c->b;
        if (b16) lra_exp_row16(srow, srow, nk, sc, li, mask + j0);
        else
            for (int j = 0; j < nk; j++) srow[j] = mask[j0 + j] ? expf(srow[j] * sc - li) : 0.0f;
        if (thr) {
            const uint32_t rs = (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)(i0 + i));
            float *prow = x->P + (size_t)r * c->b;
            for (int j = 0; j < nk; j++) {
                const float z = lra_keep(rs, (uint32_t)(j0 + j), thr) ? keep_scale : 0.0f;
                prow[j] = srow[j] * z;
                dprow[j] *= z;
            }
        }
        for (int j = 0; j < nk; j++) dprow[j] = srow[j] * (dprow[j] - Di); /* dS */
    }
    if (b16) { /* dV += P^T dO, dK += scale dS^T Q, the tile's dQ = scale dS K (into Qg, spent) */
        const int n2 = lra_bf16_even(n) / 2;
        lra_bf16_pairs_rows(x->Gp, hs, x->Gg, hs, n, hs, 1.0f);
        lra_bf16_pairs_rows(x->Qp, hs, x->Qg, hs, n, hs, 1.0f);
        lra_bf16_rows_t(x->ST, QT, thr ? x->P : x->S, c->b, n, nk, 1.0f);
        lra_tile_bf16(b16, nk, hs, n2, x->ST, QT, x->Gp, hs, dV, hs, 1);
        lra_bf16_rows_t(x->ST, QT, x->dP, c->b, n, nk, scale);
        lra_tile_bf16(b16, nk, hs, n2, x->ST, QT, x->Qp, hs, dK, hs, 1);
        lra_bf16_rows(x->Sb, bp, x->dP, c->b, n, nk, scale);
        lra_tile_bf16(b16, n, hs, lra_bf16_even(nk) / 2, x->Sb, bp, x->Kr, hs, x->Qg, hs, 0);
        lra_scatter_add_rows(dQ, x->Qg, rows, n, hs);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, n, 1.0f, thr ? x->P : x->S, c->b, x->Gg, hs, 1.0f, dV,
                hs);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, n, scale, x->dP, c->b, x->Qg, hs, 1.0f, dK, hs);
    /* Qg is spent: the tile's dQ takes its place */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, nk, scale, x->dP, c->b, K, hs, 0.0f, x->Qg, hs);
    lra_scatter_add_rows(dQ, x->Qg, rows, n, hs);
}

/* Backward per head, chunk by chunk and block by block over the routing inverted again, in the
 * same fixed order as forward. */
static void moe_backward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *dq, float *dk,
                         float *dv, float *dparams, void *ws, void *scratch, const float *dout, const float *o, const float *q,
                         const float *k, const float *v, const float *params) {
    (void)params; (void)dparams;
    const moe_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, nb = nblocks(c, T);
    const lra_tile_isa b16 = lra_attn_bf16_kernel(a);
    const lra_route *sel_all = saved_sel(ws, s);
    const float *lse_all = saved_lse(ws);
    float *scratch0 = scratch;
    const size_t per = scratch_floats(c, s);

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        const moe_scratch x = scratch_at(c, s, scratch0 + (size_t)omp_get_thread_num() * per);
        const size_t head = (size_t)bh * T * hs;
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        int32_t rows[QT]; /* a tile's queries, from the chunk's first */
        for (int i0 = 0; i0 < T; i0 += QC) {
            const int nq = T - i0 < QC ? T - i0 : QC;
            const size_t chunk = head + (size_t)i0 * hs; /* the chunk's first row */
            lra_invert_routes(x.list, x.off, sel_all + ((size_t)bh * T + i0) * c->s, nq, c->s, nb);
            /* D_i = dO_i . o_i once per query, in order: per tile it met o's rows in block order
             * (a cache miss each), once for each of a query's s blocks */
            lra_row_dots(x.qsum, dout + chunk, o + chunk, nq, hs);
            for (int e = 0; e < nb; e++) {
                int j0, nk;
                block_range(c, e, T, &j0, &nk);
                const size_t keys = head + (size_t)j0 * hs;
                if (x.off[e] < x.off[e + 1] && a->precision == LRA_BF16) {
                    lra_bf16_pairs_cols(x.Kp, c->b, k + keys, hs, nk, hs);
                    lra_bf16_pairs_cols(x.Vp, c->b, v + keys, hs, nk, hs);
                    lra_bf16_pairs_rows(x.Kr, hs, k + keys, hs, nk, hs, 1.0f);
                } else if (x.off[e] < x.off[e + 1]) {
                    lra_transpose(x.Kt, c->b, k + keys, nk, hs);
                    lra_transpose(x.Vt, c->b, v + keys, nk, hs);
                }
                for (int at = x.off[e], n; at < x.off[e + 1]; at += n) {
                    n = lra_routed_tile(rows, x.list, at, x.off[e + 1], QT, 0);
                    lra_gather_rows(x.Qg, q + chunk, rows, n, hs);
                    lra_gather_rows(x.Gg, dout + chunk, rows, n, hs);
                    backward_tile(c, &x, a, b16, bh, lse_all + (size_t)bh * T + i0, k + keys,
                                  dq + chunk, dk + keys, dv + keys, mask, rows, i0, n, j0, nk, hs);
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
    const lra_route *sel = saved_sel((void *)ws, s);
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
                const lra_route blk = sel[((size_t)bh * T + i) * c->s + e];
                if (blk != LRA_NO_ROUTE) count[blk]++;
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

/* one block of every key, selected by every query */
static void moe_exact_opts(lra_attn_shape max, char *buf, size_t n) { snprintf(buf, n, "b=%d,s=1", max.T); }

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
    .exact_opts = moe_exact_opts,
    .bf16 = 1,
};
