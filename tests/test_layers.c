/* test_layers.c - every layer's backward against central finite differences of
 * loss = sum(out * R) for a fixed random R, and the adjoint identities of the pure permutations. */
#include <math.h>
#include <string.h>

#include "../harness/encoder/gemm.h"
#include "../harness/encoder/layers.h"
#include "tests.h"

/* every layer: 40 sampled elements, h = 1e-2 */
static void fd(t_loss_fn loss, void *ctx, float *x, const float *g, size_t n, const char *what) {
    t_gradcheck(loss, ctx, x, g, n, 40, 1e-2f, 2e-3, 2e-2, what);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ---- layernorm ---- */
enum { N = 7, C = 12, OC = 10 };
typedef struct { float in[N * C], w[C], b[C], out[N * C], mean[N], rstd[N], R[N * C]; } ln_ctx;
static double ln_loss(void *p) {
    ln_ctx *c = p;
    lra_layernorm_forward(c->out, c->mean, c->rstd, c->in, c->w, c->b, N, C);
    return dot(c->out, c->R, N * C);
}
START_TEST(test_layernorm) {
    ln_ctx c;
    t_fill(c.in, N * C, 2.0f, 1); t_fill(c.w, C, 1.0f, 2); t_fill(c.b, C, 1.0f, 3); t_fill(c.R, N * C, 1.0f, 4);
    float din[N * C] = {0}, dw[C] = {0}, db[C] = {0};
    ln_loss(&c);
    lra_layernorm_backward(din, dw, db, c.R, c.in, c.w, c.mean, c.rstd, N, C);
    fd(ln_loss, &c, c.in, din, N * C, "layernorm din");
    fd(ln_loss, &c, c.w, dw, C, "layernorm dw");
    fd(ln_loss, &c, c.b, db, C, "layernorm db");
}
END_TEST

/* LayerNorm's weight and bias gradients past one 16-column block (40 columns: two blocks and a
 * partial one) over 300 rows, against float64 sums, accumulated onto nonzero values */
START_TEST(test_layernorm_param_grads_blocks) {
    enum { LN = 300, LC = 40 };
    static float in[LN * LC], g[LN * LC], w[LC], b[LC], out[LN * LC], mean[LN], rstd[LN], din[LN * LC];
    float dw[LC], db[LC];
    t_fill(in, LN * LC, 2.0f, 11); t_fill(g, LN * LC, 1.0f, 12); t_fill(w, LC, 1.0f, 13); t_fill(b, LC, 1.0f, 14);
    t_fill(dw, LC, 1.0f, 15); t_fill(db, LC, 1.0f, 16);
    double rw[LC], rb[LC];
    for (int c = 0; c < LC; c++) rw[c] = dw[c], rb[c] = db[c];
    lra_layernorm_forward(out, mean, rstd, in, w, b, LN, LC);
    lra_layernorm_backward(din, dw, db, g, in, w, mean, rstd, LN, LC);
    for (int n = 0; n < LN; n++)
        for (int c = 0; c < LC; c++) {
            rw[c] += (double)g[n * LC + c] * ((double)in[n * LC + c] - mean[n]) * rstd[n];
            rb[c] += g[n * LC + c];
        }
    for (int c = 0; c < LC; c++) {
        ck_assert_msg(fabs(dw[c] - rw[c]) <= 1e-4 * (1 + fabs(rw[c])), "dw[%d] %g, float64 %g", c, dw[c], rw[c]);
        ck_assert_msg(fabs(db[c] - rb[c]) <= 1e-4 * (1 + fabs(rb[c])), "db[%d] %g, float64 %g", c, db[c], rb[c]);
    }
}
END_TEST

/* ---- matmul ---- */
typedef struct { float in[N * C], w[OC * C], b[OC], out[N * OC], R[N * OC]; int bias; } mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    lra_matmul_forward(c->out, c->in, c->w, c->bias ? c->b : NULL, N, C, OC, NULL);
    return dot(c->out, c->R, N * OC);
}
START_TEST(test_matmul) {
    for (int bias = 0; bias < 2; bias++) {
        mm_ctx c;
        c.bias = bias;
        t_fill(c.in, N * C, 1.0f, 1); t_fill(c.w, OC * C, 1.0f, 2); t_fill(c.b, OC, 1.0f, 3); t_fill(c.R, N * OC, 1.0f, 4);
        float din[N * C] = {0}, dw[OC * C] = {0}, db[OC] = {0};
        mm_loss(&c);
        lra_matmul_backward(din, dw, bias ? db : NULL, c.R, c.in, c.w, N, C, OC, NULL);
        fd(mm_loss, &c, c.in, din, N * C, "matmul din");
        fd(mm_loss, &c, c.w, dw, OC * C, "matmul dw");
        if (bias) fd(mm_loss, &c, c.b, db, OC, "matmul db");
    }
}
END_TEST

