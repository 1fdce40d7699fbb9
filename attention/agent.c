/* agent.c - Agent attention (Han et al., ECCV 2024), as in ../shared/spec/attention.md:
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
 * Saved for backward, per head: A and V_A (n x d), 4 * 2 n d bytes (32 KiB at n = 128, d = 32);
 * backward recomputes both probability matrices with forward's own calls (the same bits). With
 * bias=1 the probability matrices (n x T, T x n) stay per head instead: backward overwrites them
 * with the logit gradients, from which the bias gradients are reduced over the batch in batch
 * order, 4 * 2 n bytes per (batch, head, token) more. Per thread: the recomputed matrices and one
 * n x T scratch pair. Each head is one thread's (matmuls are
 * single-threaded sgemm inside the parallel region); parameter gradients, shared by the batch,
 * are reduced afterwards over fixed entries in batch order: no result depends on the thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "backend.h"
#include "pool.h"

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

/* workspace layout (floats): per head A, VA (n*hs each), and with bias=1 P1 (n*T), P2 (T*n); then
 * per thread, P1 and P2 without bias, two (n*T) scratch matrices, two (n*hs) and T ints of
 * valid-row indices. p1, p2: offsets in the head's part (bias=1) or the thread's. */
typedef struct { size_t head, a, va, p1, p2, thread, s1, s2, g1, g2, idx; } layout;
static layout lay(const agent_ctx *c, lra_attn_shape s) {
    layout l;
    const size_t nd = (size_t)c->n * s.hs, nT = (size_t)c->n * s.T;
    size_t off = 0;
#define CARVE(field, n) do { l.field = off; off += (n); } while (0)
    CARVE(a, nd);       // (n, d): the agents A, pooled queries
    CARVE(va, nd);      // (n, d): the agent values V_A
    if (c->bias) {
        CARVE(p1, nT);  // (n, T): the aggregation probabilities, then d logits
        CARVE(p2, nT);  // (T, n): the broadcast probabilities, then d logits
    }
    l.head = off;
    off = 0;
    if (!c->bias) {
        CARVE(p1, nT);  // (n, T): forward's, recomputed in backward
        CARVE(p2, nT);  // (T, n)
    }
    CARVE(s1, nT);      // (n, T) or (T, n): dropped probabilities
    CARVE(s2, nT);      // (n, T) or (T, n): a logit gradient
    CARVE(g1, nd);      // (n, d): d V_A
    CARVE(g2, nd);      // (n, d): d A
    CARVE(idx, s.T);    // (T): the valid rows (int32)
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
    /* four (n x T x d) products forward: A k^T, P1 v, q A^T, P2 V_A; eight backward */
    *fwd = heads * (8.0 * n * T * d + T * d + (c->dwc ? 6.0 * T * d : 0));
    *bwd = heads * (16.0 * n * T * d + T * d + (c->dwc ? 12.0 * T * d : 0));
}

/* softmax of each of `rows` rows of `cols` entries (stride ld), in place */
static void softmax_rows(float *x, int rows, int cols, int ld) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * ld, mx = NEG_BIG, sum = 0.0f;
        for (int j = 0; j < cols; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < cols; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        const float inv = sum > 0 ? 1.0f / sum : 0.0f;
        for (int j = 0; j < cols; j++) row[j] *= inv;
    }
}

/* out = p with dropout applied (row r's stream from (seed, bh, r), element j) */
static void drop_rows(float *out, const float *p, int rows, int cols, int ld, const lra_attn_args *a, uint64_t seed,
                      int bh) {
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float ks = 1.0f / (1.0f - a->dropout);
    for (int r = 0; r < rows; r++) {
        const uint32_t rs = (uint32_t)lra_stream(seed, (uint64_t)bh, (uint64_t)r);
        for (int j = 0; j < cols; j++)
            out[(size_t)r * ld + j] = p[(size_t)r * ld + j] * (lra_keep(rs, (uint32_t)j, thr) ? ks : 0.0f);
    }
}

/* P1 = softmax(A K^T scale [+ B1], valid keys) (m x T): the aggregation's probabilities */
static void aggregation_probs(float *P1, const float *A, const float *K, const uint8_t *mask, const float *B1, int m,
                              int T, int hs, int Tmax, float scale) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, T, hs, scale, A, hs, K, hs, 0.0f, P1, T);
    for (int j = 0; j < m; j++)
        for (int t = 0; t < T; t++) {
            float *x = P1 + (size_t)j * T + t;
            if (B1) *x += B1[(size_t)j * Tmax + t];
            *x = mask[t] ? *x : NEG_BIG;
        }
    softmax_rows(P1, m, T, T);
}

/* P2 = softmax(Q A^T scale [+ B2]) (T x m, stride n): the broadcast's probabilities */
static void broadcast_probs(float *P2, const float *Q, const float *A, const float *B2, int m, int T, int n, int hs,
                            float scale) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, m, hs, scale, Q, hs, A, hs, 0.0f, P2, n);
    if (B2)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < m; j++) P2[(size_t)t * n + j] += B2[(size_t)t * n + j];
    softmax_rows(P2, T, m, n);
}

