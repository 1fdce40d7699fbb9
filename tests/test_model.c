/* test_model.c - the whole encoder: its backward against finite differences (dropout on, the
 * masks being a function of the step seed), padding-invariance with CLS pooling, thread-count
 * independence of training steps, and the optimizer and schedules. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "../harness/run/config.h"
#include "../harness/encoder/model.h"
#include "../tasks/task.h"
#include "../harness/encoder/optim.h"
#include "../harness/run/run.h"
#include "tests.h"

enum { VB = 17, MB = 3, ML = 20 };

/* repro = 1: the reproduction recipe's model (attention biases, PyTorch's initialisation) */
static lra_precision model_precision = LRA_FP32; /* what make_model_as builds */

static void make_model_as(lra_model *m, int pool, int learned_pos, float drop, int max_len, int nthreads, int repro) {
    lra_model_cfg c = {.attn_bias = repro, .init = repro ? LRA_INIT_TORCH : LRA_INIT_FLAX,.vocab = VB, .classes = 10, .max_len = max_len, .batch = MB, .layers = 2, .heads = 2,
                       .emb = 8, .qkv = 8, .mlp = 16, .cls = pool == LRA_POOL_CLS, .pool = pool,
                       .learned_pos = learned_pos, .dropout = drop, .attn_dropout = drop, .pool_len = max_len + 5,
                       .backend = "full", .attn_opts = "", .nthreads = nthreads, .precision = model_precision};
    char err[LRA_ERR_LEN];
    ck_assert_msg(lra_model_create(m, &c, err) == LRA_OK, "%s", err);
    lra_model_init(m, 7);
}

static void make_model(lra_model *m, int pool, int learned_pos, float drop, int max_len, int nthreads) {
    make_model_as(m, pool, learned_pos, drop, max_len, nthreads, 0);
}

/* batch of 3 ragged examples padded to L */
static void make_batch(int32_t *tok, uint8_t *mask, int32_t *lab, int L) {
    const int len[MB] = {20, 13, 7};
    lra_rng r;
    lra_rng_seed(&r, 11);
    for (int b = 0; b < MB; b++) {
        for (int t = 0; t < 2 * ML; t++) { /* the same draws whatever L is */
            int v = (int)lra_rng_range(&r, 1, VB - 1);
            if (t >= L) continue;
            tok[b * L + t] = t < len[b] ? v : 0;
            mask[b * L + t] = t < len[b];
        }
        lab[b] = (int)lra_rng_range(&r, 0, 9);
    }
}

static void model_gradcheck(int pool, int learned_pos, int repro) {
    lra_model m;
    make_model_as(&m, pool, learned_pos, 0.2f, ML, 2, repro);
    int32_t tok[MB * ML], lab[MB];
    uint8_t mask[MB * ML];
    make_batch(tok, mask, lab, ML);
    const uint64_t seed = 99;
    lra_model_forward(&m, tok, mask, lab, MB, ML, 1, seed);
    lra_model_zero_grad(&m);
    lra_model_backward(&m);
    float *g = malloc(m.nparams * sizeof(float));
    memcpy(g, m.grads, m.nparams * sizeof(float));
    lra_rng r;
    lra_rng_seed(&r, 3);
    const float h = 3e-3f; /* small enough not to cross the head's ReLU kinks */
    int checked = 0;
    for (int c = 0; c < 400 && checked < 120; c++) {
        size_t i = (size_t)lra_rng_range(&r, 0, (int64_t)m.nparams - 1);
        /* embedding rows of tokens absent from the batch have exactly zero gradient: sample others */
        if (g[i] == 0.0f && c % 4) continue;
        float keep = m.params[i];
        m.params[i] = keep + h;
        double lp = lra_model_forward(&m, tok, mask, lab, MB, ML, 1, seed);
        m.params[i] = keep - h;
        double lm = lra_model_forward(&m, tok, mask, lab, MB, ML, 1, seed);
        m.params[i] = keep;
        double num = (lp - lm) / (2 * h);
        double tol = 1e-3 + 3e-2 * fmax(fabs(num), fabs(g[i]));
        ck_assert_msg(fabs(num - g[i]) <= tol, "param %zu (pool %d, learned pos %d): analytic %.6g vs numeric %.6g",
                      i, pool, learned_pos, g[i], num);
        checked++;
    }
    ck_assert_int_ge(checked, 100);
    free(g);
    lra_model_free(&m);
}