/* ---- gelu, relu ---- */
typedef struct { float in[64], out[64], R[64]; int relu; } act_ctx;
static double act_loss(void *p) {
    act_ctx *c = p;
    if (c->relu) lra_relu_forward(c->out, c->in, 64);
    else lra_gelu_forward(c->out, c->in, 64);
    return dot(c->out, c->R, 64);
}
START_TEST(test_activations) {
    for (int relu = 0; relu < 2; relu++) {
        act_ctx c;
        c.relu = relu;
        t_fill(c.in, 64, 3.0f, 1); t_fill(c.R, 64, 1.0f, 2);
        for (int i = 0; i < 64; i++) if (fabsf(c.in[i]) < 0.05f) c.in[i] = 0.5f; /* keep relu away from its kink */
        float din[64] = {0};
        act_loss(&c);
        if (relu) lra_relu_backward(din, c.in, c.R, 64);
        else lra_gelu_backward(din, c.in, c.R, 64);
        fd(act_loss, &c, c.in, din, 64, relu ? "relu" : "gelu");
    }
    /* the exact (erf) form at known points: x Phi(x) = 0.8413447 at 1 and -0.0455003 at -2 (the tanh
     * approximation gives 0.841192 and -0.045402: it fails here), and every element of a
     * 40-element array (two vector blocks and a padded rest) against double erf */
    float x[40], y[40];
    for (int i = 0; i < 40; i++) x[i] = -5.0f + 0.25f * (float)i;
    x[0] = 1.0f, x[1] = -2.0f;
    lra_gelu_forward(y, x, 40);
    ck_assert_float_eq_tol(y[0], 0.8413447f, 1e-6f);
    ck_assert_float_eq_tol(y[1], -0.0455003f, 1e-6f);
    for (int i = 0; i < 40; i++)
        ck_assert_float_eq_tol(y[i], 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0))), 2e-6f);
}
END_TEST

/* ---- embedding with CLS and learned positions ---- */
enum { EB = 2, EL = 5, EC = 6, EV = 9 };
typedef struct { int32_t tok[EB * EL]; float wte[EV * EC], cls[EC], pos[(EL + 1) * EC], out[EB * (EL + 1) * EC], R[EB * (EL + 1) * EC]; } emb_ctx;
static double emb_loss(void *p) {
    emb_ctx *c = p;
    lra_embed_forward(c->out, c->tok, c->wte, c->cls, c->pos, EB, EL, EC);
    return dot(c->out, c->R, EB * (EL + 1) * EC);
}
START_TEST(test_embed) {
    emb_ctx c;
    int32_t tok[EB * EL] = {1, 3, 3, 8, 0, 2, 2, 5, 0, 0};
    memcpy(c.tok, tok, sizeof tok);
    t_fill(c.wte, EV * EC, 1.0f, 1); t_fill(c.cls, EC, 1.0f, 2); t_fill(c.pos, (EL + 1) * EC, 1.0f, 3);
    t_fill(c.R, EB * (EL + 1) * EC, 1.0f, 4);
    float dwte[EV * EC] = {0}, dcls[EC] = {0}, dpos[(EL + 1) * EC] = {0};
    emb_loss(&c);
    /* CLS sits at position 0 and gets pos[0] */
    for (int k = 0; k < EC; k++) ck_assert_float_eq(c.out[k], c.cls[k] + c.pos[k]);
    lra_embed_backward(dwte, dcls, dpos, c.R, c.tok, EB, EL, EC);
    fd(emb_loss, &c, c.wte, dwte, EV * EC, "embed dwte");
    fd(emb_loss, &c, c.cls, dcls, EC, "embed dcls");
    fd(emb_loss, &c, c.pos, dpos, (EL + 1) * EC, "embed dpos");
}
END_TEST

