/* agent.c - Agent attention (Han et al., ECCV 2024), as its paper and code define it:
 *
 *   A   = pool(q, n)                              (n, d)  adaptive average pooling of the valid
 *                                                         rows of q (n = L when L < n valid rows)
 *   V_A = softmax(A k^T / sqrt(d) [+ B1] + M) v   (n, d)  agent aggregation over valid keys
 *   o   = softmax(q A^T / sqrt(d) [+ B2]) V_A     (T, d)  agent broadcast
 *   o  += dwc(v)                                          when dwc=1
 *
 * Options: n (128); dwc=1 adds a depthwise 1-D convolution over v along the sequence (kernel 3,
 * zero padding, per channel, with a bias, padded positions read as 0); bias=1 adds learned agent
 * biases B1 (n, T) and B2 (T, n) per head, N(0, 0.02), for the configured T (a shorter batch uses
 * their first columns/rows). Gradients flow through both softmaxes and through A into q via the
 * pooling. Attention dropout (as in the official code) drops both probability matrices.
 *
 * bf16 (args->precision): every product through lra_tile_gemm (tile_bf16.h), which rounds its
 * operands per call; the pooling, the softmaxes and every accumulator stay fp32.
 *
 * Memory: no (n x T) matrix. Forward aggregates a tile of keys at a time with an online softmax
 * (each agent's running max and sum, as full.c does for queries) and broadcasts a tile of queries
 * at a time; backward recomputes both from what forward kept. Saved for backward, per head: A and
 * V_A (n x d) and the aggregation's log-sum-exp (n), 4 n (2 d + 1) bytes (64.5 KiB at n = 128,
 * d = 64), nothing per token. With bias=1 backward also keeps the logit gradients (n x T, T x n)
 * per head, from which the bias gradients are reduced over the batch in batch order: 8 n bytes per
 * (batch, head, token). Per thread: three (n x TILE) tiles, dV_A and dA (n x d), 2 n floats. Each
 * head is one thread's (matmuls are single-threaded sgemm inside the parallel region); parameter
 * gradients, shared by the batch, are reduced afterwards over fixed entries in batch order: no
 * result depends on the thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "backend.h"
#include "exp16.h"
#include "pool.h"
#include "tile_bf16.h"
#include "vec.h"

#define NEG_BIG (-1e30f) /* see full.c: this file builds with -ffast-math */

typedef struct {
    int n, dwc, bias;
    int nthreads;
    lra_attn_shape max;
} agent_ctx;

static lra_status agent_opt(const char *key, const char *val, void *user, char *err) {
    agent_ctx *c = user;
    if (strcmp(key, "n") == 0) return lra_attn_opt_int("agent", key, val, 1, 1 << 20, &c->n, err);
    if (strcmp(key, "dwc") == 0) return lra_attn_opt_int("agent", key, val, 0, 1, &c->dwc, err);
    if (strcmp(key, "bias") == 0) return lra_attn_opt_int("agent", key, val, 0, 1, &c->bias, err);
    return lra_fail(err, LRA_ERR_USAGE, "agent: unknown option '%s' (known: n, dwc, bias)", key);
}

static lra_status agent_configure(void **ctx, const char *opts, lra_attn_shape max, int nthreads, char *err) {
    agent_ctx c = {.n = 128, .nthreads = nthreads, .max = max};
    lra_status st = lra_attn_parse_opts("agent", opts, agent_opt, &c, err);
    if (st != LRA_OK) return st;
    if (c.n > max.T)
        return lra_fail(err, LRA_ERR_USAGE, "agent: n=%d agents exceed the sequence length T=%d", c.n, max.T);
    agent_ctx *p = malloc(sizeof *p);
    if (!p) return lra_fail(err, LRA_ERR_NOMEM, "agent: out of memory");
    *p = c;
    *ctx = p;
    return LRA_OK;
}

static void agent_release(void *ctx) { free(ctx); }