/* Retrieval's dual encoder: 3 pairs (6 ragged documents) through the one encoder, both heads.
 * The head's three layers (where the pair features and the middle layer live) are checked on 160
 * sampled parameters, the encoder on 80, with a step of 1e-3: 3e-3 crosses a ReLU kink of the
 * head at these inputs (where the analytic gradient matches one side only). */
typedef struct {
    lra_model m;
    int32_t tok[2 * MB * ML], lab[MB];
    uint8_t mask[2 * MB * ML];
} dual_ctx;

static double dual_loss(void *p) {
    dual_ctx *d = p;
    return lra_model_forward(&d->m, d->tok, d->mask, d->lab, MB, ML, 1, 5);
}

static void dual_gradcheck(int products, int one_hidden) {
    static dual_ctx d;
    lra_model_cfg c = {.vocab = VB, .classes = 2, .max_len = ML, .batch = MB, .layers = 1, .heads = 2, .emb = 8,
                       .qkv = 8, .mlp = 16, .cls = 1, .pool = LRA_POOL_CLS, .dropout = 0.2f, .attn_dropout = 0.2f,
                       .backend = "full", .attn_opts = "", .nthreads = 2, .docs = 2, .dual_head = products,
                       .dual_one_hidden = one_hidden, .attn_bias = one_hidden};
    char err[LRA_ERR_LEN];
    ck_assert_msg(lra_model_create(&d.m, &c, err) == LRA_OK, "%s", err);
    lra_model_init(&d.m, 7);
    lra_rng r;
    lra_rng_seed(&r, 12);
    for (int b = 0; b < 2 * MB; b++) {
        const int len = 5 + 3 * b;
        for (int t = 0; t < ML; t++) {
            d.tok[b * ML + t] = t < len ? (int)lra_rng_range(&r, 1, VB - 1) : 0;
            d.mask[b * ML + t] = t < len;
        }
    }
    for (int b = 0; b < MB; b++) d.lab[b] = b & 1;
    dual_loss(&d);
    lra_model_zero_grad(&d.m);
    lra_model_backward(&d.m);
    float *g = malloc(d.m.nparams * sizeof(float));
    memcpy(g, d.m.grads, d.m.nparams * sizeof(float));
    const size_t head0 = (size_t)(d.m.p.h1w - d.m.params);
    t_gradcheck(dual_loss, &d, d.m.params + head0, g + head0, d.m.nparams - head0, 160, 1e-3f, 1e-3, 3e-2,
                products ? "dual head [u,v,u*v,u-v]" : "dual head [u,v]");
    t_gradcheck(dual_loss, &d, d.m.params, g, head0, 80, 1e-3f, 1e-3, 3e-2,
                products ? "dual encoder [u,v,u*v,u-v]" : "dual encoder [u,v]");
    free(g);
    lra_model_free(&d.m);
}

START_TEST(test_model_gradcheck_dual) {
    dual_gradcheck(0, 0);
    dual_gradcheck(1, 0);
    dual_gradcheck(1, 1); /* the reproduction recipe's head: Dense(mlp)-ReLU-Dense on [u, v, u*v, u-v] */
}
END_TEST

START_TEST(test_model_gradcheck_cls_sin) { model_gradcheck(LRA_POOL_CLS, 0, 0); }
END_TEST
START_TEST(test_model_gradcheck_mean_learned) { model_gradcheck(LRA_POOL_MEAN, 1, 0); }
END_TEST
START_TEST(test_model_gradcheck_repro) { model_gradcheck(LRA_POOL_MEAN, 1, 1); }
END_TEST

/* With masked padding keys, CLS pooling or MEAN pooling over real rows and a fixed length, padding
 * a batch less changes nothing but the float summation order inside BLAS tiles: losses,
 * probabilities and gradients agree to ~1e-7. */