START_TEST(test_sinusoid) {
    float pe[3 * 8];
    lra_sinusoid_table(pe, 3, 8);
    ck_assert_float_eq_tol(pe[0], 0.0f, 1e-7f);          /* sin(0) */
    ck_assert_float_eq_tol(pe[1], 1.0f, 1e-7f);          /* cos(0) */
    ck_assert_float_eq_tol(pe[8 + 0], sinf(1.0f), 1e-6f); /* t=1, i=0: w=1 */
    ck_assert_float_eq_tol(pe[16 + 2], sinf(2.0f * expf(-2.0f * logf(10000.0f) / 8)), 1e-6f);
    ck_assert_float_eq_tol(pe[16 + 3], cosf(2.0f * expf(-2.0f * logf(10000.0f) / 8)), 1e-6f);
}
END_TEST

/* ---- pooling ---- */
typedef struct { float in[3 * 4 * 5], out[3 * 5], R[3 * 5]; uint8_t mask[3 * 4]; int mode; } pool_ctx;
static double pool_loss(void *p) {
    pool_ctx *c = p;
    lra_pool_forward(c->out, c->in, c->mask, c->mode, 3, 4, 5, 6);
    return dot(c->out, c->R, 15);
}
START_TEST(test_pool) {
    for (int mode = 0; mode < 2; mode++) {
        pool_ctx c;
        c.mode = mode;
        t_fill(c.in, 60, 1.0f, 1); t_fill(c.R, 15, 1.0f, 2);
        for (int b = 0; b < 3; b++) /* lengths 4, 3, 2 */
            for (int t = 0; t < 4; t++) c.mask[b * 4 + t] = t < 4 - b;
        float din[60] = {0};
        pool_loss(&c);
        lra_pool_backward(din, c.R, c.mask, mode, 3, 4, 5, 6);
        fd(pool_loss, &c, c.in, din, 60, mode ? "mean pool" : "cls pool");
        if (mode == LRA_POOL_MEAN) {
            /* by hand: example 2 sums its 2 real rows and divides by the fixed 6; padded rows get
             * no gradient */
            for (int k = 0; k < 5; k++)
                ck_assert_float_eq_tol(c.out[2 * 5 + k], (c.in[40 + k] + c.in[45 + k]) / 6.0f, 1e-6f);
            for (int k = 0; k < 10; k++) ck_assert_float_eq(din[50 + k], 0.0f);
        }
    }
}
END_TEST

/* ---- the dual encoder's pair features ---- */
typedef struct { float pooled[2 * 3 * 5], feat[3 * 20], R[3 * 20]; int products; } pair_ctx;
static double pair_loss(void *p) {
    pair_ctx *c = p;
    lra_pair_features_forward(c->feat, c->pooled, c->products, 3, 5);
    return dot(c->feat, c->R, (size_t)3 * (c->products ? 20 : 10));
}
START_TEST(test_pair_features) {
    for (int products = 0; products < 2; products++) {
        pair_ctx c;
        c.products = products;
        t_fill(c.pooled, 30, 1.0f, 1); t_fill(c.R, 60, 1.0f, 2);
        float d[30] = {0};
        pair_loss(&c);
        /* the layout by hand: example 1 = [u, v, u*v, u-v] with u = row 2, v = row 3 */
        const int F = products ? 20 : 10;
        ck_assert_float_eq(c.feat[F + 2], c.pooled[10 + 2]);
        ck_assert_float_eq(c.feat[F + 5 + 2], c.pooled[15 + 2]);
        if (products) {
            ck_assert_float_eq(c.feat[F + 10 + 2], c.pooled[12] * c.pooled[17]);
            ck_assert_float_eq(c.feat[F + 15 + 2], c.pooled[12] - c.pooled[17]);
        }
        lra_pair_features_backward(d, c.R, c.pooled, products, 3, 5);
        fd(pair_loss, &c, c.pooled, d, 30, products ? "pair features [u,v,u*v,u-v]" : "pair features [u,v]");
    }
}
END_TEST

