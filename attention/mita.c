/* mita.c - MiTA, Mixture of Top-k Activations (Wen and Huang, 2026), after the authors' official
 * code:
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
 * their logits are sgemms of tiles of gathered queries against the gathered keys, and their values
 * sgemms of probabilities against the gathered values (backward likewise: dq per tile, dk and dv
 * per expert, scattered back in a fixed order).
 *
 * Memory: no (T x m) or (T x s k) matrix. Forward walks the keys a tile at a time for A k^T: each
 * expert keeps candidates above its admission threshold and selects when its buffer is full (the
 * same top k as one selection over all keys), and Vbar comes from an online softmax. It walks the
 * queries a chunk of QC at a time, and each chunk a tile at a time for G = q A^T (routing and the
 * shared logits) before its routed entries; each query's softmax is online (running max and sum; o
 * rescaled when a routed expert raises the max). Saved for backward, per head: Vbar (m x d), the
 * compression's log-sum-exp (m), the experts as key indices (m x k), each query's log-sum-exp (T)
 * and experts (T x s, uint16): 4 + 2 s bytes per (batch, head, token) - full's 8 at s = 2 - plus
 * 32 KiB per head at m = k = d = 64. Backward computes each query's D_i = dO_i . o_i once, in
 * order, and recomputes the landmarks A (pooling) and, tile by tile, G, the compression softmax
 * and each expert's routed logits. Per thread: A and A^T, a chunk's running sums and inverted
 * routing, D (T), and one region that each phase carves anew (see lay): at most eight tiles, in
 * backward's routed entries, besides the transposed copies below.
 *
 * Every product against keys, values, A or Vbar takes them transposed (A and Vbar once a head, a
 * key tile once, an expert's gathered keys and values once a chunk), so that OpenBLAS runs it in
 * its small-matrix kernels instead of packing (see lra_transpose): 15-25% faster forward+backward
 * at T = 1024 and 16384.
 * bf16 (args->precision): the attention products go through lra_tile_gemm (tile_bf16.h); the
 * products that choose - A k^T (each expert's keys) and q A^T (each query's experts), and their
 * recomputation in backward - stay fp32, so bf16 never changes a choice.
 * Each head is one thread's, so results do not depend on the thread count. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "backend.h"
#include "exp16.h"
#include "pool.h"
#include "route.h"
#include "tile_bf16.h"
#include "vec.h"

#define NEG_BIG (-1e30f) /* see full.c: this file builds with -ffast-math */