#define AGG_SEED(a) lra_stream((a)->seed, 0xA66, 1)
#define BCAST_SEED(a) lra_stream((a)->seed, 0xA66, 2)

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
        float *A = hw + l.a, *VA = hw + l.va, *drop = tw + l.s1;
        float *P1 = (c->bias ? hw : tw) + l.p1, *P2 = (c->bias ? hw : tw) + l.p2;
        int32_t *idx = (int32_t *)(tw + l.idx);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head;
        float *O = o + head;
        const int L = lra_valid_rows(mask, T, idx), m = n < L ? n : L;
        memset(O, 0, sizeof(float) * T * hs);
        if (m > 0) {
            lra_pool_rows_forward(A, Q, idx, L, m, hs);
            /* aggregation: P1 = softmax(A K^T scale + B1, valid keys) (m x T), V_A = P1 V */
            aggregation_probs(P1, A, K, mask, B1 ? B1 + (size_t)h * n * Tmax : NULL, m, T, hs, Tmax, scale);
            const float *P1d = P1;
            if (a->dropout > 0) { drop_rows(drop, P1, m, T, T, a, AGG_SEED(a), bh); P1d = drop; }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, T, 1.0f, P1d, T, V, hs, 0.0f, VA, hs);
            /* broadcast: P2 = softmax(Q A^T scale + B2) (T x m, stride n), O = P2 V_A */
            broadcast_probs(P2, Q, A, B2 ? B2 + (size_t)h * Tmax * n : NULL, m, T, n, hs, scale);
            const float *P2d = P2;
            if (a->dropout > 0) { drop_rows(drop, P2, T, m, n, a, BCAST_SEED(a), bh); P2d = drop; }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, m, 1.0f, P2d, n, VA, hs, 0.0f, O, hs);
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

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        const int h = bh % s.NH;
        float *hw = w0 + (size_t)bh * l.head, *tw = t0 + (size_t)omp_get_thread_num() * l.thread;
        float *A = hw + l.a, *VA = hw + l.va;
        float *P1 = (c->bias ? hw : tw) + l.p1, *P2 = (c->bias ? hw : tw) + l.p2;
        float *Pd = tw + l.s1, *G = tw + l.s2, *dVA = tw + l.g1, *dA = tw + l.g2;
        int32_t *idx = (int32_t *)(tw + l.idx);
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        const float *Q = q + head, *K = k + head, *V = v + head, *dO = dout + head;
        float *dQ = dq + head, *dK = dk + head, *dV = dv + head;
        const int L = lra_valid_rows(mask, T, idx), m = n < L ? n : L;
        if (m > 0) {
            if (!c->bias) { /* forward's probabilities again (with bias=1 they were kept) */
                aggregation_probs(P1, A, K, mask, NULL, m, T, hs, Tmax, scale);
                broadcast_probs(P2, Q, A, NULL, m, T, n, hs, scale);
            }
            /* broadcast: O = P2d V_A */
            const float *P2d = P2;
            if (a->dropout > 0) { drop_rows(Pd, P2, T, m, n, a, BCAST_SEED(a), bh); P2d = Pd; }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, hs, T, 1.0f, P2d, n, dO, hs, 0.0f, dVA, hs);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, m, hs, 1.0f, dO, hs, VA, hs, 0.0f, G, n);
            for (int t = 0; t < T; t++) { /* G: dL/dP2 (through dropout), then dS2 */
                float *g = G + (size_t)t * n;
                const float *p = P2 + (size_t)t * n, *pd = P2d + (size_t)t * n;
                if (a->dropout > 0)
                    for (int j = 0; j < m; j++) g[j] = p[j] > 0 ? g[j] * pd[j] / p[j] : 0.0f;
                float D = 0.0f;
                for (int j = 0; j < m; j++) D += p[j] * g[j];
                for (int j = 0; j < m; j++) g[j] = p[j] * (g[j] - D);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, m, scale, G, n, A, hs, 1.0f, dQ, hs);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, hs, T, scale, G, n, Q, hs, 0.0f, dA, hs);
            if (c->bias) memcpy(P2, G, sizeof(float) * (size_t)T * n); /* dS2, for the B2 gradient */
            /* aggregation: V_A = P1d V */
            const float *P1d = P1;
            if (a->dropout > 0) { drop_rows(Pd, P1, m, T, T, a, AGG_SEED(a), bh); P1d = Pd; }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, m, 1.0f, P1d, T, dVA, hs, 1.0f, dV, hs);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, T, hs, 1.0f, dVA, hs, V, hs, 0.0f, G, T);
            for (int j = 0; j < m; j++) {
                float *g = G + (size_t)j * T;
                const float *p = P1 + (size_t)j * T, *pd = P1d + (size_t)j * T;
                if (a->dropout > 0)
                    for (int t = 0; t < T; t++) g[t] = p[t] > 0 ? g[t] * pd[t] / p[t] : 0.0f;
                float D = 0.0f;
                for (int t = 0; t < T; t++) D += p[t] * g[t];
                for (int t = 0; t < T; t++) g[t] = p[t] * (g[t] - D);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, T, scale, G, T, K, hs, 1.0f, dA, hs);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, m, scale, G, T, A, hs, 1.0f, dK, hs);
            if (c->bias) memcpy(P1, G, sizeof(float) * (size_t)m * T); /* dS1, for the B1 gradient */
            lra_pool_rows_backward(dQ, dA, idx, L, m, hs); /* through the pooling into q */
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
                    for (int t = 0; t < T; t++) gB1[((size_t)h * n + j) * Tmax + t] += hw[l.p1 + (size_t)j * T + t];
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < m; j++) gB2[((size_t)h * Tmax + t) * n + j] += hw[l.p2 + (size_t)t * n + j];
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
};