/* ---- cross-entropy ---- */
typedef struct { float logits[4 * 6], probs[4 * 6], losses[4]; int32_t labels[4]; } ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    lra_crossentropy_forward(c->losses, c->probs, c->logits, c->labels, 4, 6);
    return (c->losses[0] + c->losses[1] + c->losses[2] + c->losses[3]) / 4.0;
}
START_TEST(test_crossentropy) {
    ce_ctx c = {.labels = {0, 5, 2, 2}};
    t_fill(c.logits, 24, 3.0f, 1);
    float d[24] = {0};
    ce_loss(&c);
    lra_crossentropy_backward(d, c.probs, c.labels, 4, 6, 0.25f);
    fd(ce_loss, &c, c.logits, d, 24, "crossentropy");
    /* uniform logits: loss = ln K */
    for (int i = 0; i < 24; i++) c.logits[i] = 0.3f;
    ce_loss(&c);
    ck_assert_float_eq_tol(c.losses[1], logf(6.0f), 1e-6f);
}
END_TEST

/* ---- dropout and the head permutations: adjoint identities <A x, y> = <x, A^T y> ---- */
START_TEST(test_dropout_and_permutations) {
    enum { B = 2, T = 9, NH = 3, HS = 4, Q = NH * HS, TS = 16 };
    float x[B * T * Q], y[B * T * Q], ax[B * T * Q], aty[B * T * Q];
    t_fill(x, B * T * Q, 1.0f, 1);
    t_fill(y, B * T * Q, 1.0f, 2);
    /* dropout: applying the same mask to x and to y gives the same inner product */
    memcpy(ax, x, sizeof x); memcpy(aty, y, sizeof y);
    lra_dropout_apply(ax, B, T, Q, TS, 0.3f, 42);
    lra_dropout_apply(aty, B, T, Q, TS, 0.3f, 42);
    ck_assert_double_eq_tol(dot(ax, y, B * T * Q), dot(x, aty, B * T * Q), 1e-4);
    int zeros = 0;
    for (int i = 0; i < B * T * Q; i++) {
        zeros += ax[i] == 0.0f;
        ck_assert(ax[i] == 0.0f || fabsf(ax[i] - x[i] / 0.7f) < 1e-6f);
    }
    ck_assert_msg(zeros > 0.15 * B * T * Q && zeros < 0.45 * B * T * Q, "dropped %d of %d at rate 0.3", zeros, B * T * Q);
    /* the mask of element (b, t, c) does not depend on the padded length T */
    float shortx[B * 5 * Q];
    for (int b = 0; b < B; b++) memcpy(shortx + b * 5 * Q, x + b * T * Q, sizeof(float) * 5 * Q);
    lra_dropout_apply(shortx, B, 5, Q, TS, 0.3f, 42);
    for (int b = 0; b < B; b++)
        ck_assert(memcmp(shortx + b * 5 * Q, ax + b * T * Q, sizeof(float) * 5 * Q) == 0);
    /* residual dropout equals x + dropout(y) */
    float r[B * T * Q], dy[B * T * Q];
    lra_residual_dropout_forward(r, x, y, B, T, Q, TS, 0.3f, 42);
    memcpy(dy, y, sizeof y);
    lra_dropout_apply(dy, B, T, Q, TS, 0.3f, 42);
    for (int i = 0; i < B * T * Q; i++) ck_assert_float_eq_tol(r[i], x[i] + dy[i], 1e-6f);
    /* merge heads and its backward are adjoint; backward writes its din (filled with garbage here) */
    memset(ax, 0, sizeof ax);
    t_fill(aty, B * T * Q, 9.0f, 7);
    lra_merge_heads(ax, x, B, T, NH, HS);
    lra_merge_heads_backward(aty, y, B, T, NH, HS);
    ck_assert_double_eq_tol(dot(ax, y, B * T * Q), dot(x, aty, B * T * Q), 1e-4);
    /* split heads and its backward are adjoint */
    float qkv[B * T * 3 * Q], dqkv[B * T * 3 * Q], qh[B * T * Q], kh[B * T * Q], vh[B * T * Q];
    t_fill(dqkv, B * T * 3 * Q, 9.0f, 8);
    float gq[B * T * Q], gk[B * T * Q], gv[B * T * Q];
    t_fill(qkv, B * T * 3 * Q, 1.0f, 3);
    t_fill(gq, B * T * Q, 1.0f, 4); t_fill(gk, B * T * Q, 1.0f, 5); t_fill(gv, B * T * Q, 1.0f, 6);
    lra_split_heads(qh, kh, vh, qkv, B, T, NH, HS);
    lra_split_heads_backward(dqkv, gq, gk, gv, B, T, NH, HS);
    double lhs = dot(qh, gq, B * T * Q) + dot(kh, gk, B * T * Q) + dot(vh, gv, B * T * Q);
    ck_assert_double_eq_tol(lhs, dot(qkv, dqkv, B * T * 3 * Q), 1e-4);
}
END_TEST