static cJSON *agent_describe(const void *ctx) {
    const agent_ctx *c = ctx;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "n", c->n);
    cJSON_AddNumberToObject(j, "dwc", c->dwc);
    cJSON_AddNumberToObject(j, "bias", c->bias);
    if (c->bias) cJSON_AddNumberToObject(j, "bias_length", c->max.T);
    return j;
}

/* parameters: dwc weights (NH*hs, 3) and biases (NH*hs), then B1 (NH, n, Tmax) and B2 (NH, Tmax, n) */
static size_t dwc_count(const agent_ctx *c) { return c->dwc ? (size_t)4 * c->max.NH * c->max.hs : 0; }
static size_t bias_count(const agent_ctx *c) { return c->bias ? (size_t)2 * c->max.NH * c->n * c->max.T : 0; }
static size_t agent_param_count(const void *ctx, lra_attn_shape max) {
    (void)max;
    return dwc_count(ctx) + bias_count(ctx);
}

static void agent_init_params(const void *ctx, lra_attn_shape max, float *p, uint64_t seed) {
    (void)max;
    const agent_ctx *c = ctx;
    lra_rng r;
    lra_rng_seed(&r, seed);
    /* PyTorch's default for a depthwise Conv1d (fan_in 3): U(-1/sqrt(3), 1/sqrt(3)), bias too */
    for (size_t i = 0; i < dwc_count(c); i++) p[i] = (float)((2.0 * lra_rng_uniform(&r) - 1.0) / sqrt(3.0));
    for (size_t i = 0; i < bias_count(c); i++) p[dwc_count(c) + i] = (float)(0.02 * lra_rng_normal(&r));
}

/* Tiles: the aggregation runs over TILE keys at a time with an online softmax (each agent's
 * running max and sum), the broadcast over TILE queries at a time; no (n x T) matrix exists
 * (with bias=1 backward keeps the logit gradients per head, for the bias gradients). */
enum { TILE = 64 };

/* workspace layout (floats): per head A, VA (n*hs each) and the aggregation's log-sum-exp (n);
 * with bias=1, the logit gradients dS1 (n*T) and dS2 (T*n). Per thread: three tiles (n*TILE:
 * logits or probabilities, dropped probabilities, their gradient), dVA and dA (n*hs), the
 * running max and sum (n), and transposed copies - A and VA (hs*n), a key tile's K and V
 * (hs*TILE) - so that every product against them runs as "A times B" in OpenBLAS's small-matrix
 * kernels (see lra_transpose): 6-25% faster forward+backward at T = 1024 and 16384. */
typedef struct { size_t head, a, va, lse, ds1, ds2, thread, p, pd, g, dva, da, mx, sum, at, vat, kt, vt, bw, op16[7]; } layout;
static layout lay(const agent_ctx *c, lra_attn_shape s) {
    layout l;
    const size_t n = (size_t)c->n, nd = n * s.hs, nT = n * s.T, tile = n * TILE;
    size_t off = 0;
#define CARVE(field, len) do { l.field = off; off += (len); } while (0)
    CARVE(a, nd);        // (n, d): the agents A, pooled queries
    CARVE(va, nd);       // (n, d): the agent values V_A
    CARVE(lse, n);       // (n): the aggregation softmax's log-sum-exp per agent
    if (c->bias) {
        CARVE(ds1, nT);  // (n, T): d logits of the aggregation, reduced into B1's gradient
        CARVE(ds2, nT);  // (T, n): d logits of the broadcast, into B2's
    }
    l.head = off;
    off = 0;
    CARVE(p, tile);      // (n, TILE) or (TILE, n): logits, then probabilities
    CARVE(pd, tile);     // the same tile after dropout
    CARVE(g, tile);      // the gradient of its logits
    CARVE(dva, nd);      // (n, d): d V_A
    CARVE(da, nd);       // (n, d): d A
    CARVE(mx, n);        // (n): the running max of each agent's logits
    CARVE(sum, n);       // (n): the running sum of their exponentials
    CARVE(at, nd);       // (d, n): A transposed (see lra_transpose)
    CARVE(vat, nd);      // (d, n): V_A transposed
    CARVE(kt, s.hs * (size_t)TILE); // (d, TILE): a key tile transposed
    CARVE(vt, s.hs * (size_t)TILE); // (d, TILE): its values transposed
    /* bf16: one product's operands (tile_bf16.h). Every product has a side of TILE or d and one
     * of at most n, TILE or d, so M K + K N stays within (n + TILE + d + 2)(TILE + d + 2) */
    CARVE(bw, ((size_t)(c->n + TILE + s.hs + 2) * (TILE + s.hs + 2) + 1) / 2);
    /* bf16: the head's operands that serve every tile, each rounded once (packed16 below): at
     * most (n + 1)(d + 1) bf16 values each */
    for (int i = 0; i < 7; i++) CARVE(op16[i], ((size_t)(c->n + 1) * (s.hs + 1) + 1) / 2);
    l.thread = off;
#undef CARVE
    return l;
}