static void padding_invariance(int pool, int repro) {
    lra_model m;
    make_model_as(&m, pool, pool == LRA_POOL_MEAN, 0.1f, 2 * ML, 2, repro);
    int32_t tok[MB * 2 * ML], lab[MB];
    uint8_t mask[MB * 2 * ML];
    float probs_short[MB * 10], probs_long[MB * 10], g_short_norm, g_long_norm;
    for (int train = 0; train < 2; train++) {
        make_batch(tok, mask, lab, 2 * ML);
        float l_long = lra_model_forward(&m, tok, mask, lab, MB, 2 * ML, train, 5);
        memcpy(probs_long, m.probs, sizeof probs_long);
        lra_model_zero_grad(&m);
        lra_model_backward(&m);
        g_long_norm = (float)lra_model_grad_norm(&m);
        make_batch(tok, mask, lab, ML);
        float l_short = lra_model_forward(&m, tok, mask, lab, MB, ML, train, 5);
        memcpy(probs_short, m.probs, sizeof probs_short);
        lra_model_zero_grad(&m);
        lra_model_backward(&m);
        g_short_norm = (float)lra_model_grad_norm(&m);
        ck_assert_msg(fabsf(l_short - l_long) <= 1e-6f * l_long, "train=%d: loss %.9g padded to %d vs %.9g padded to %d",
                      train, l_short, ML, l_long, 2 * ML);
        ck_assert_msg(t_close(probs_short, probs_long, MB * 10, 1e-7, 1e-5) <= 1, "train=%d: probabilities differ", train);
        ck_assert_float_eq_tol(g_short_norm, g_long_norm, 1e-5f * g_long_norm);
    }
    lra_model_free(&m);
}

START_TEST(test_padding_invariance) {
    padding_invariance(LRA_POOL_CLS, 0);
    padding_invariance(LRA_POOL_MEAN, 0);
    padding_invariance(LRA_POOL_MEAN, 1);
}
END_TEST

/* Three Adam steps with 1 thread and with 2 threads give bit-identical parameters, in fp32 and
 * in bf16. */
START_TEST(test_threads_bitwise) {
    for (int prec = LRA_FP32; prec <= LRA_BF16; prec++) {
        model_precision = (lra_precision)prec;
        float *after[2];
        size_t n = 0;
        for (int k = 0; k < 2; k++) {
            int nt = k + 1;
            omp_set_num_threads(nt);
            openblas_set_num_threads(nt);
            lra_model m;
            make_model(&m, LRA_POOL_CLS, 0, 0.1f, ML, nt);
            int32_t tok[MB * ML], lab[MB];
            uint8_t mask[MB * ML];
            make_batch(tok, mask, lab, ML);
            for (int s = 0; s < 3; s++) {
                lra_model_forward(&m, tok, mask, lab, MB, ML, 1, (uint64_t)s);
                lra_model_zero_grad(&m);
                lra_model_backward(&m);
                lra_adam_step(m.params, m.grads, m.adam_m, m.adam_v, m.nparams, 1e-3, 0.9, 0.98, 1e-9, 0.1, s + 1, 1.0f);
            }
            after[k] = malloc(m.nparams * sizeof(float));
            memcpy(after[k], m.params, m.nparams * sizeof(float));
            n = m.nparams;
            lra_model_free(&m);
        }
        ck_assert_msg(memcmp(after[0], after[1], n * sizeof(float)) == 0, "%s: 1 vs 2 threads differ",
                      lra_precision_name((lra_precision)prec));
        free(after[0]);
        free(after[1]);
    }
    model_precision = LRA_FP32;
}
END_TEST

/* bf16 with fewer activations than weights (one token, a wide MLP): the rounded weights of a forward
 * pass fit the bf16 scratch (it was sized by the products' operands alone), and the gradient is
 * still near fp32's. */
START_TEST(test_bf16_short_wide) {
    float *grad[2];
    size_t n = 0;
    int32_t tok[MB] = {3, 5, 7}, lab[MB] = {1, 2, 3};
    uint8_t mask[MB] = {1, 1, 1};
    for (int prec = LRA_FP32; prec <= LRA_BF16; prec++) {
        lra_model_cfg c = {.vocab = VB, .classes = 10, .max_len = 1, .batch = MB, .layers = 2, .heads = 2, .emb = 8,
                           .qkv = 8, .mlp = 64, .cls = 1, .pool = LRA_POOL_CLS, .pool_len = 6, .backend = "full",
                           .attn_opts = "", .nthreads = 2, .precision = (lra_precision)prec};
        char err[LRA_ERR_LEN];
        lra_model m;
        ck_assert_msg(lra_model_create(&m, &c, err) == LRA_OK, "%s", err);
        lra_model_init(&m, 7);
        lra_model_forward(&m, tok, mask, lab, MB, 1, 1, 3);
        lra_model_zero_grad(&m);
        lra_model_backward(&m);
        n = m.nparams;
        grad[prec] = malloc(n * sizeof(float));
        memcpy(grad[prec], m.grads, n * sizeof(float));
        lra_model_free(&m);
    }
    double d2 = 0, g2 = 0;
    for (size_t i = 0; i < n; i++) {
        d2 += ((double)grad[1][i] - grad[0][i]) * ((double)grad[1][i] - grad[0][i]);
        g2 += (double)grad[0][i] * grad[0][i];
    }
    ck_assert_msg(sqrt(d2 / g2) <= 2e-2, "bf16 gradient %.3g away from fp32's (relative L2)", sqrt(d2 / g2));
    free(grad[0]);
    free(grad[1]);
}
END_TEST