/* ---- the fused passes give the bits of their layers run one after the other ---- */
static void check_fused(int M, float rate) {
    enum { B = 3, T = 7, TS = 9, MAXN = 3 * 7 * 40 };
    const int N = B * T * M;
    static float in[MAXN], g[MAXN], gm[MAXN], fused[MAXN], ref[MAXN];
    t_fill(in, N, 3.0f, 1);
    t_fill(g, N, 1.0f, 2);
    /* forward: dropout(gelu(in)) */
    lra_gelu_forward(ref, in, N);
    lra_dropout_apply(ref, B, T, M, TS, rate, 77);
    t_fill(fused, N, 9.0f, 3);
    lra_gelu_dropout_forward(fused, in, B, T, M, TS, rate, 77);
    ck_assert_msg(memcmp(fused, ref, sizeof(float) * N) == 0, "gelu+dropout forward, width %d, rate %g: other bits", M, rate);
    /* backward over garbage: the same values (a dropped element's 0 may keep its sign where the
     * two layers' 0 + -0 gave +0), and dout masked in place */
    float dropped[MAXN];
    memcpy(dropped, g, sizeof(float) * N);
    lra_dropout_apply(dropped, B, T, M, TS, rate, 77);
    memset(ref, 0, sizeof(float) * N);
    lra_gelu_backward(ref, in, dropped, N);
    t_fill(fused, N, 9.0f, 4);
    memcpy(gm, g, sizeof(float) * N);
    lra_gelu_dropout_backward(fused, in, gm, B, T, M, TS, rate, 77);
    for (int i = 0; i < N; i++)
        ck_assert_msg(fused[i] == ref[i], "gelu+dropout backward, width %d, rate %g, element %d: %.9g, layers %.9g", M,
                      rate, i, fused[i], ref[i]);
    ck_assert_msg(memcmp(gm, dropped, sizeof(float) * N) == 0, "gelu+dropout backward: dout not masked in place");
    /* dropout out of place: a copy, then the mask */
    t_fill(fused, N, 9.0f, 5);
    lra_dropout_forward(fused, g, B, T, M, TS, rate, 77);
    ck_assert_msg(memcmp(fused, dropped, sizeof(float) * N) == 0, "dropout out of place, width %d, rate %g: other bits", M, rate);
}
START_TEST(test_fused_passes_same_bits) {
    /* 32: whole vector blocks, run fused; 40: a padded rest in every row, run as the two layers */
    for (int r = 0; r < 2; r++) {
        check_fused(32, r ? 0.3f : 0.0f);
        check_fused(40, r ? 0.3f : 0.0f);
    }
}
END_TEST