static size_t agent_saved_bytes(const void *ctx, lra_attn_shape s) {
    return sizeof(float) * (size_t)s.B * s.NH * lay(ctx, s).head;
}

static size_t agent_scratch_bytes(const void *ctx, lra_attn_shape s) {
    const agent_ctx *c = ctx;
    return sizeof(float) * (size_t)c->nthreads * lay(c, s).thread;
}

static void agent_flops(const void *ctx, lra_attn_shape s, double *fwd, double *bwd) {
    const agent_ctx *c = ctx;
    const double heads = (double)s.B * s.NH, T = s.T, d = s.hs, n = c->n < s.T ? c->n : s.T;
    /* four (n x T x d) products forward: A k^T, P1 v, q A^T, P2 V_A; backward recomputes the two
     * logit products and makes eight more */
    *fwd = heads * (8.0 * n * T * d + T * d + (c->dwc ? 6.0 * T * d : 0));
    *bwd = heads * (20.0 * n * T * d + T * d + (c->dwc ? 12.0 * T * d : 0));
}

/* bf16: a head's operands that serve every tile, rounded once per head instead of once per product
 * (the same rounding, so the same bits; tile_bf16.h's _a16 and _b16). a: scale A, rows (the
 * aggregation logits' A); at: A^T in pairs (the broadcast logits' B); ap: A in pairs (dQ's and
 * dK's B); va, vat: V_A and V_A^T in pairs (O's and dP2's B); dva: dV_A in pairs (dV's B); dvar:
 * dV_A, rows (dP1's A). */
typedef struct { uint16_t *a, *at, *ap, *va, *vat, *dva, *dvar; } packed16;