/* bf16 mixed precision against fp32 on one batch (the activation arena smaller): the loss within 1e-2 relative and the gradient
 * within 1e-2 in relative L2 norm (2.4e-3 measured) (bf16 keeps 8 bits: operands carry relative errors up to 2^-9,
 * and the products sum them), and not equal to fp32's (the products really ran in bf16). */
START_TEST(test_bf16_near_fp32) {
    float loss[2];
    float *grad[2];
    size_t n = 0, act_bytes[2];
    int32_t tok[MB * ML], lab[MB];
    uint8_t mask[MB * ML];
    make_batch(tok, mask, lab, ML);
    for (int prec = LRA_FP32; prec <= LRA_BF16; prec++) {
        model_precision = (lra_precision)prec;
        lra_model m;
        make_model_as(&m, LRA_POOL_MEAN, 0, 0.1f, ML, 2, 1);
        loss[prec] = lra_model_forward(&m, tok, mask, lab, MB, ML, 1, 3);
        lra_model_zero_grad(&m);
        lra_model_backward(&m);
        n = m.nparams;
        act_bytes[prec] = lra_model_act_bytes(&m);
        grad[prec] = malloc(n * sizeof(float));
        memcpy(grad[prec], m.grads, n * sizeof(float));
        lra_model_free(&m);
    }
    model_precision = LRA_FP32;
    double d2 = 0, g2 = 0;
    for (size_t i = 0; i < n; i++) {
        d2 += ((double)grad[1][i] - grad[0][i]) * ((double)grad[1][i] - grad[0][i]);
        g2 += (double)grad[0][i] * grad[0][i];
    }
    const double rel = sqrt(d2 / g2);
    ck_assert_msg(fabsf(loss[1] - loss[0]) <= 1e-2f * loss[0], "bf16 loss %.7g, fp32 %.7g", loss[1], loss[0]);
    ck_assert_msg(rel <= 1e-2, "bf16 gradient %.3g away from fp32's (relative L2)", rel);
    ck_assert_msg(rel > 1e-6 && loss[1] != loss[0], "bf16 gives fp32's numbers: its products did not run in bf16");
    /* the blocks' product inputs are kept in bf16 only: less activation memory than fp32 */
    ck_assert_msg(act_bytes[1] < act_bytes[0], "bf16 activations %zu bytes, fp32 %zu", act_bytes[1], act_bytes[0]);
    free(grad[0]);
    free(grad[1]);
}
END_TEST

START_TEST(test_schedules) {
    /* rsqrt: 0 at step 0, linear warm-up, base/sqrt(W) at W, base/sqrt(s) after */
    ck_assert_double_eq(lra_lr_at(LRA_SCHED_RSQRT, 0.05, 0, 1000, 5000), 0.0);
    ck_assert_double_eq_tol(lra_lr_at(LRA_SCHED_RSQRT, 0.05, 500, 1000, 5000), 0.05 * 0.5 / sqrt(1000.0), 1e-12);
    ck_assert_double_eq_tol(lra_lr_at(LRA_SCHED_RSQRT, 0.05, 4000, 1000, 5000), 0.05 / sqrt(4000.0), 1e-12);
    /* cosine over (s - W) / total, as the official code (not over total - W) */
    ck_assert_double_eq_tol(lra_lr_at(LRA_SCHED_COSINE, 1e-3, 175, 175, 35000), 1e-3, 1e-15);
    ck_assert_double_eq_tol(lra_lr_at(LRA_SCHED_COSINE, 1e-3, 175 + 17500, 175, 35000), 0.5e-3, 1e-12);
    ck_assert_double_eq_tol(lra_lr_at(LRA_SCHED_COSINE, 1e-3, 35000, 175, 35000),
                            1e-3 * 0.5 * (1 + cos(LRA_PI * (35000 - 175) / 35000.0)), 1e-15);
}
END_TEST