/* ---- bf16 runs: the layers that feed a product write its input rounded, the bits of the fp32
 * layer rounded afterwards (lra_bf16_round) ---- */
static void assert_rounded(const uint16_t *got, const float *fp32, int n, const char *what) {
    static uint16_t want[4 * 11 * 640];
    ck_assert_int_le(n, (int)(sizeof want / sizeof *want));
    lra_bf16_round(want, fp32, (size_t)n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s: element %d is 0x%04x, the fp32 layer rounded 0x%04x", what, i, got[i], want[i]);
}
START_TEST(test_bf16_inputs_same_bits) {
    enum { B = 4, T = 11, TS = 13, MAXN = B * T * 640 };
    static float in[MAXN], w[640], bias[640], out[MAXN], mean[B * T], rstd[B * T], mean16[B * T], rstd16[B * T];
    static uint16_t out16[MAXN];
    const int widths[] = {64, 67, 320, 640}; /* whole blocks, a partial one, past one stack span */
    for (size_t k = 0; k < sizeof widths / sizeof *widths; k++) {
        const int C = widths[k], N = B * T * C;
        char what[64];
        t_fill(in, N, 3.0f, 11);
        t_fill(w, C, 1.0f, 12);
        t_fill(bias, C, 0.5f, 13);
        lra_layernorm_forward(out, mean, rstd, in, w, bias, B * T, C);
        memset(out16, 0xff, sizeof out16);
        lra_layernorm_forward_bf16(out16, mean16, rstd16, in, w, bias, B * T, C);
        snprintf(what, sizeof what, "layernorm, width %d", C);
        assert_rounded(out16, out, N, what);
        ck_assert(memcmp(mean, mean16, sizeof mean) == 0 && memcmp(rstd, rstd16, sizeof rstd) == 0);
        if (C % LRA_GELU_BLOCK == 0)
            for (int r = 0; r < 2; r++) {
                lra_gelu_dropout_forward(out, in, B, T, C, TS, r ? 0.3f : 0.0f, 77);
                memset(out16, 0xff, sizeof out16);
                lra_gelu_dropout_forward_bf16(out16, in, B, T, C, TS, r ? 0.3f : 0.0f, 77);
                snprintf(what, sizeof what, "gelu+dropout, width %d, rate %g", C, r ? 0.3 : 0.0);
                assert_rounded(out16, out, N, what);
            }
        const int NH = C % 2 ? 1 : 2;
        lra_merge_heads(out, in, B, T, NH, C / NH);
        memset(out16, 0xff, sizeof out16);
        lra_merge_heads_bf16(out16, in, B, T, NH, C / NH);
        snprintf(what, sizeof what, "merge heads, width %d", C);
        assert_rounded(out16, out, N, what);
    }
}
END_TEST

/* ---- row blocks: each *_rows function, run block by block with the row-major operands in a
 * scratch of their own per block, gives its whole-tensor layer's bits. Blocks of 7, 13 and the
 * rest of 44 rows cross the examples' ends (T = 11); the products' blocks are LRA_ROW_BLOCK. ---- */
enum { RB_B = 4, RB_T = 11, RB_TS = 13, RB_N = RB_B * RB_T, RB_C = 64, RB_NH = 2 };
static const int rb_start[] = {0, 7, 20, RB_N};

static void assert_same(const void *got, const void *want, size_t bytes, const char *what) {
    ck_assert_msg(memcmp(got, want, bytes) == 0, "%s: the row blocks give other bits than the whole layer", what);
}

START_TEST(test_row_blocks_same_bits) {
    static float in[RB_N * RB_C], y[RB_N * RB_C], w[RB_C], bias[RB_C], whole[3 * RB_N * RB_C], blocks[3 * RB_N * RB_C];
    static float blk_in[RB_N * 3 * RB_C], blk_out[RB_N * RB_C], mean[2][RB_N], rstd[2][RB_N];
    static uint16_t whole16[RB_N * RB_C], blocks16[RB_N * RB_C];
    const int C = RB_C, hs = C / RB_NH;
    t_fill(in, RB_N * C, 3.0f, 21);
    t_fill(y, RB_N * C, 2.0f, 22);
    t_fill(w, C, 1.0f, 23);
    t_fill(bias, C, 0.5f, 24);
    for (int r = 0; r < 2; r++) {
        const float rate = r ? 0.3f : 0.0f;
        lra_residual_dropout_forward(whole, in, y, RB_B, RB_T, C, RB_TS, rate, 5);
        lra_gelu_dropout_forward(whole + RB_N * C, in, RB_B, RB_T, C, RB_TS, rate, 6);
        lra_gelu_dropout_forward_bf16(whole16, in, RB_B, RB_T, C, RB_TS, rate, 6);
        for (int k = 0; k + 1 < (int)(sizeof rb_start / sizeof *rb_start); k++) {
            const int n0 = rb_start[k], rows = rb_start[k + 1] - n0;
            memcpy(blk_in, in + (size_t)n0 * C, sizeof(float) * rows * C);
            lra_residual_dropout_rows(blk_out, blk_in, y + (size_t)n0 * C, n0, rows, RB_T, C, RB_TS, rate, 5);
            memcpy(blocks + (size_t)n0 * C, blk_out, sizeof(float) * rows * C);
            lra_gelu_dropout_rows(blk_out, NULL, blk_in, n0, rows, RB_T, C, RB_TS, rate, 6);
            memcpy(blocks + (size_t)(RB_N + n0) * C, blk_out, sizeof(float) * rows * C);
            lra_gelu_dropout_rows(NULL, blocks16 + (size_t)n0 * C, blk_in, n0, rows, RB_T, C, RB_TS, rate, 6);
        }
        assert_same(blocks, whole, sizeof(float) * RB_N * C, rate ? "residual+dropout, rate 0.3" : "residual, rate 0");
        assert_same(blocks + RB_N * C, whole + RB_N * C, sizeof(float) * RB_N * C, "gelu+dropout");
        assert_same(blocks16, whole16, sizeof(uint16_t) * RB_N * C, "gelu+dropout, bf16");
    }
    /* LayerNorm, fp32 and bf16 */
    lra_layernorm_forward(whole, mean[0], rstd[0], in, w, bias, RB_N, C);
    lra_layernorm_forward_bf16(whole16, mean[0], rstd[0], in, w, bias, RB_N, C);
    for (int k = 0; k + 1 < (int)(sizeof rb_start / sizeof *rb_start); k++) {
        const int n0 = rb_start[k], rows = rb_start[k + 1] - n0;
        memcpy(blk_in, in + (size_t)n0 * C, sizeof(float) * rows * C);
        lra_layernorm_rows_forward(blk_out, NULL, mean[1] + n0, rstd[1] + n0, blk_in, w, bias, rows, C);
        memcpy(blocks + (size_t)n0 * C, blk_out, sizeof(float) * rows * C);
        lra_layernorm_rows_forward(NULL, blocks16 + (size_t)n0 * C, mean[1] + n0, rstd[1] + n0, blk_in, w, bias, rows, C);
    }
    assert_same(blocks, whole, sizeof(float) * RB_N * C, "layernorm");
    assert_same(blocks16, whole16, sizeof(uint16_t) * RB_N * C, "layernorm, bf16");
    assert_same(mean[1], mean[0], sizeof mean[0], "layernorm's mean");
    assert_same(rstd[1], rstd[0], sizeof rstd[0], "layernorm's rstd");
    /* the head layouts: a (B,T,3C) row block split into (B,NH,T,hs) q, k, v; merged back */
    static float qkv[RB_N * 3 * RB_C];
    t_fill(qkv, RB_N * 3 * C, 1.0f, 25);
    lra_split_heads(whole, whole + RB_N * C, whole + 2 * RB_N * C, qkv, RB_B, RB_T, RB_NH, hs);
    memset(blocks, 0xff, sizeof blocks);
    for (int k = 0; k + 1 < (int)(sizeof rb_start / sizeof *rb_start); k++) {
        const int n0 = rb_start[k], rows = rb_start[k + 1] - n0;
        memcpy(blk_in, qkv + (size_t)n0 * 3 * C, sizeof(float) * rows * 3 * C);
        lra_split_heads_rows(blocks, blocks + RB_N * C, blocks + 2 * RB_N * C, blk_in, n0, rows, RB_T, RB_NH, hs);
    }
    assert_same(blocks, whole, sizeof(float) * 3 * RB_N * C, "split heads");
    lra_merge_heads(whole, in, RB_B, RB_T, RB_NH, hs);
    lra_merge_heads_bf16(whole16, in, RB_B, RB_T, RB_NH, hs);
    for (int k = 0; k + 1 < (int)(sizeof rb_start / sizeof *rb_start); k++) {
        const int n0 = rb_start[k], rows = rb_start[k + 1] - n0;
        lra_merge_heads_rows(blk_out, NULL, in, n0, rows, RB_T, RB_NH, hs);
        memcpy(blocks + (size_t)n0 * C, blk_out, sizeof(float) * rows * C);
        lra_merge_heads_rows(NULL, blocks16 + (size_t)n0 * C, in, n0, rows, RB_T, RB_NH, hs);
    }
    assert_same(blocks, whole, sizeof(float) * RB_N * C, "merge heads");
    assert_same(blocks16, whole16, sizeof(uint16_t) * RB_N * C, "merge heads, bf16");
}
END_TEST

/* the product in blocks of LRA_ROW_BLOCK rows (and a partial last one), fp32 and bf16 */
START_TEST(test_row_blocks_product) {
    enum { PN = 2 * LRA_ROW_BLOCK + 77, PC = 64, POC = 96 };
    static float in[PN * PC], w[POC * PC], bias[POC], whole[PN * POC], blocks[PN * POC];
    static uint16_t in16[PN * PC], w16[POC * PC], scratch[PN * POC + POC * PC];
    t_fill(in, PN * PC, 1.0f, 31);
    t_fill(w, POC * PC, 0.2f, 32);
    t_fill(bias, POC, 0.5f, 33);
    lra_bf16_round(in16, in, PN * PC);
    lra_bf16_round(w16, w, POC * PC);
    for (int b16 = 0; b16 < 2; b16++) {
        if (b16) lra_matmul16_forward(whole, in16, w, bias, PN, PC, POC, scratch);
        else lra_matmul_forward(whole, in, w, bias, PN, PC, POC, NULL);
        memset(blocks, 0xff, sizeof blocks);
        for (int n0 = 0; n0 < PN; n0 += LRA_ROW_BLOCK) {
            const int rows = PN - n0 < LRA_ROW_BLOCK ? PN - n0 : LRA_ROW_BLOCK;
            lra_matmul_rows_forward(blocks + (size_t)n0 * POC, b16 ? NULL : in + (size_t)n0 * PC,
                                    b16 ? in16 + (size_t)n0 * PC : NULL, w, w16, bias, rows, PC, POC);
        }
        assert_same(blocks, whole, sizeof blocks, b16 ? "product, bf16" : "product, fp32");
    }
}
END_TEST

Suite *layers_suite(void) {
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("finite differences");
    tcase_add_test(tc, test_layernorm);
    tcase_add_test(tc, test_layernorm_param_grads_blocks);
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_activations);
    tcase_add_test(tc, test_fused_passes_same_bits);
    tcase_add_test(tc, test_bf16_inputs_same_bits);
    tcase_add_test(tc, test_row_blocks_same_bits);
    tcase_add_test(tc, test_row_blocks_product);
    tcase_add_test(tc, test_embed);
    tcase_add_test(tc, test_sinusoid);
    tcase_add_test(tc, test_pool);
    tcase_add_test(tc, test_pair_features);
    tcase_add_test(tc, test_crossentropy);
    tcase_add_test(tc, test_dropout_and_permutations);
    suite_add_tcase(s, tc);
    return s;
}