static packed16 packed_of(float *tw, const layout *l) {
    uint16_t *p[7];
    for (int i = 0; i < 7; i++) p[i] = (uint16_t *)(tw + l->op16[i]);
    return (packed16){p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
}

/* One product with a packed operand: bf16 takes B (or alpha A) as packed16 holds it, fp32 the
 * operand as stored */
static void product_b16(lra_tile_isa b16, uint16_t *bw, int transA, int M, int N, int K, float alpha, const float *A,
                        int lda, const float *B, int ldb, const uint16_t *Bp, float beta, float *C, int ldc) {
    if (b16) lra_tile_gemm_b16(b16, bw, transA, M, N, K, alpha, A, lda, Bp, beta, C, ldc);
    else lra_tile_gemm(b16, bw, transA, 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
static void product_a16(lra_tile_isa b16, uint16_t *bw, int M, int N, int K, float alpha, const float *A, int lda,
                        const uint16_t *Ab, const float *B, int ldb, float beta, float *C, int ldc) {
    if (b16) lra_tile_gemm_a16(b16, bw, M, N, K, Ab, B, ldb, beta, C, ldc);
    else lra_tile_gemm(b16, bw, 0, 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* S (m x nk, stride TILE) = A K[t0..t0+nk)^T scale [+ B1], masked keys NEG_BIG: aggregation
 * logits. Kt: the tile's keys transposed, (hs, TILE), so that the product runs as "A times B" */
static void aggregation_logits(float *S, const float *A, const float *Kt, const uint8_t *mask, const float *B1, int m,
                               int t0, int nk, int hs, int Tmax, float scale, lra_tile_isa b16, uint16_t *bw,
                               const packed16 *pk) {
    product_a16(b16, bw, m, nk, hs, scale, A, hs, pk->a, Kt, TILE, 0.0f, S, TILE);
    for (int j = 0; j < m; j++)
        for (int t = 0; t < nk; t++) {
            float *x = S + (size_t)j * TILE + t;
            if (B1) *x += B1[(size_t)j * Tmax + t0 + t];
            *x = mask[t0 + t] ? *x : NEG_BIG;
        }
}

/* P (nq x m, stride n) = softmax(Q[t0..t0+nq) A^T scale [+ B2]) over the m agents: broadcast
 * probabilities. At: A transposed, (hs, n) */
static void broadcast_probs(float *P, const float *Q, const float *At, const float *B2, int m, int t0, int nq, int n,
                            int hs, float scale, lra_tile_isa b16, uint16_t *bw, const packed16 *pk) {
    product_b16(b16, bw, 0, nq, m, hs, scale, Q + (size_t)t0 * hs, hs, At, n, pk->at, 0.0f, P, n);
    for (int t = 0; t < nq; t++) {
        float *row = P + (size_t)t * n, mx = NEG_BIG, sum = 0.0f;
        if (B2)
            for (int j = 0; j < m; j++) row[j] += B2[(size_t)(t0 + t) * n + j];
        if (b16) { /* bf16: exp16.h's exp (fp32 keeps libmvec's, and its bits) */
            mx = lra_max16(row, m, mx);
            sum = lra_exp_row16(row, row, m, 1.0f, mx, NULL);
        } else {
            for (int j = 0; j < m; j++) mx = row[j] > mx ? row[j] : mx;
            for (int j = 0; j < m; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
        }
        const float inv = 1.0f / sum;
        for (int j = 0; j < m; j++) row[j] *= inv;
    }
}

/* Pd = P after dropout, entry (r, j) being the probability matrix's (row0 + r, col0 + j): row
 * r's keep mask is the stream (seed, bh, row), element col. Returns P itself without dropout. */
static const float *dropped(float *Pd, const float *P, int rows, int cols, int ld, const lra_attn_args *a,
                            uint64_t seed, int bh, int row0, int col0) {
    if (a->dropout <= 0) return P;
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float ks = 1.0f / (1.0f - a->dropout);
    for (int r = 0; r < rows; r++) {
        const uint32_t rs = (uint32_t)lra_stream(seed, (uint64_t)bh, (uint64_t)(row0 + r));
        for (int j = 0; j < cols; j++)
            Pd[(size_t)r * ld + j] = P[(size_t)r * ld + j] * (lra_keep(rs, (uint32_t)(col0 + j), thr) ? ks : 0.0f);
    }
    return Pd;
}

/* G (rows x cols, stride ld) holds d/dPd; becomes the logits' gradient P (G' - D), G' = d/dP
 * through the dropout; D per row: given (D != NULL), or sum_j P G' of the row's own entries */
static void softmax_grad(float *G, const float *P, const float *Pd, int rows, int cols, int ld, const float *D) {
    for (int r = 0; r < rows; r++) {
        float *g = G + (size_t)r * ld;
        const float *p = P + (size_t)r * ld, *pd = Pd + (size_t)r * ld;
        if (Pd != P)
            for (int j = 0; j < cols; j++) g[j] = p[j] > 0 ? g[j] * pd[j] / p[j] : 0.0f;
        float dr = 0.0f;
        if (D) dr = D[r];
        else
            for (int j = 0; j < cols; j++) dr += p[j] * g[j];
        for (int j = 0; j < cols; j++) g[j] = p[j] * (g[j] - dr);
    }
}

static int tile_has_key(const uint8_t *mask, int t0, int nk) {
    for (int t = 0; t < nk; t++)
        if (mask[t0 + t]) return 1;
    return 0;
}

#define AGG_SEED(a) lra_stream((a)->seed, 0xA66, 1)
#define BCAST_SEED(a) lra_stream((a)->seed, 0xA66, 2)

/* V_A (m x hs) = softmax(A K^T scale + B1, valid keys) (after dropout) V, a tile of keys at a time
 * with each agent's running max mx and sum; lse (m) = the softmax's log-sum-exp. Scratch: S, Sd
 * (m x TILE) and Kt (hs x TILE), each key tile transposed */
static void aggregate(float *VA, float *lse, float *mx, float *sum, float *S, float *Sd, float *Kt, const float *A,
                      const float *K, const float *V, const uint8_t *mask, const float *B1, int m, int T, int hs,
                      int Tmax, float scale, const lra_attn_args *a, int bh, uint16_t *bw, const packed16 *pk) {
    const lra_tile_isa b16 = lra_attn_bf16_kernel(a);
    memset(VA, 0, sizeof(float) * (size_t)m * hs);
    for (int j = 0; j < m; j++) { mx[j] = NEG_BIG; sum[j] = 0.0f; }
    for (int t0 = 0; t0 < T; t0 += TILE) {
        const int nk = T - t0 < TILE ? T - t0 : TILE;
        if (!tile_has_key(mask, t0, nk)) continue;
        lra_transpose(Kt, TILE, K + (size_t)t0 * hs, nk, hs);
        aggregation_logits(S, A, Kt, mask, B1, m, t0, nk, hs, Tmax, scale, b16, bw, pk);
        for (int j = 0; j < m; j++) {
            if (b16) lra_online_softmax_tile16(S + (size_t)j * TILE, nk, &mx[j], &sum[j], VA + (size_t)j * hs, hs);
            else lra_online_softmax_tile(S + (size_t)j * TILE, nk, &mx[j], &sum[j], VA + (size_t)j * hs, hs);
        }
        const float *Pd = dropped(Sd, S, m, nk, TILE, a, AGG_SEED(a), bh, 0, t0);
        lra_tile_gemm(b16, bw, 0, 0, m, hs, nk, 1.0f, Pd, TILE, V + (size_t)t0 * hs, hs, 1.0f,
                    VA, hs);
    }
    for (int j = 0; j < m; j++) {
        for (int d = 0; d < hs; d++) VA[(size_t)j * hs + d] /= sum[j];
        lse[j] = mx[j] + logf(sum[j]);
    }
}

static void agent_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws, void *scratch,
                          const float *q, const float *k, const float *v, const float *params) {
    const agent_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, n = c->n, Tmax = c->max.T;
    const float scale = 1.0f / sqrtf((float)hs);
    const layout l = lay(c, s);
    float *w0 = ws, *t0 = scratch;
    const float *dwc_w = c->dwc ? params : NULL, *dwc_b = c->dwc ? params + 3 * (size_t)s.NH * hs : NULL;
    const float *B1 = c->bias ? params + dwc_count(c) : NULL, *B2 = c->bias ? B1 + (size_t)s.NH * n * Tmax : NULL;

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        const int h = bh % s.NH;
        float *hw = w0 + (size_t)bh * l.head, *tw = t0 + (size_t)omp_get_thread_num() * l.thread;
        float *A = hw + l.a, *VA = hw + l.va, *P = tw + l.p, *At = tw + l.at;
        const lra_tile_isa b16 = lra_attn_bf16_kernel(a);
        uint16_t *bw = (uint16_t *)(tw + l.bw); /* bf16 operands of one product (tile_bf16.h) */
        const packed16 pk = packed_of(tw, &l);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head;
        float *O = o + head;
        const int L = lra_valid_count(mask, T), m = n < L ? n : L;
        memset(O, 0, sizeof(float) * T * hs);
        if (m > 0) {
            lra_pool_rows_forward(A, Q, mask, L, m, hs);
            lra_transpose(At, n, A, m, hs);
            if (b16) {
                lra_bf16_rows(pk.a, lra_bf16_even(hs), A, hs, m, hs, scale);
                lra_bf16_pairs_rows(pk.at, m, At, n, hs, m, 1.0f);
            }
            aggregate(VA, hw + l.lse, tw + l.mx, tw + l.sum, P, tw + l.pd, tw + l.kt, A, K, V, mask,
                      B1 ? B1 + (size_t)h * n * Tmax : NULL, m, T, hs, Tmax, scale, a, bh, bw, &pk);
            if (b16) lra_bf16_pairs_rows(pk.va, hs, VA, hs, m, hs, 1.0f);
            for (int t0 = 0; t0 < T; t0 += TILE) { /* broadcast: O = P2 V_A, a tile of queries at a time */
                const int nq = T - t0 < TILE ? T - t0 : TILE;
                broadcast_probs(P, Q, At, B2 ? B2 + (size_t)h * Tmax * n : NULL, m, t0, nq, n, hs, scale, b16, bw, &pk);
                const float *Pd = dropped(tw + l.pd, P, nq, m, n, a, BCAST_SEED(a), bh, t0, 0);
                product_b16(b16, bw, 0, nq, hs, m, 1.0f, Pd, n, VA, hs, pk.va, 0.0f, O + (size_t)t0 * hs, hs);
            }
        }
        if (c->dwc) {
            const float *w = dwc_w + (size_t)h * hs * 3, *bb = dwc_b + (size_t)h * hs;
            for (int t = 0; t < T; t++)
                for (int d = 0; d < hs; d++) {
                    float acc = bb[d];
                    for (int z = -1; z <= 1; z++)
                        if (t + z >= 0 && t + z < T && mask[t + z]) acc += w[d * 3 + z + 1] * V[(size_t)(t + z) * hs + d];
                    O[(size_t)t * hs + d] += acc;
                }
        }
    }
}

static void agent_backward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *dq, float *dk,
                           float *dv, float *dparams, void *ws, void *scratch, const float *dout, const float *o, const float *q,
                           const float *k, const float *v, const float *params) {
    (void)o;
    const agent_ctx *c = ctx;
    const int T = s.T, hs = s.hs, BH = s.B * s.NH, n = c->n, Tmax = c->max.T;
    const float scale = 1.0f / sqrtf((float)hs);
    const layout l = lay(c, s);
    float *w0 = ws, *t0 = scratch;
    const float *dwc_w = params;
    const float *B1 = c->bias ? params + dwc_count(c) : NULL, *B2 = c->bias ? B1 + (size_t)s.NH * n * Tmax : NULL;

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        const int h = bh % s.NH;
        float *hw = w0 + (size_t)bh * l.head, *tw = t0 + (size_t)omp_get_thread_num() * l.thread;
        const float *A = hw + l.a, *VA = hw + l.va, *lse = hw + l.lse;
        float *P = tw + l.p, *G = tw + l.g, *dVA = tw + l.dva, *dA = tw + l.da;
        float *At = tw + l.at, *VAt = tw + l.vat, *Kt = tw + l.kt, *Vt = tw + l.vt; /* transposed */
        float *D = tw + l.mx; /* (m): dVA_j . VA_j, in the running max's place */
        const lra_tile_isa b16 = lra_attn_bf16_kernel(a);
        uint16_t *bw = (uint16_t *)(tw + l.bw); /* bf16 operands of one product (tile_bf16.h) */
        const packed16 pk = packed_of(tw, &l);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head, *dO = dout + head;
        float *dQ = dq + head, *dK = dk + head, *dV = dv + head;
        const int L = lra_valid_count(mask, T), m = n < L ? n : L;
        if (m > 0) {
            memset(dVA, 0, sizeof(float) * (size_t)m * hs);
            memset(dA, 0, sizeof(float) * (size_t)m * hs);
            lra_transpose(At, n, A, m, hs);
            lra_transpose(VAt, n, VA, m, hs);
            if (b16) {
                lra_bf16_rows(pk.a, lra_bf16_even(hs), A, hs, m, hs, scale);
                lra_bf16_pairs_rows(pk.at, m, At, n, hs, m, 1.0f);
                lra_bf16_pairs_rows(pk.vat, m, VAt, n, hs, m, 1.0f);
                lra_bf16_pairs_rows(pk.ap, hs, A, hs, m, hs, 1.0f);
            }
            /* broadcast, a tile of queries at a time: O = P2d V_A */
            for (int t0 = 0; t0 < T; t0 += TILE) {
                const int nq = T - t0 < TILE ? T - t0 : TILE;
                const float *Qt = Q + (size_t)t0 * hs, *dOt = dO + (size_t)t0 * hs;
                broadcast_probs(P, Q, At, B2 ? B2 + (size_t)h * Tmax * n : NULL, m, t0, nq, n, hs, scale, b16, bw, &pk);
                const float *Pd = dropped(tw + l.pd, P, nq, m, n, a, BCAST_SEED(a), bh, t0, 0);
                lra_tile_gemm(b16, bw, 1, 0, m, hs, nq, 1.0f, Pd, n, dOt, hs, 1.0f, dVA, hs);
                product_b16(b16, bw, 0, nq, m, hs, 1.0f, dOt, hs, VAt, n, pk.vat, 0.0f, G, n);
                softmax_grad(G, P, Pd, nq, m, n, NULL);
                product_b16(b16, bw, 0, nq, hs, m, scale, G, n, A, hs, pk.ap, 1.0f, dQ + (size_t)t0 * hs, hs);
                lra_tile_gemm(b16, bw, 1, 0, m, hs, nq, scale, G, n, Qt, hs, 1.0f, dA, hs);
                if (c->bias)
                    for (int t = 0; t < nq; t++) memcpy(hw + l.ds2 + (size_t)(t0 + t) * n, G + (size_t)t * n, sizeof(float) * m);
            }
            if (b16) {
                lra_bf16_pairs_rows(pk.dva, hs, dVA, hs, m, hs, 1.0f);
                lra_bf16_rows(pk.dvar, lra_bf16_even(hs), dVA, hs, m, hs, 1.0f);
            }
            /* aggregation, a tile of keys at a time: V_A = P1d V. D_j = sum_t P1_j,t d/dP1_j,t = dVA_j . VA_j */
            for (int j = 0; j < m; j++) { /* not lra_row_dots: summed in D[j] itself, gcc orders the sum
                                            * otherwise, and the numerics versions keep this order's bits */
                D[j] = 0.0f;
                for (int d = 0; d < hs; d++) D[j] += dVA[(size_t)j * hs + d] * VA[(size_t)j * hs + d];
            }
            for (int t0 = 0; t0 < T; t0 += TILE) {
                const int nk = T - t0 < TILE ? T - t0 : TILE;
                if (!tile_has_key(mask, t0, nk)) {
                    if (c->bias)
                        for (int j = 0; j < m; j++) memset(hw + l.ds1 + (size_t)j * T + t0, 0, sizeof(float) * nk);
                    continue;
                }
                lra_transpose(Kt, TILE, K + (size_t)t0 * hs, nk, hs);
                lra_transpose(Vt, TILE, V + (size_t)t0 * hs, nk, hs);
                aggregation_logits(P, A, Kt, mask, B1 ? B1 + (size_t)h * n * Tmax : NULL, m, t0, nk, hs, Tmax, scale, b16, bw,
                                   &pk);
                for (int j = 0; j < m; j++) {
                    const float lj = lse[j]; /* a local, so that gcc vectorises the exp */
                    float *pr = P + (size_t)j * TILE;
                    if (b16) lra_exp_row16(pr, pr, nk, 1.0f, lj, NULL);
                    else
                        for (int t = 0; t < nk; t++) pr[t] = expf(pr[t] - lj);
                }
                const float *Pd = dropped(tw + l.pd, P, m, nk, TILE, a, AGG_SEED(a), bh, 0, t0);
                product_b16(b16, bw, 1, nk, hs, m, 1.0f, Pd, TILE, dVA, hs, pk.dva, 1.0f, dV + (size_t)t0 * hs, hs);
                product_a16(b16, bw, m, nk, hs, 1.0f, dVA, hs, pk.dvar, Vt, TILE, 0.0f, G, TILE);
                softmax_grad(G, P, Pd, m, nk, TILE, D);
                lra_tile_gemm(b16, bw, 0, 0, m, hs, nk, scale, G, TILE, K + (size_t)t0 * hs,
                            hs, 1.0f, dA, hs);
                product_b16(b16, bw, 1, nk, hs, m, scale, G, TILE, A, hs, pk.ap, 1.0f, dK + (size_t)t0 * hs, hs);
                if (c->bias)
                    for (int j = 0; j < m; j++) memcpy(hw + l.ds1 + (size_t)j * T + t0, G + (size_t)j * TILE, sizeof(float) * nk);
            }
            lra_pool_rows_backward(dQ, dA, mask, L, m, hs); /* through the pooling into q */
        }
        if (c->dwc) { /* o[t] += w[z+1] v[t+z]  =>  dv[t+z] += w[z+1] dO[t] for valid t+z */
            const float *w = dwc_w + (size_t)h * hs * 3;
            for (int t = 0; t < T; t++)
                for (int z = -1; z <= 1; z++) {
                    if (t + z < 0 || t + z >= T || !mask[t + z]) continue;
                    for (int d = 0; d < hs; d++) dV[(size_t)(t + z) * hs + d] += w[d * 3 + z + 1] * dO[(size_t)t * hs + d];
                }
        }
    }
    if (!dparams) return;
    /* parameter gradients: sums over the batch in batch order, one thread per entry range */
    if (c->dwc) {
        float *gw = dparams, *gb = dparams + 3 * (size_t)s.NH * hs;
#pragma omp parallel for schedule(static) num_threads(c->nthreads)
        for (int ch = 0; ch < s.NH * hs; ch++) {
            const int h = ch / hs, d = ch % hs;
            for (int b = 0; b < s.B; b++) {
                const size_t head = ((size_t)b * s.NH + h) * T * hs;
                const uint8_t *mask = a->mask + (size_t)b * T;
                for (int t = 0; t < T; t++) {
                    const float g = dout[head + (size_t)t * hs + d];
                    gb[ch] += g;
                    for (int z = -1; z <= 1; z++)
                        if (t + z >= 0 && t + z < T && mask[t + z]) gw[ch * 3 + z + 1] += g * v[head + (size_t)(t + z) * hs + d];
                }
            }
        }
    }
    if (c->bias) {
        float *gB1 = dparams + dwc_count(c), *gB2 = gB1 + (size_t)s.NH * n * Tmax;
#pragma omp parallel for schedule(static) num_threads(c->nthreads)
        for (int h = 0; h < s.NH; h++)
            for (int b = 0; b < s.B; b++) {
                const float *hw = w0 + ((size_t)b * s.NH + h) * l.head;
                const uint8_t *mask = a->mask + (size_t)b * T;
                int L = 0;
                for (int t = 0; t < T; t++) L += mask[t];
                const int m = n < L ? n : L;
                for (int j = 0; j < m; j++)
                    for (int t = 0; t < T; t++) gB1[((size_t)h * n + j) * Tmax + t] += hw[l.ds1 + (size_t)j * T + t];
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < m; j++) gB2[((size_t)h * Tmax + t) * n + j] += hw[l.ds2 + (size_t)t * n + j];
            }
    }
}

const lra_attn_i lra_attn_agent = {
    .name = "agent",
    .summary = "Agent attention: n pooled agent tokens aggregate, then broadcast; n, dwc, bias",
    .configure = agent_configure,
    .release = agent_release,
    .describe = agent_describe,
    .saved_bytes = agent_saved_bytes,
    .scratch_bytes = agent_scratch_bytes,
    .flops = agent_flops,
    .forward = agent_forward,
    .backward = agent_backward,
    .param_count = agent_param_count,
    .init_params = agent_init_params,
    .bf16 = 1,
};