typedef struct {
    int m, k, s, shared, scale_sqrt;
    int tile; /* rows of every tile of queries or keys: TILE, or LONG_TILE past LONG_T (see below) */
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

/* Tiles: keys `tile` at a time for the activations A k^T (selection and compression), queries
 * `tile` at a time for G = q A^T (routing, shared logits) and for an expert's routed queries. 64
 * rows; 32 when the handle's maximum T exceeds LONG_T (Path-X), where the backward's eight tiles
 * would otherwise hold more per thread than full attention keeps (about 10% slower there).
 * Queries are routed and attended QC at a time (see mita_forward). */
enum { TILE = 64, LONG_TILE = 32, LONG_T = 4096, QC = 2048 };

static lra_status mita_configure(void **ctx, const char *opts, lra_attn_shape max, int nthreads, char *err) {
    mita_ctx c = {.m = 64, .k = 64, .s = 1, .shared = 1, .nthreads = nthreads, .max = max};
    lra_status st = lra_attn_parse_opts("mita", opts, mita_opt, &c, err);
    if (st != LRA_OK) return st;
    if (c.m > max.T) return lra_fail(err, LRA_ERR_USAGE, "mita: m=%d landmarks exceed the sequence length T=%d", c.m, max.T);
    if (c.s > c.m) return lra_fail(err, LRA_ERR_USAGE, "mita: s=%d exceeds the number of experts m=%d", c.s, c.m);
    if (c.m > 65535) return lra_fail(err, LRA_ERR_USAGE, "mita: m=%d exceeds 65535 experts (routes are uint16)", c.m);
    if (c.k > max.T) c.k = max.T; /* an expert holds at most every key */
    c.tile = max.T > LONG_T ? LONG_TILE : TILE;
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

/* workspace (in 4-byte words). Per head, saved for backward: Vbar (m x d), the compression's
 * log-sum-exp (m), the experts (m x k), each query's log-sum-exp (T) and experts (T x s, uint16) and
 * the (m, k) in effect. Per thread: the landmarks A (recomputed by backward: pooling is cheap), the
 * small per-expert arrays, a chunk's running sums and inverted routing, and one region that each
 * phase carves anew: forward's selection and compression, forward's queries or backward's routed
 * entries, backward's shared and compression gradients. */
typedef struct {
    size_t vbar, lsec, ex, lse, rt, ne, head;
    size_t a, at, mx, sum, th, cn, pairs, keys, qsum, off, inv, dd;
    size_t z, cand, kt;                                      /* forward: experts and compression */
    size_t qe, oe, ke, ve, ket, vet, r, r2, g, gd, dke, dve; /* forward: a chunk's queries; backward: routed */
    size_t da, dvb, vbt, sg, sgd, sr2, sz, skt, svt;         /* backward: shared and compression */
    size_t bw;                                               /* bf16: one product's operands */
    size_t thread;
} layout;
static size_t cand_cap(const mita_ctx *c) { return 2 * (size_t)c->k + c->tile; } /* pairs per expert */
static size_t chunk_of(int T) { return (size_t)(T < QC ? T : QC); }
static layout lay(const mita_ctx *c, lra_attn_shape s) {
    layout l;
    const size_t m = (size_t)c->m, d = (size_t)s.hs, T = (size_t)s.T, k = (size_t)c->k, S = (size_t)c->s;
    const size_t t = (size_t)c->tile, n = chunk_of(s.T), km = k > m ? k : m;
    size_t off = 0, end = 0;
#define CARVE(field, len) do { l.field = off; off += (len); } while (0)
#define PHASE_END() do { end = off > end ? off : end; } while (0)
    /* per head, kept from forward for backward */
    CARVE(vbar, m * d);   // (m, d): the compressed values
    CARVE(lsec, m);       // (m): the compression softmax's log-sum-exp per landmark
    CARVE(ex, m * k);     // (m, k): each expert's keys (int32)
    CARVE(lse, T);        // (T): each query's log-sum-exp
    CARVE(rt, (T * S + 1) / 2); // (T, s): each query's experts (uint16)
    CARVE(ne, 2);         // the (m, k) in effect for this head (int32)
    l.head = off;
    off = 0;
    /* per thread, for the whole call */
    CARVE(a, m * d);      // (m, d): the landmarks A, pooled queries
    CARVE(at, m * d);     // (d, m): A transposed (see lra_transpose)
    CARVE(mx, m);         // (m): the compression's running max per landmark
    CARVE(sum, m);        // (m): its running sum
    CARVE(th, m);         // (m): each expert's admission threshold during selection
    CARVE(cn, m);         // (m): its candidates so far (int32)
    CARVE(pairs, 2 * m);  // (m): routing pairs
    CARVE(keys, cand_cap(c) > m ? cand_cap(c) : m); // radix keys for a selection (uint32)
    CARVE(qsum, n);       // (QC): the chunk's running sums of exponentials in forward
    CARVE(off, m + 1);    // (m + 1): where each expert's queries start in inv (int32)
    CARVE(inv, (n * S + 1) / 2); // (QC s): the chunk's queries by expert, offsets from its first (uint16)
    CARVE(dd, T);         // (T): backward, D_i = dO_i . o_i of every query
    /* bf16: one product's operands (tile_bf16.h). Every product has a side of tile or d and one
     * of at most m, k, tile or d, so M K + K N stays within (max(m, k) + tile + d + 2)(tile + d + 2) */
    CARVE(bw, ((km + t + d + 2) * (t + d + 2) + 1) / 2);
    const size_t u = off;
    CARVE(z, m * t);      // forward (m, tile): activations A k^T of a key tile, then their softmax
    CARVE(cand, 2 * m * cand_cap(c)); // (m, 2k + tile) candidate pairs per expert
    CARVE(kt, d * t);     // (d, tile): a key tile transposed
    PHASE_END();
    off = u;
    CARVE(qe, t * d);     // (tile, d): gathered queries of one expert
    CARVE(oe, t * d);     // (tile, d): their output gradients, or a tile's output
    CARVE(ke, k * d);     // (k, d): one expert's keys
    CARVE(ve, k * d);     // (k, d): its values
    CARVE(ket, k * d);    // (d, k): its keys transposed
    CARVE(vet, k * d);    // (d, k): its values transposed (backward)
    CARVE(r, t * k);      // (tile, k): routed logits, then probabilities
    CARVE(r2, t * km);    // (tile, k): their logits' gradient
    const size_t w = off;
    CARVE(g, t * m);      // forward (tile, m): G = q A^T of a query tile
    CARVE(gd, t * m);     // (tile, m): shared probabilities
    PHASE_END();
    off = w;
    CARVE(dke, k * d);    // backward (k, d): d keys of one expert
    CARVE(dve, k * d);    // (k, d): d values of one expert
    PHASE_END();
    off = u;
    CARVE(da, m * d);     // backward (m, d): d A
    CARVE(dvb, m * d);    // (m, d): d Vbar
    CARVE(vbt, m * d);    // (d, m): Vbar transposed
    CARVE(sg, t * m);     // (tile, m): G of a query tile
    CARVE(sgd, t * m);    // (tile, m): shared probabilities
    CARVE(sr2, t * km);   // (tile, m) or (m, tile): a tile of logit gradients
    CARVE(sz, m * t);     // (m, tile): a key tile's compression probabilities
    CARVE(skt, d * t);    // (d, tile): a key tile transposed
    CARVE(svt, d * t);    // (d, tile): its values transposed
    PHASE_END();
    l.thread = end;
#undef CARVE
#undef PHASE_END
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
    /* A k^T, Vbar, q A^T (routing and shared logits at once), p_shared Vbar; routed logits and p v.
     * Backward recomputes A k^T, q A^T and the routed logits, then five products each side. */
    *fwd = heads * (T * d + 8.0 * m * T * d + 4.0 * T * sk * d);
    *bwd = heads * (T * d + 20.0 * m * T * d + 10.0 * T * sk * d);
}

/* ---- top-k by selection: (value desc, index asc) order, a strict total order ---- */
typedef struct { float v; int32_t i; } pair;
static int before(pair a, pair b) { return a.v > b.v || (a.v == b.v && a.i < b.i); }

/* The k-th largest of the n values (1 <= k <= n): the largest v with at least k values >= v,
 * found a bit at a time from the top on their order-preserving bit patterns. Each of the 32
 * steps counts over all n in one pass that gcc vectorises, with no data-dependent branch (a
 * quickselect mispredicts about once per element; a byte-wise radix selection's histogram
 * updates run one element at a time). keys: n uint32 of scratch. */
static float kth_largest(const pair *x, int n, int k, uint32_t *keys) {
    for (int r = 0; r < n; r++) {
        uint32_t u;
        memcpy(&u, &x[r].v, sizeof u);
        keys[r] = u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u); /* float order = unsigned order */
    }
    uint32_t kth = 0;
    for (int bit = 31; bit >= 0; bit--) {
        const uint32_t with = kth | 1u << bit;
        int at_least = 0;
        for (int r = 0; r < n; r++) at_least += keys[r] >= with;
        kth = at_least >= k ? with : kth;
    }
    const uint32_t u = kth & 0x80000000u ? kth ^ 0x80000000u : ~kth;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Rearranges x[0..n), whose indices ascend, so that its first k are the k first in (value desc,
 * index asc) order: those above the k-th largest value, then the lowest-indexed of its ties; the
 * rest of x is left undefined. The scan copies them to the front in the order it meets them, so
 * the first k keep ascending indices (a later selection over them and newer candidates, or a
 * route list, needs no sort), and without a branch per element. keys: n uint32 of scratch. */
static void select_top(pair *x, int n, int k, uint32_t *keys) {
    if (k == 1) { /* one pass for the first in the order (the same element) */
        int best = 0;
        for (int i = 1; i < n; i++)
            if (before(x[i], x[best])) best = i;
        x[0] = x[best];
        return;
    }
    if (k >= n) return;
    const float kth = kth_largest(x, n, k, keys);
    int ties = k;
    for (int r = 0; r < n; r++) ties -= x[r].v > kth;
    for (int r = 0, taken = 0; r < n; r++) { /* in index order: the lowest ties first; taken <= r */
        const int tie = x[r].v == kth;
        x[taken] = x[r];
        taken += (x[r].v > kth) | (tie & (ties > 0));
        ties -= tie;
    }
}

/* The first index of the largest of x[0..n) (n >= 1): select_top's choice for k = 1, by a max
 * that gcc vectorises and a search that stops at it (select_top's pass compares pairs, with a
 * branch each: routing was half of select_top's time, 3% of mita's step). */
static int first_max(const float *x, int n) {
    float mx = x[0];
    for (int j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    int j = 0;
    while (x[j] != mx) j++;
    return j;
}

/* Whether any of the n activations z that belong to valid keys exceeds th: the selection's scan
 * tests SCAN of them at once, vectorised, and walks a group one key at a time only when one
 * enters. Past an expert's first selections almost none does. */
enum { SCAN = 16 };
static int any_above(const float *z, const uint8_t *mask, int n, float th) {
    int any = 0;
    for (int t = 0; t < n; t++) any |= (mask[t] != 0) & (z[t] > th);
    return any;
}

/* Which of query i's slots holds expert e (its routes ri are distinct). */
static int slot_of(const lra_route *ri, int S, int e) {
    int x = 0;
    while (x < S - 1 && ri[x] != e) x++;
    return x;
}

/* dropout factor of entry t of query i's logit list */
static inline float keep_factor(uint32_t rs, int t, uint32_t thr, float keep_scale) {
    return thr ? (lra_keep(rs, (uint32_t)t, thr) ? keep_scale : 0.0f) : 1.0f;
}

static int tile_has_key(const uint8_t *mask, int t0, int nk) {
    for (int t = 0; t < nk; t++)
        if (mask[t0 + t]) return 1;
    return 0;
}

/* Per-head view of the workspace and the tensors, for the passes below. */
typedef struct {
    const mita_ctx *c;
    const lra_attn_args *a;
    int bh, T, hs, me, ke, se, base, tile;
    float scale, tau_inv, keep_scale;
    uint32_t thr;
    lra_tile_isa b16;        /* the attention products in bf16 (tile_bf16.h); routing stays fp32 */
    const uint8_t *mask;
    const float *Q, *K, *V;
    float *hw, *tw;
    uint16_t *bw;            /* their operands */
    layout l;
} head_view;

/* Head bh's view, in the calling thread's scratch. */
static head_view view_of(const mita_ctx *c, lra_attn_shape s, const lra_attn_args *a, const layout *l, int bh, void *ws,
                         void *scratch, const float *q, const float *k, const float *v) {
    const size_t head = (size_t)bh * s.T * s.hs;
    head_view h = {.c = c, .a = a, .bh = bh, .T = s.T, .hs = s.hs, .scale = 1.0f / sqrtf((float)s.hs),
                   .thr = lra_dropout_threshold(a->dropout), .mask = a->mask + (size_t)(bh / s.NH) * s.T,
                   .Q = q + head, .K = k + head, .V = v + head, .hw = (float *)ws + (size_t)bh * l->head,
                   .tw = (float *)scratch + (size_t)omp_get_thread_num() * l->thread, .tile = c->tile, .l = *l};
    h.tau_inv = c->scale_sqrt ? h.scale : 1.0f / (float)s.hs;
    h.b16 = lra_attn_bf16_kernel(a);
    h.bw = (uint16_t *)(h.tw + l->bw);
    h.keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    return h;
}

static uint32_t row_stream(const head_view *h, int i) {
    return h->thr ? (uint32_t)lra_stream(h->a->seed, (uint64_t)h->bh, (uint64_t)i) : 0;
}

/* Experts and compression over key tiles: each expert keeps candidates above its admission
 * threshold (the k-th largest value of its last selection: a later key, of higher index, enters
 * the top k only above it) and selects when its buffer is full, so the final selection over the
 * candidates is the selection over all valid keys. Alongside, Vbar by an online softmax. */
static void experts_and_compression(const head_view *h, int32_t *ex, float *A, float *Vbar, float *lsec) {
    const mita_ctx *c = h->c;
    const layout *l = &h->l;
    const int me = h->me, ke = h->ke, hs = h->hs, T = h->T, cap = (int)cand_cap(c), tk = h->tile;
    float *Z = h->tw + l->z, *Kt = h->tw + l->kt, *mx = h->tw + l->mx, *sum = h->tw + l->sum, *th = h->tw + l->th;
    int32_t *cn = (int32_t *)(h->tw + l->cn);
    pair *cand = (pair *)(h->tw + l->cand);
    uint32_t *keys = (uint32_t *)(h->tw + l->keys);
    for (int j = 0; j < me; j++) { mx[j] = NEG_BIG; sum[j] = 0.0f; th[j] = -FLT_MAX; cn[j] = 0; }
    if (c->shared) memset(Vbar, 0, sizeof(float) * (size_t)me * hs);
    for (int t0 = 0; t0 < T; t0 += tk) {
        const int nk = T - t0 < tk ? T - t0 : tk;
        if (!tile_has_key(h->mask, t0, nk)) continue;
        lra_transpose(Kt, tk, h->K + (size_t)t0 * hs, nk, hs);
        /* fp32 in both precisions: Z chooses each expert's keys */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, me, nk, hs, 1.0f, A, hs, Kt, tk, 0.0f, Z, tk);
        for (int j = 0; j < me; j++) {
            float *z = Z + (size_t)j * tk;
            pair *cj = cand + (size_t)j * cap;
            for (int g0 = 0; g0 < nk; g0 += SCAN) {
                const int gn = nk - g0 < SCAN ? nk - g0 : SCAN;
                if (!any_above(z + g0, h->mask + t0 + g0, gn, th[j])) continue; /* most, past the first selections */
                if (cn[j] + gn < cap) { /* no selection falls in this group: append without a branch per key */
                    int n = cn[j];
                    const float thj = th[j];
                    for (int t = g0; t < g0 + gn; t++) {
                        cj[n] = (pair){z[t], t0 + t};
                        n += (h->mask[t0 + t] != 0) & (z[t] > thj);
                    }
                    cn[j] = n;
                    continue;
                }
                for (int t = g0; t < g0 + gn; t++) {
                    if (!h->mask[t0 + t] || !(z[t] > th[j])) continue;
                    cj[cn[j]++] = (pair){z[t], t0 + t};
                    if (cn[j] < cap) continue;
                    select_top(cj, cn[j], ke, keys); /* the kept ke in index order */
                    cn[j] = ke;
                    th[j] = cj[0].v;
                    for (int r = 1; r < ke; r++) th[j] = cj[r].v < th[j] ? cj[r].v : th[j];
                }
            }
            if (!c->shared) continue;
            /* the compression softmax over valid keys, online: z becomes exp(z scale - max) */
            for (int t = 0; t < nk; t++) z[t] = h->mask[t0 + t] ? z[t] * h->scale : NEG_BIG;
            if (h->b16) lra_online_softmax_tile16(z, nk, &mx[j], &sum[j], Vbar + (size_t)j * hs, hs);
            else lra_online_softmax_tile(z, nk, &mx[j], &sum[j], Vbar + (size_t)j * hs, hs);
        }
        if (c->shared)
            lra_tile_gemm(h->b16, h->bw, 0, 0, me, hs, nk, 1.0f, Z, tk, h->V + (size_t)t0 * hs, hs, 1.0f, Vbar, hs);
    }
    for (int j = 0; j < me; j++) {
        pair *cj = cand + (size_t)j * cap;
        select_top(cj, cn[j], ke, keys);
        int32_t *e = ex + (size_t)j * c->k;
        for (int r = 0; r < ke; r++) e[r] = cj[r].i; /* ascending */
        if (!c->shared) continue;
        for (int d = 0; d < hs; d++) Vbar[(size_t)j * hs + d] /= sum[j];
        lsec[j] = mx[j] + logf(sum[j]);
    }
}

/* The chunk of queries [i0, i0 + n), a tile at a time, G = Q A^T (At: A transposed, (d, m)): each
 * query's experts (routing), and the shared part of its softmax - the running max mx and sum of
 * exponentials of its logits so far (indexed from i0), and O = the unnormalised shared
 * probabilities (dropped) times Vbar. */
static void route_and_share(const head_view *h, lra_route *rt, float *mx, float *sum, float *O, const float *At,
                            const float *Vbar, int i0, int n) {
    const mita_ctx *c = h->c;
    const int me = h->me, se = h->se, S = c->s, M = c->m, hs = h->hs, tq = h->tile;
    float *G = h->tw + h->l.g, *Psh = h->tw + h->l.gd;
    pair *sel = (pair *)(h->tw + h->l.pairs);
    uint32_t *keys = (uint32_t *)(h->tw + h->l.keys);
    for (int t0 = i0; t0 < i0 + n; t0 += tq) {
        const int nq = i0 + n - t0 < tq ? i0 + n - t0 : tq;
        /* fp32 in both precisions: G chooses each query's experts */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, me, hs, 1.0f, h->Q + (size_t)t0 * hs, hs, At, M,
                    0.0f, G, M);
        for (int r = 0; r < nq; r++) {
            const int i = t0 + r, x = i - i0;
            float *gi = G + (size_t)r * M;
            lra_route *ri = rt + (size_t)i * S;
            if (se == 1) { /* the default, s = 1 */
                ri[0] = (lra_route)first_max(gi, me);
                for (int e = 1; e < S; e++) ri[e] = LRA_NO_ROUTE;
            } else {
                for (int j = 0; j < me; j++) sel[j] = (pair){gi[j], j};
                select_top(sel, me, se, keys);
                for (int e = 0; e < S; e++) ri[e] = e < se ? (lra_route)sel[e].i : LRA_NO_ROUTE; /* ascending */
            }
            mx[x] = NEG_BIG;
            sum[x] = 0.0f;
            if (!c->shared) continue;
            /* locals, not mx[x] and sum[x] (which could alias ps): so gcc vectorises the exp */
            float mi = NEG_BIG, si = 0.0f, *ps = Psh + (size_t)r * me;
            if (h->b16) { /* bf16: exp16.h's exp (fp32 keeps libmvec's, and its bits); tau_inv > 0 */
                mi = lra_max16(gi, me, NEG_BIG) * h->tau_inv;
                si = lra_exp_row16(ps, gi, me, h->tau_inv, mi, NULL);
            } else {
                for (int j = 0; j < me; j++) mi = gi[j] * h->tau_inv > mi ? gi[j] * h->tau_inv : mi;
                for (int j = 0; j < me; j++) ps[j] = expf(gi[j] * h->tau_inv - mi);
                for (int j = 0; j < me; j++) si += ps[j];
            }
            mx[x] = mi;
            sum[x] = si;
            if (h->thr) {
                const uint32_t rs = row_stream(h, i);
                for (int j = 0; j < me; j++) ps[j] *= keep_factor(rs, j, h->thr, h->keep_scale);
            }
        }
        if (c->shared)
            lra_tile_gemm(h->b16, h->bw, 0, 0, nq, hs, me, 1.0f, Psh, me, Vbar, hs, 0.0f, O + (size_t)t0 * hs, hs);
        else
            memset(O + (size_t)t0 * hs, 0, sizeof(float) * (size_t)nq * hs);
    }
}

/* One expert's routed queries rows[0..n): R (n, ke) = their logits against the gathered keys
 * (Ket: transposed, (d, ke)). */
static void routed_logits(const head_view *h, float *R, float *Qe, const float *Ket, const int32_t *rows, int n) {
    lra_gather_rows(Qe, h->Q, rows, n, h->hs);
    lra_tile_gemm(h->b16, h->bw, 0, 0, n, h->ke, h->hs, h->scale, Qe, h->hs, Ket, h->ke, 0.0f, R, h->ke);
}

/* Forward per head: landmarks, experts and compression over key tiles, then the queries a chunk
 * of QC at a time - routing and the shared part over query tiles, then the chunk's routed entries
 * one expert at a time. Each query's softmax is online (lse holds its running max, qsum its sum). */
static void mita_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws, void *scratch,
                         const float *q, const float *k, const float *v, const float *params) {
    (void)params;
    const mita_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, M = c->m, S = c->s, Kx = c->k;
    const layout l = lay(c, s);

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        head_view h = view_of(c, s, a, &l, bh, ws, scratch, q, k, v);
        const size_t head = (size_t)bh * T * hs;
        float *hw = h.hw, *tw = h.tw, *O = o + head;
        float *A = tw + l.a, *At = tw + l.at, *Vbar = hw + l.vbar, *lse = hw + l.lse;
        float *Qe = tw + l.qe, *Out = tw + l.oe, *Ke = tw + l.ke, *Ve = tw + l.ve, *Ket = tw + l.ket, *R = tw + l.r;
        int32_t *ex = (int32_t *)(hw + l.ex), *ne = (int32_t *)(hw + l.ne), *off = (int32_t *)(tw + l.off);
        lra_route *rt = (lra_route *)(hw + l.rt);
        uint16_t *inv = (uint16_t *)(tw + l.inv);
        int32_t rows[TILE]; /* a tile's queries */
        const int L = lra_valid_count(h.mask, T);
        h.me = M < L ? M : L; h.ke = Kx < L ? Kx : L; h.se = S < h.me ? S : h.me; h.base = c->shared ? h.me : 0;
        const int me = h.me, ke = h.ke;
        ne[0] = me;
        ne[1] = ke;
        memset(O, 0, sizeof(float) * T * hs);
        if (me == 0) continue;
        lra_pool_rows_forward(A, h.Q, h.mask, L, me, hs); /* landmarks */
        lra_transpose(At, M, A, me, hs);
        experts_and_compression(&h, ex, A, Vbar, hw + l.lsec);
        for (int i0 = 0; i0 < T; i0 += QC) {
            const int nq = T - i0 < QC ? T - i0 : QC;
            float *mx = lse + i0, *sum = tw + l.qsum; /* the chunk's, from i0 */
            route_and_share(&h, rt, mx, sum, O, At, Vbar, i0, nq);
            lra_invert_routes(inv, off, rt + (size_t)i0 * S, nq, S, me);
            /* routed: O += P_routed V_e, one expert at a time, added to each query's row in expert
             * order (a row rescaled first when the expert raises its max) */
            for (int e = 0; e < me; e++) {
                if (off[e + 1] == off[e]) continue;
                lra_gather_rows(Ke, h.K, ex + (size_t)e * Kx, ke, hs);
                lra_gather_rows(Ve, h.V, ex + (size_t)e * Kx, ke, hs);
                lra_transpose(Ket, ke, Ke, ke, hs);
                for (int at = off[e], n; at < off[e + 1]; at += n) {
                    n = lra_routed_tile(rows, inv, at, off[e + 1], h.tile, i0);
                    routed_logits(&h, R, Qe, Ket, rows, n);
                    for (int r = 0; r < n; r++) {
                        const int i = rows[r], x = i - i0, slot = slot_of(rt + (size_t)i * S, S, e);
                        const uint32_t rs = row_stream(&h, i);
                        float *p = R + (size_t)r * ke;
                        if (h.b16) lra_online_softmax_rise16(p, ke, &mx[x], &sum[x], O + (size_t)i * hs, hs);
                        else lra_online_softmax_rise(p, ke, &mx[x], &sum[x], O + (size_t)i * hs, hs);
                        if (h.thr)
                            for (int j = 0; j < ke; j++) p[j] *= keep_factor(rs, h.base + slot * ke + j, h.thr, h.keep_scale);
                    }
                    lra_tile_gemm(h.b16, h.bw, 0, 0, n, hs, ke, 1.0f, R, ke, Ve, hs, 0.0f, Out, hs);
                    lra_scatter_add_rows(O, Out, rows, n, hs);
                }
            }
            for (int x = 0; x < nq; x++) {
                for (int d = 0; d < hs; d++) O[(size_t)(i0 + x) * hs + d] /= sum[x];
                mx[x] = mx[x] + logf(sum[x]); /* the log-sum-exp */
            }
        }
    }
}