/* OneCycleLR and its cycled beta1 at chosen steps of ListOps' and Text's reproduction runs, the
 * values printed by PyTorch 1.13 (optimizer.param_groups[0] before each step's update). */
START_TEST(test_onecycle) {
    static const struct { long w, total, s; double lr, b1; } pts[] = {
        {1000, 5000, 0, 4e-06, 0.95},
        {1000, 5000, 1, 4.096096096096096e-06, 0.9498998998998999},
        {1000, 5000, 500, 5.204804804804806e-05, 0.8999499499499499},
        {1000, 5000, 999, 0.0001, 0.85},
        {1000, 5000, 1000, 9.997500010000001e-05, 0.850025},
        {1000, 5000, 3000, 4.997520010000001e-05, 0.900025},
        {1000, 5000, 4998, 2.5399899999996463e-08, 0.949975},
        {1000, 5000, 4999, 4.000000000008771e-10, 0.95},
        {8000, 20000, 1, 4.012001500187524e-06, 0.9499874984373046},
        {8000, 20000, 7999, 0.0001, 0.85},
        {8000, 20000, 8001, 9.99833334e-05, 0.8500166666666666},
        {8000, 20000, 14000, 4.9991866700000007e-05, 0.9000083333333333},
        {8000, 20000, 19999, 4.000000000008771e-10, 0.95},
    };
    for (size_t i = 0; i < sizeof pts / sizeof *pts; i++) {
        const double lr = lra_lr_at(LRA_SCHED_ONECYCLE, 1e-4, pts[i].s, pts[i].w, pts[i].total);
        const double b1 = lra_beta1_at(LRA_SCHED_ONECYCLE, 0.9, pts[i].s, pts[i].w, pts[i].total);
        ck_assert_msg(fabs(lr - pts[i].lr) <= 1e-12 * pts[i].lr + 1e-20, "lr at %ld of %ld: %.17g, PyTorch %.17g",
                      pts[i].s, pts[i].total, lr, pts[i].lr);
        ck_assert_msg(fabs(b1 - pts[i].b1) <= 1e-12, "beta1 at %ld: %.17g, PyTorch %.17g", pts[i].s, b1, pts[i].b1);
    }
    ck_assert_double_eq(lra_beta1_at(LRA_SCHED_RSQRT, 0.9, 17, 1000, 5000), 0.9);
}
END_TEST

/* Four AdamW steps (betas (cycled, 0.999), eps 1e-6) under OneCycleLR(max_lr 0.1, 2 warm-up of 5
 * steps) end where PyTorch 1.13's torch.optim.AdamW ends from the same gradients. */
START_TEST(test_adamw_onecycle_torch) {
    float p[3] = {1.0f, -2.0f, 0.5f}, m[3] = {0}, v[3] = {0};
    const float g[4][3] = {{0.5f, -3.0f, 0.01f}, {0.2f, 1.0f, -0.02f}, {-0.4f, 0.5f, 0.03f}, {0.1f, -0.2f, 0.0f}};
    for (int s = 0; s < 4; s++)
        lra_adam_step(p, g[s], m, v, 3, lra_lr_at(LRA_SCHED_ONECYCLE, 0.1, s, 2, 5),
                      lra_beta1_at(LRA_SCHED_ONECYCLE, 0.9, s, 2, 5), 0.999, 1e-6, 0.0, s + 1, 1.0f);
    const float want[3] = {0.9459043145179749f, -2.012600898742676f, 0.5357012152671814f};
    for (int i = 0; i < 3; i++) ck_assert_float_eq_tol(p[i], want[i], 2e-6f);
}
END_TEST

/* The repro profile is lra.md's reproduction recipe, task by task (length, batch, warm-up, steps),
 * with the model, optimizer and pooling it names; evaluation at most every recipe step count
 * apart, on the whole validation split. */