/* Backward of the routed entries of the chunk [i0, i0 + nq), one expert at a time:
 * dS = p (z dP - D) scale, dP = dO V^T, D (T) as below; dV_e and dK_e scattered per expert. */
static void routed_backward(const head_view *h, const float *dO, const float *D, float *dQ, float *dK, float *dV,
                            int i0, int nq) {
    const mita_ctx *c = h->c;
    const layout *l = &h->l;
    const int me = h->me, ke = h->ke, hs = h->hs, S = c->s, Kx = c->k;
    float *tw = h->tw, *Lg = tw + l->r, *dS = tw + l->r2, *Qe = tw + l->qe, *dOe = tw + l->oe;
    float *Ke = tw + l->ke, *Ve = tw + l->ve, *dKe = tw + l->dke, *dVe = tw + l->dve;
    float *Ket = tw + l->ket, *Vet = tw + l->vet; /* (d, k) each: Ke and Ve transposed */
    const float *lse = h->hw + l->lse;
    const int32_t *ex = (const int32_t *)(h->hw + l->ex);
    const lra_route *rt = (const lra_route *)(h->hw + l->rt);
    int32_t *off = (int32_t *)(tw + l->off), rows[TILE];
    uint16_t *inv = (uint16_t *)(tw + l->inv);
    lra_invert_routes(inv, off, rt + (size_t)i0 * S, nq, S, me);
    for (int e = 0; e < me; e++) {
        if (off[e + 1] == off[e]) continue;
        const int32_t *keys = ex + (size_t)e * Kx;
        lra_gather_rows(Ke, h->K, keys, ke, hs);
        lra_gather_rows(Ve, h->V, keys, ke, hs);
        lra_transpose(Ket, ke, Ke, ke, hs);
        lra_transpose(Vet, ke, Ve, ke, hs);
        memset(dKe, 0, sizeof(float) * (size_t)ke * hs);
        memset(dVe, 0, sizeof(float) * (size_t)ke * hs);
        for (int at = off[e], n; at < off[e + 1]; at += n) {
            n = lra_routed_tile(rows, inv, at, off[e + 1], h->tile, i0);
            routed_logits(h, Lg, Qe, Ket, rows, n); /* forward's logits again */
            lra_gather_rows(dOe, dO, rows, n, hs);
            lra_tile_gemm(h->b16, h->bw, 0, 0, n, ke, hs, 1.0f, dOe, hs, Vet, ke, 0.0f, dS, ke);
            for (int r = 0; r < n; r++) {
                const int i = rows[r], slot = slot_of(rt + (size_t)i * S, S, e);
                const uint32_t rs = row_stream(h, i);
                const float Di = D[i];
                float *p = Lg + (size_t)r * ke, *g = dS + (size_t)r * ke;
                const float li = lse[i];
                if (h->b16) lra_exp_row16(p, p, ke, 1.0f, li, NULL);
                else
                    for (int j = 0; j < ke; j++) p[j] = expf(p[j] - li);
                if (h->thr)
                    for (int j = 0; j < ke; j++) {
                        const float z = keep_factor(rs, h->base + slot * ke + j, h->thr, h->keep_scale);
                        g[j] = p[j] * (g[j] * z - Di) * h->scale;
                        p[j] *= z;
                    }
                else
                    for (int j = 0; j < ke; j++) g[j] = p[j] * (g[j] - Di) * h->scale;
            }
            /* dV_e += (p z)^T dO_e, dK_e += dS^T Q_e, dQ_e = dS K_e (into dOe, done with) */
            lra_tile_gemm(h->b16, h->bw, 1, 0, ke, hs, n, 1.0f, Lg, ke, dOe, hs, 1.0f, dVe, hs);
            lra_tile_gemm(h->b16, h->bw, 1, 0, ke, hs, n, 1.0f, dS, ke, Qe, hs, 1.0f, dKe, hs);
            lra_tile_gemm(h->b16, h->bw, 0, 0, n, hs, ke, 1.0f, dS, ke, Ke, hs, 0.0f, dOe, hs);
            lra_scatter_add_rows(dQ, dOe, rows, n, hs);
        }
        lra_scatter_add_rows(dV, dVe, keys, ke, hs);
        lra_scatter_add_rows(dK, dKe, keys, ke, hs);
    }
}

static void mita_backward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *dq, float *dk,
                          float *dv, float *dparams, void *ws, void *scratch, const float *dout, const float *o, const float *q,
                          const float *k, const float *v, const float *params) {
    (void)params; (void)dparams;
    const mita_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, M = c->m;
    const layout l = lay(c, s);

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        head_view h = view_of(c, s, a, &l, bh, ws, scratch, q, k, v);
        const size_t head = (size_t)bh * T * hs;
        float *hw = h.hw, *tw = h.tw, *A = tw + l.a, *At = tw + l.at;
        const float *Vbar = hw + l.vbar, *lse = hw + l.lse, *lsec = hw + l.lsec;
        const float *Q = h.Q, *K = h.K, *V = h.V, *dO = dout + head, *O = o + head;
        float *dQ = dq + head, *dK = dk + head, *dV = dv + head;
        const int32_t *ne = (const int32_t *)(hw + l.ne);
        h.me = ne[0]; h.ke = ne[1];
        const int me = h.me, tq = h.tile, tk = h.tile;
        if (me == 0) continue;
        h.base = c->shared ? me : 0;
        const int L = lra_valid_count(h.mask, T);
        lra_pool_rows_forward(A, Q, h.mask, L, me, hs); /* forward's landmarks again */
        lra_transpose(At, M, A, me, hs);
        /* D_i = dO_i . o_i, the softmax backward's row term, once per query in a sequential pass
         * (the routed entries met o's rows in expert order: a cache miss each) */
        float *D = tw + l.dd;
        lra_row_dots(D, dO, O, T, hs);
        for (int i0 = 0; i0 < T; i0 += QC)
            routed_backward(&h, dO, D, dQ, dK, dV, i0, T - i0 < QC ? T - i0 : QC);
        float *dA = tw + l.da, *dVbar = tw + l.dvb, *G = tw + l.sg, *Gd = tw + l.sgd, *dS = tw + l.sr2, *Z = tw + l.sz;
        /* transposed: Vbar (d, m), a key tile's K and V (d, tile) */
        float *Vbt = tw + l.vbt, *Kt = tw + l.skt, *Vt = tw + l.svt;
        memset(dA, 0, sizeof(float) * (size_t)me * hs);
        if (c->shared) {
            /* shared logits q_i . A_j tau_inv, a tile of queries at a time: dP = dO Vbar^T, dS, p z */
            memset(dVbar, 0, sizeof(float) * (size_t)me * hs);
            lra_transpose(Vbt, me, Vbar, me, hs);
            for (int t0 = 0; t0 < T; t0 += tq) {
                const int nq = T - t0 < tq ? T - t0 : tq;
                const float *Qt = Q + (size_t)t0 * hs, *dOt = dO + (size_t)t0 * hs;
                /* forward's logits again, in fp32 as forward made them (they also routed) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, me, hs, 1.0f, Qt, hs, At, M, 0.0f, G, M);
                lra_tile_gemm(h.b16, h.bw, 0, 0, nq, me, hs, 1.0f, dOt, hs, Vbt, me, 0.0f, dS, me);
                for (int r = 0; r < nq; r++) {
                    const int i = t0 + r;
                    const uint32_t rs = row_stream(&h, i);
                    const float Di = D[i];
                    float *p = Gd + (size_t)r * me, *g = dS + (size_t)r * me;
                    const float li = lse[i], *gr = G + (size_t)r * M;
                    if (h.b16) lra_exp_row16(p, gr, me, h.tau_inv, li, NULL);
                    else
                        for (int j = 0; j < me; j++) p[j] = expf(gr[j] * h.tau_inv - li);
                    if (h.thr)
                        for (int j = 0; j < me; j++) {
                            const float z = keep_factor(rs, j, h.thr, h.keep_scale);
                            g[j] = p[j] * (g[j] * z - Di) * h.tau_inv;
                            p[j] *= z;
                        }
                    else
                        for (int j = 0; j < me; j++) g[j] = p[j] * (g[j] - Di) * h.tau_inv;
                }
                lra_tile_gemm(h.b16, h.bw, 0, 0, nq, hs, me, 1.0f, dS, me, A, hs, 1.0f, dQ + (size_t)t0 * hs, hs);
                lra_tile_gemm(h.b16, h.bw, 1, 0, me, hs, nq, 1.0f, dS, me, Qt, hs, 1.0f, dA, hs);
                lra_tile_gemm(h.b16, h.bw, 1, 0, me, hs, nq, 1.0f, Gd, me, dOt, hs, 1.0f, dVbar, hs);
            }
            /* Vbar = Pc V, Pc = softmax(A K^T scale + M), a tile of keys at a time from lsec;
             * D_j = sum_t Pc_jt dPc_jt = dVbar_j . Vbar_j */
            float *Dc = tw + l.mx;
            lra_row_dots(Dc, dVbar, Vbar, me, hs);
            for (int t0 = 0; t0 < T; t0 += tk) {
                const int nk = T - t0 < tk ? T - t0 : tk;
                if (!tile_has_key(h.mask, t0, nk)) continue;
                const float *Ktile = K + (size_t)t0 * hs;
                lra_transpose(Kt, tk, Ktile, nk, hs);
                lra_transpose(Vt, tk, V + (size_t)t0 * hs, nk, hs);
                /* forward's compression logits again, in fp32 as forward made them */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, me, nk, hs, h.scale, A, hs, Kt, tk, 0.0f, Z, tk);
                for (int j = 0; j < me; j++) {
                    const float lj = lsec[j];
                    float *zr = Z + (size_t)j * tk;
                    if (h.b16) {
                        lra_exp_row16(zr, zr, nk, 1.0f, lj, h.mask + t0);
                    } else {
                        for (int t = 0; t < nk; t++) zr[t] = expf(zr[t] - lj);
                        for (int t = 0; t < nk; t++) zr[t] = h.mask[t0 + t] ? zr[t] : 0.0f;
                    }
                }
                lra_tile_gemm(h.b16, h.bw, 1, 0, nk, hs, me, 1.0f, Z, tk, dVbar, hs, 1.0f, dV + (size_t)t0 * hs, hs);
                lra_tile_gemm(h.b16, h.bw, 0, 0, me, nk, hs, 1.0f, dVbar, hs, Vt, tk, 0.0f, dS, tk);
                for (int j = 0; j < me; j++)
                    for (int t = 0; t < nk; t++) {
                        float *g = dS + (size_t)j * tk + t;
                        *g = Z[(size_t)j * tk + t] * (*g - Dc[j]);
                    }
                lra_tile_gemm(h.b16, h.bw, 0, 0, me, hs, nk, h.scale, dS, tk, Ktile, hs, 1.0f, dA, hs);
                lra_tile_gemm(h.b16, h.bw, 1, 0, nk, hs, me, h.scale, dS, tk, A, hs, 1.0f, dK + (size_t)t0 * hs, hs);
            }
        }
        lra_pool_rows_backward(dQ, dA, h.mask, L, me, hs); /* through the pooling into q */
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
        const int32_t *ex = (const int32_t *)(hw + l.ex), *ne = (const int32_t *)(hw + l.ne);
        const lra_route *rt = (const lra_route *)(hw + l.rt);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const int me = ne[0], ke = ne[1];
        memset(count, 0, sizeof(long) * M);
        memset(held, 0, (size_t)T);
        for (int i = 0; i < T; i++)
            for (int e = 0; e < c->s && mask[i]; e++)
                if (rt[(size_t)i * c->s + e] != LRA_NO_ROUTE) count[rt[(size_t)i * c->s + e]]++;
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

/* no shared expert, and routed experts that each hold every key */
static void mita_exact_opts(lra_attn_shape max, char *buf, size_t n) {
    snprintf(buf, n, "m=4,k=%d,shared=0", max.T);
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
    .exact_opts = mita_exact_opts,
    .bf16 = 1,
};