START_TEST(test_repro_profile_values) {
    static const struct { const char *task; int len, batch, warmup, steps, recipe_every, pool_len; } want[] = {
        {"listops", 2000, 32, 1000, 5000, 50, 2048},  {"text", 1000, 32, 8000, 20000, 500, 1024},
        {"retrieval", 4000, 32, 800, 30000, 300, 4096}, {"image", 1024, 256, 175, 35000, 175, 1024},
        {"pathfinder", 1024, 256, 312, 62400, 312, 1024},
    };
    char err[LRA_ERR_LEN];
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        lra_config c;
        ck_assert_msg(lra_config_profile(&c, want[i].task, "repro", err) == LRA_OK, "%s", err);
        ck_assert_int_eq(c.max_len, want[i].len);
        ck_assert_int_eq(c.batch, want[i].batch);
        ck_assert_int_eq(c.warmup, want[i].warmup);
        ck_assert_int_eq(c.steps, want[i].steps);
        ck_assert_int_eq(lra_config_pool_len(&c), want[i].pool_len);
        ck_assert_int_eq(lra_config_recipe_eval_every(want[i].task), want[i].recipe_every);
        ck_assert(c.eval_every >= want[i].recipe_every && c.eval_every % want[i].recipe_every == 0);
        ck_assert_int_eq(c.eval_subset, 0);
        ck_assert(c.layers == 2 && c.heads == 2 && c.emb == 64 && c.qkv == 64 && c.mlp == 128);
        ck_assert(c.pool == LRA_POOL_MEAN && c.pos_learned == 1 && c.init == LRA_INIT_TORCH && c.attn_bias == 1);
        ck_assert(c.schedule == LRA_SCHED_ONECYCLE && c.lr == 1e-4 && c.wd == 0 && c.clip == 0);
        ck_assert(c.adam_b2 == 0.999 && c.adam_eps == 1e-6);
        ck_assert(c.dropout == 0.1f && c.attn_dropout == 0.1f && c.retrieval_head == 2);
    }
    /* the default profile, and the one it replaced */
    lra_config c;
    int help;
    char *argv[] = {"--task=text"};
    ck_assert(lra_config_parse(&c, 1, argv, &help, err) == LRA_OK && strcmp(c.profile, "repro") == 0);
    ck_assert(lra_config_profile(&c, "listops", "small", err) == LRA_ERR_USAGE && strstr(err, "repro replaces it"));
    /* official keeps flax's Adam */
    ck_assert(lra_config_profile(&c, "listops", "official", err) == LRA_OK);
    ck_assert(c.adam_b1 == 0.9 && c.adam_b2 == 0.98 && c.adam_eps == 1e-9 && c.schedule == LRA_SCHED_RSQRT);
}
END_TEST

/* Checkpoints outlive option lists: one written before --final-eval, --grad-shards and --task-opt existed
 * resumes when the options have the values their absence meant (all, 1), is refused with others,
 * and `resume` rebuilds those values, not today's defaults; a float option compares as a float
 * (older checkpoints recorded dropout as 0.10000000149011612). */
START_TEST(test_identity_across_versions) {
    lra_config c;
    char err[LRA_ERR_LEN], msg[512];
    ck_assert(lra_config_profile(&c, "listops", "repro", err) == LRA_OK);
    cJSON *old = lra_config_identity_json(&c), *now = lra_config_identity_json(&c);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(now, "dropout")->valuedouble, 0.1);
    cJSON_DeleteItemFromObjectCaseSensitive(old, "final-eval");
    cJSON_DeleteItemFromObjectCaseSensitive(old, "grad-shards");
    cJSON_ReplaceItemInObjectCaseSensitive(old, "dropout", cJSON_CreateNumber((double)0.1f));
    ck_assert_msg(lra_config_diff(old, "the checkpoint", now, msg, sizeof msg) == 0, "%s", msg);
    c.final_eval_subset = 1;
    cJSON *sub = lra_config_identity_json(&c);
    ck_assert(lra_config_diff(old, "the checkpoint", sub, msg, sizeof msg) == 1 && strstr(msg, "--final-eval=(absent) in the checkpoint, subset here"));
    c.final_eval_subset = 0;
    c.grad_shards = 4;
    cJSON *shards = lra_config_identity_json(&c);
    ck_assert(lra_config_diff(old, "the checkpoint", shards, msg, sizeof msg) == 1 && strstr(msg, "--grad-shards=(absent) in the checkpoint, 4 here"));
    cJSON_Delete(shards);
    char *args[128];
    int n = lra_config_args_from_json(old, args, 128), found = 0;
    for (int i = 0; i < n; i++) {
        found += !strcmp(args[i], "--grad-shards=1") + !strcmp(args[i], "--final-eval=all");
        free(args[i]);
    }
    ck_assert_int_eq(found, 2);
    /* --task-opt came later still: absent means none, and the rebuilt options parse (a checkpoint
     * or report of an earlier binary, which batch and resume read) */
    cJSON_DeleteItemFromObjectCaseSensitive(old, "task-opt");
    ck_assert_msg(lra_config_diff(old, "the checkpoint", now, msg, sizeof msg) == 0, "%s", msg);
    snprintf(c.task_opts, sizeof c.task_opts, "pairs=2");
    cJSON *opt = lra_config_identity_json(&c);
    ck_assert(lra_config_diff(old, "the checkpoint", opt, msg, sizeof msg) >= 1 && strstr(msg, "--task-opt=(absent)"));
    cJSON_Delete(opt);
    cJSON *cfg = lra_config_to_json(&c);
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "task-opt");
    n = lra_config_args_from_json(cfg, args, 128);
    lra_config back;
    int help = 0;
    ck_assert_msg(lra_config_parse(&back, n, args, &help, err) == LRA_OK && !back.task_opts[0], "%s", err);
    for (int i = 0; i < n; i++) free(args[i]);
    cJSON_Delete(cfg);
    /* the default report name hashes --task-opt only when given: runs started before it existed
     * keep their names, which `batch` finds them by */
    char path[512];
    ck_assert(lra_config_profile(&c, "listops", "repro", err) == LRA_OK);
    snprintf(c.backend, sizeof c.backend, "moe");
    lra_run_default_report(&c, path, sizeof path);
    ck_assert_str_eq(path, "results/listops/moe-repro-seed0-a71a462e.json");
    snprintf(c.task_opts, sizeof c.task_opts, "pairs=2");
    lra_run_default_report(&c, path, sizeof path);
    ck_assert_str_ne(path, "results/listops/moe-repro-seed0-a71a462e.json");
    cJSON_Delete(old);
    cJSON_Delete(now);
    cJSON_Delete(sub);
}
END_TEST

/* Every registered task carries what the harness needs, so adding one touches no harness file:
 * its title, help, published figure, both profiles' rows (which the profiles resolve), and
 * where its data comes from. */
START_TEST(test_task_registry_complete) {
    ck_assert_int_ge(lra_task_count(), 6);
    char err[LRA_ERR_LEN];
    for (int i = 0; i < lra_task_count(); i++) {
        const lra_task_i *t = lra_task_at(i);
        ck_assert_ptr_eq(lra_task_find(t->name), t);
        ck_assert_msg(t->title && *t->title && t->help && *t->help, "%s: title or help missing", t->name);
        ck_assert_msg(isnan(t->published) || (t->published > 0 && t->published < 100), "%s: published %g", t->name,
                      t->published);
        ck_assert_msg(!t->in_average || !isnan(t->published), "%s: averaged but FAIL", t->name);
        ck_assert_msg(t->official.layers > 0 && t->official.batch > 0 && t->official.max_len == t->max_len &&
                      t->official.steps > 0 && t->official.pool && t->official.pos && t->official.schedule,
                      "%s: official row incomplete", t->name);
        ck_assert_msg(t->repro.max_len > 0 && t->repro.batch > 0 && t->repro.steps > t->repro.warmup &&
                      t->repro.eval_every >= t->repro.recipe_eval_every && t->repro.recipe_eval_every > 0,
                      "%s: repro row incomplete", t->name);
        ck_assert_msg(!t->source.url || (t->source.file && *t->source.file), "%s: a download without a file name", t->name);
        ck_assert_msg(!t->generate == !t->generate_options, "%s: a generator without its options, or options without it",
                      t->name);
        static const char *const profiles[] = {"repro", "official", "ci"};
        for (int k = 0; k < 3; k++) {
            lra_config c;
            ck_assert_msg(lra_config_profile(&c, t->name, profiles[k], err) == LRA_OK, "%s/%s: %s", t->name, profiles[k], err);
            if (k == 1) /* the official profile is the task's row, spelled as options */
                ck_assert(c.layers == t->official.layers && c.batch == t->official.batch && c.lr == t->official.lr &&
                          c.steps == t->official.steps && c.pool == (strcmp(t->official.pool, "mean") == 0));
        }
    }
}
END_TEST

START_TEST(test_adam) {
    /* one step from zero moments moves by lr * (sign(g) + wd * p): bias correction makes m/sqrt(v) = sign */
    float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, -3.0f}, m[2] = {0}, v[2] = {0};
    lra_adam_step(p, g, m, v, 2, 0.1, 0.9, 0.98, 1e-9, 0.01, 1, 1.0f);
    ck_assert_float_eq_tol(p[0], 1.0f - 0.1f * (1.0f + 0.01f * 1.0f), 1e-6f);
    ck_assert_float_eq_tol(p[1], -2.0f - 0.1f * (-1.0f + 0.01f * -2.0f), 1e-6f);
}
END_TEST

/* Memory at the repro profile's ListOps training shape (batch 32 x 2001, 2 layers, 2 heads of 32,
 * 2 threads): every efficient backend's attention workspace - what each layer keeps for backward
 * plus the scratch the layers share - at most twice full's or 16 MB, whichever is larger. */
START_TEST(test_attention_memory_at_training_shape) {
    char err[LRA_ERR_LEN];
    size_t full_bytes = 0;
    for (int b = 0; b < lra_attn_count(); b++) { /* every registered backend: a new one is held to it too */
        lra_model_cfg mc = {.vocab = 17, .classes = 10, .max_len = 2001, .batch = 32, .layers = 2, .heads = 2,
                            .emb = 64, .qkv = 64, .mlp = 128, .pool = LRA_POOL_MEAN, .pool_len = 2048, .learned_pos = 1,
                            .backend = lra_attn_name_at(b), .attn_opts = "", .nthreads = 2, .attn_bias = 1};
        lra_model_sizes z;
        ck_assert_msg(lra_model_plan(&z, &mc, err) == LRA_OK, "%s", err);
        if (b == 0) { /* the registry lists full first */
            ck_assert_str_eq(mc.backend, "full");
            full_bytes = z.attention_workspace_bytes;
            continue;
        }
        const size_t limit = 2 * full_bytes > (size_t)16e6 ? 2 * full_bytes : (size_t)16e6;
        ck_assert_msg(z.attention_workspace_bytes <= limit, "%s: %zu bytes of attention workspace, more than %zu (full: %zu)",
                      mc.backend, z.attention_workspace_bytes, limit, full_bytes);
    }
}
END_TEST

/* Issue 16's long-sequence shape: one layer, batch 1, 4 heads of 64, T = 16384, 2 threads. No
 * efficient backend holds more attention workspace than full attention: full keeps 8 bytes per
 * (head, token) and 132 KB of tiles per thread; moe and mita keep 4 + 2 s bytes per (head, token),
 * work through the queries a chunk at a time and (mita) in 32-row tiles at this length. Before
 * that, moe held 1.96x full's and mita 1.88x (29x and 130x before they were tiled). */
START_TEST(test_attention_memory_at_16k) {
    char err[LRA_ERR_LEN];
    size_t full_bytes = 0;
    ck_assert_str_eq(lra_attn_name_at(0), "full");
    for (int b = 0; b < lra_attn_count(); b++) { /* every registered backend */
        lra_attn h;
        ck_assert_msg(lra_attn_create(&h, lra_attn_name_at(b), "", (lra_attn_shape){1, 4, 16384, 64}, 2, err) == LRA_OK,
                      "%s", err);
        const size_t bytes = lra_attn_workspace_bytes(&h);
        lra_attn_free(&h);
        if (b == 0) full_bytes = bytes;
        ck_assert_msg(bytes <= full_bytes, "%s: %zu bytes of attention workspace at T=16384, more than full's %zu",
                      lra_attn_name_at(b), bytes, full_bytes);
    }
}
END_TEST

Suite *model_suite(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_model_gradcheck_cls_sin);
    tcase_add_test(tc, test_model_gradcheck_mean_learned);
    tcase_add_test(tc, test_model_gradcheck_dual);
    tcase_add_test(tc, test_padding_invariance);
    tcase_add_test(tc, test_threads_bitwise);
    tcase_add_test(tc, test_bf16_near_fp32);
    tcase_add_test(tc, test_bf16_short_wide);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_onecycle);
    tcase_add_test(tc, test_repro_profile_values);
    tcase_add_test(tc, test_identity_across_versions);
    tcase_add_test(tc, test_adamw_onecycle_torch);
    tcase_add_test(tc, test_model_gradcheck_repro);
    tcase_add_test(tc, test_adam);
    tcase_add_test(tc, test_attention_memory_at_training_shape);
    tcase_add_test(tc, test_attention_memory_at_16k);
    suite_add_tcase(s, tc);
    TCase *reg = tcase_create("task registry"); /* alone, for the guide test's scratch task */
    tcase_add_test(reg, test_task_registry_complete);
    suite_add_tcase(s, reg);
    return s;
}
