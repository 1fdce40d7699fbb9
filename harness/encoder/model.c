/* model.c - see model.h. */
#include "model.h"

#include <math.h>
#include <omp.h>
#include <string.h>

enum { SITE_ATTN_OUT = 1, SITE_MLP_HIDDEN = 2, SITE_MLP_OUT = 3, SITE_ATTN_PROBS = 4 };
#define LAYER_EMBED 100000u /* stream id of the embedding dropout */
#define NORM_CHUNK 65536

/* Documents per example (2: the dual encoder, Retrieval): rows of
 * the encoder per example, the width of the head's input and its hidden widths. */
static int docs(const lra_model_cfg *c) { return c->docs > 1 ? c->docs : 1; }
static size_t head_in(const lra_model_cfg *c) { return (size_t)c->emb * (docs(c) == 2 ? (c->dual_head ? 4 : 2) : 1); }
static size_t head_mid(const lra_model_cfg *c) { return docs(c) == 2 && !c->dual_one_hidden ? (size_t)c->mlp / 2 : 0; }
static size_t head_last(const lra_model_cfg *c) { return head_mid(c) ? head_mid(c) : (size_t)c->mlp; }
/* threads that forward's row blocks may run on at once: each has its own scratch */
static int row_threads(const lra_model_cfg *c) { return c->nthreads > 1 ? c->nthreads : 1; }

static size_t block_param_floats(const lra_model_cfg *c, size_t attn_params) {
    size_t C = c->emb, Q = c->qkv, M = c->mlp;
    return 2 * C + 3 * Q * C + C * Q + (c->attn_bias ? 3 * Q + C : 0) + 2 * C + M * C + M + C * M + C + attn_params;
}

/* Floats of the parameters (one of the four parameter-shaped arrays) for max length T. */
static size_t param_floats(const lra_model_cfg *c, int T, size_t attn_params) {
    return (size_t)c->vocab * c->emb + (c->cls ? c->emb : 0) + (c->learned_pos ? (size_t)T * c->emb : 0) +
           c->layers * block_param_floats(c, attn_params) + 2 * (size_t)c->emb + (size_t)c->mlp * head_in(c) + c->mlp +
           head_mid(c) * c->mlp + head_mid(c) + (size_t)c->classes * head_last(c) + c->classes;
}

/* Lays out the activation arena for the maximum batch and length T: with m, points m's
 * activation views into base; without, only counts. Returns the floats it takes. The one place
 * that both sizes the arena and carves it, so the two cannot disagree. Shapes: model.h. */
static size_t layout_acts(const lra_model_cfg *c, int T, float *base, lra_model *m) {
    const size_t B = c->batch, E = B * docs(c), N = E * T, C = c->emb, Q = c->qkv, M = c->mlp, K = c->classes;
    const size_t F = head_in(c), H = head_mid(c);
    const size_t wide = N * (3 * Q > M ? 3 * Q : M), mid = N * (M > C ? (M > Q ? M : Q) : (C > Q ? C : Q));
    size_t off = 0;
#define TAKE(field, n) do { if (m) m->field = base + off; off += (n); } while (0)
    if (!c->learned_pos) TAKE(sinusoid, (size_t)T * C);
    TAKE(enc, N * C);
    TAKE(lnf, N * C); TAKE(lnf_mean, N); TAKE(lnf_rstd, N);
    TAKE(pooled, E * C); TAKE(feat, B * F); TAKE(h1, B * M); TAKE(h1_relu, B * M);
    TAKE(hm, B * H); TAKE(hm_relu, B * H);
    TAKE(logits, B * K); TAKE(probs, B * K); TAKE(losses, B);
    TAKE(dlogits, B * K);
    /* bf16: the products' inputs kept rounded (uint16, two to a float), their fp32 one scratch */
    const int b16 = c->precision == LRA_BF16;
#define TAKE16(field, n) do { if (m) m->field = (uint16_t *)(base + off); off += ((n) + 1) / 2; } while (0)
#define TAKE_INPUT(field, field16, n) do { if (!b16) TAKE(field, n); \
                                           else { TAKE16(field16, n); if (m) m->field = m->prod_in; } } while (0)
    if (b16 && M % LRA_GELU_BLOCK) TAKE(prod_in, N * M); /* GELU alone (model.c's forward) */
    for (int l = 0; l < c->layers; l++) {
        TAKE(blocks[l].ln1_mean, N); TAKE(blocks[l].ln1_rstd, N);
        TAKE(blocks[l].qkvh, 3 * N * Q); TAKE(blocks[l].atto, N * Q);
        TAKE(blocks[l].res2, N * C);
        TAKE(blocks[l].ln2_mean, N); TAKE(blocks[l].ln2_rstd, N);
        TAKE(blocks[l].fch, N * M); TAKE(blocks[l].res3, N * C);
        TAKE_INPUT(blocks[l].ln1, blocks[l].ln1_16, N * C); TAKE_INPUT(blocks[l].atty, blocks[l].atty16, N * Q);
        TAKE_INPUT(blocks[l].ln2, blocks[l].ln2_16, N * C); TAKE_INPUT(blocks[l].fchg, blocks[l].fchg16, N * M);
    }
#undef TAKE_INPUT
#undef TAKE16
    TAKE(row_scratch, (size_t)row_threads(c) * LRA_ROW_BLOCK * (3 * Q + C));
    TAKE(dresid, N * C); TAKE(dwide, wide); TAKE(dmid, mid); TAKE(dnorm, N * C);
    TAKE(dqkvh, 3 * N * Q);
    TAKE(dpooled, E * C); TAKE(dfeat, B * F); TAKE(dh1, B * M); TAKE(dh1_relu, B * M);
    TAKE(dhm, B * H); TAKE(dhm_relu, B * H);
#undef TAKE
    return off;
}

/* uint16 of the weights that one forward pass over the row blocks multiplies by, rounded to bf16:
 * a layer's projection and MLP and the next layer's q, k, v (model.c's round_weights) */
static size_t pass_weights16(const lra_model_cfg *c) {
    const size_t C = c->emb, Q = c->qkv, M = c->mlp;
    return C * Q + 2 * M * C + 3 * Q * C;
}

/* uint16 of bf16 operand scratch: the largest of the products' needs (0 in fp32); the blocks'
 * products bring their inputs rounded, the head's small ones round theirs here */
static size_t bf16_scratch(const lra_model_cfg *c, int T) {
    if (c->precision != LRA_BF16) return 0;
    const int B = c->batch, N = B * docs(c) * T, C = c->emb, Q = c->qkv, M = c->mlp, K = c->classes;
    const int F = (int)head_in(c), H = (int)head_mid(c), HL = (int)head_last(c);
    const size_t need[] = {lra_matmul16_scratch(N, C, 3 * Q),  lra_matmul16_scratch(N, Q, C),
                           lra_matmul16_scratch(N, C, M),      lra_matmul16_scratch(N, M, C),
                           lra_matmul_bf16_scratch(B, F, M),   lra_matmul_bf16_scratch(B, M, H),
                           lra_matmul_bf16_scratch(B, HL, K),  pass_weights16(c)};
    size_t most = 0;
    for (size_t i = 0; i < sizeof need / sizeof *need; i++) most = need[i] > most ? need[i] : most;
    return most;
}

lra_status lra_model_plan(lra_model_sizes *z, const lra_model_cfg *cfg, char *err) {
    const int T = cfg->max_len + (cfg->cls ? 1 : 0);
    if (cfg->heads < 1 || cfg->qkv % cfg->heads)
        return lra_fail(err, LRA_ERR_USAGE, "qkv dimension %d is not a multiple of heads %d", cfg->qkv, cfg->heads);
    lra_attn h;
    lra_attn_shape max = {cfg->batch * docs(cfg), cfg->heads, T, cfg->qkv / cfg->heads};
    lra_status st = lra_attn_create(&h, cfg->backend, cfg->attn_opts, max, cfg->nthreads, err);
    if (st != LRA_OK) return st;
    z->params = param_floats(cfg, T, lra_attn_param_count(&h));
    z->activation_bytes = layout_acts(cfg, T, NULL, NULL) * sizeof(float) + (size_t)cfg->batch * docs(cfg) * T +
                          bf16_scratch(cfg, T) * sizeof(uint16_t);
    z->attention_workspace_bytes = ((lra_attn_saved_bytes(&h) + 63) & ~(size_t)63) * cfg->layers + lra_attn_scratch_bytes(&h);
    z->total_bytes = 4 * z->params * sizeof(float) + z->activation_bytes + z->attention_workspace_bytes;
    lra_attn_free(&h);
    return LRA_OK;
}

/* Lays the views of one flat parameter-shaped array; returns the number of floats. */
static size_t layout_params(lra_params *p, float *base, const lra_model *m) {
    const lra_model_cfg *c = &m->cfg;
    size_t C = c->emb, Q = c->qkv, M = c->mlp, off = 0;
#define TAKE(ptr, n) do { (ptr) = base ? base + off : NULL; off += (n); } while (0)
    TAKE(p->wte, (size_t)c->vocab * C);
    if (c->cls) TAKE(p->cls, C); else p->cls = NULL;
    if (c->learned_pos) TAKE(p->pos, (size_t)m->T * C); else p->pos = NULL;
    for (int l = 0; l < c->layers; l++) {
        lra_block_params *b = &p->blocks[l];
        TAKE(b->ln1w, C); TAKE(b->ln1b, C);
        TAKE(b->qkvw, 3 * Q * C); TAKE(b->projw, C * Q);
        if (c->attn_bias) { TAKE(b->qkvb, 3 * Q); TAKE(b->projb, C); } else b->qkvb = b->projb = NULL;
        TAKE(b->ln2w, C); TAKE(b->ln2b, C);
        TAKE(b->fcw, M * C); TAKE(b->fcb, M);
        TAKE(b->fcprojw, C * M); TAKE(b->fcprojb, C);
        TAKE(b->attn, m->attn_params_per_layer);
    }
    TAKE(p->lnfw, C); TAKE(p->lnfb, C);
    TAKE(p->h1w, M * head_in(c)); TAKE(p->h1b, M);
    if (head_mid(c)) { TAKE(p->hmw, head_mid(c) * M); TAKE(p->hmb, head_mid(c)); } else p->hmw = p->hmb = NULL;
    TAKE(p->h2w, (size_t)c->classes * head_last(c)); TAKE(p->h2b, (size_t)c->classes);
#undef TAKE
    return off;
}

lra_status lra_model_create(lra_model *m, const lra_model_cfg *cfg, char *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    const lra_model_cfg *c = &m->cfg;
    if (c->qkv % c->heads != 0)
        return lra_fail(err, LRA_ERR_USAGE, "qkv dimension %d is not a multiple of heads %d", c->qkv, c->heads);
    if (c->emb % 2 != 0 && !c->learned_pos)
        return lra_fail(err, LRA_ERR_USAGE, "emb %d must be even for sinusoidal positions", c->emb);
    if (c->pool == LRA_POOL_MEAN && c->pool_len < c->max_len)
        return lra_fail(err, LRA_ERR_USAGE, "MEAN pooling's length %d is shorter than max_len %d", c->pool_len, c->max_len);
    if (c->dropout < 0 || c->dropout >= 1 || c->attn_dropout < 0 || c->attn_dropout >= 1)
        return lra_fail(err, LRA_ERR_USAGE, "dropout rates must be in [0, 1)");
    if (head_mid(c) == 0 && docs(c) == 2 && !c->dual_one_hidden)
        return lra_fail(err, LRA_ERR_USAGE, "the dual encoder's head needs mlp >= 2 (its second layer is mlp/2 wide)");
    m->T = c->max_len + (c->cls ? 1 : 0);
    m->hs = c->qkv / c->heads;
    lra_attn_shape max = {c->batch * docs(c), c->heads, m->T, m->hs};
    lra_status st = lra_attn_create(&m->attn, c->backend, c->attn_opts, max, c->nthreads, err);
    if (st != LRA_OK) return st;
    m->attn_params_per_layer = lra_attn_param_count(&m->attn);

    m->p.blocks = calloc((size_t)c->layers, sizeof(lra_block_params));
    m->g.blocks = calloc((size_t)c->layers, sizeof(lra_block_params));
    m->blocks = calloc((size_t)c->layers, sizeof(lra_block_acts));
    if (!m->p.blocks || !m->g.blocks || !m->blocks) goto nomem;
    m->nparams = layout_params(&m->p, NULL, m);
    LRA_ASSERT(m->nparams == param_floats(c, m->T, m->attn_params_per_layer));
    m->params = lra_alloc_touched(4 * m->nparams * sizeof(float));
    if (!m->params) goto nomem;
    m->grads = m->params + m->nparams;
    m->adam_m = m->grads + m->nparams;
    m->adam_v = m->adam_m + m->nparams;
    layout_params(&m->p, m->params, m);
    layout_params(&m->g, m->grads, m);
    m->norm_chunks = (m->nparams + NORM_CHUNK - 1) / NORM_CHUNK;
    m->norm_partials = calloc(m->norm_chunks, sizeof(double));
    if (!m->norm_partials) goto nomem;

    /* activations: sized for (batch, T) once */
    const size_t C = c->emb, N = (size_t)c->batch * docs(c) * m->T;
    m->acts_floats = layout_acts(c, m->T, NULL, NULL);
    m->acts = lra_alloc_touched(m->acts_floats * sizeof(float));
    if (!m->acts) goto nomem;
    layout_acts(c, m->T, m->acts, m);
    if (m->sinusoid) lra_sinusoid_table(m->sinusoid, m->T, (int)C);

    /* what each layer keeps from forward to backward, then one scratch region the layers use in
     * turn (the attention calls of a forward or backward pass run one layer at a time) */
    m->ws_bytes_per_layer = (lra_attn_saved_bytes(&m->attn) + 63) & ~(size_t)63;
    m->attn_scratch_bytes = lra_attn_scratch_bytes(&m->attn);
    char *ws = lra_alloc_touched(m->ws_bytes_per_layer * c->layers + m->attn_scratch_bytes + 1);
    m->mask = lra_alloc_touched(N);
    m->attn_arena = ws;
    if (!ws || !m->mask) goto nomem;
    if (c->precision == LRA_BF16 && !(m->bf16 = lra_alloc_touched(bf16_scratch(c, m->T) * sizeof(uint16_t))))
        goto nomem;
    for (int l = 0; l < c->layers; l++) m->blocks[l].ws = ws + m->ws_bytes_per_layer * l;
    lra_attn_share_scratch(&m->attn, ws + m->ws_bytes_per_layer * c->layers);
    return LRA_OK;
nomem:
    lra_model_free(m);
    return lra_fail(err, LRA_ERR_NOMEM, "out of memory allocating the model arenas");
}

void lra_model_param_name(const lra_model *m, size_t i, char *buf, size_t n) {
    const lra_model_cfg *c = &m->cfg;
    const lra_params *p = &m->p;
    /* the tensors in layout order: each starts where its pointer points */
    typedef struct { const char *name; const float *at; int layer; } tensor;
    tensor t[64];
    int nt = 0;
#define ADD(ptr, nm, l) do { if ((ptr) && nt < 64) t[nt++] = (tensor){nm, ptr, l}; } while (0)
    ADD(p->wte, "wte", -1); ADD(p->cls, "cls", -1); ADD(p->pos, "pos", -1);
    for (int l = 0; l < c->layers && nt < 48; l++) {
        const lra_block_params *b = &p->blocks[l];
        ADD(b->ln1w, "ln1w", l); ADD(b->ln1b, "ln1b", l); ADD(b->qkvw, "qkvw", l); ADD(b->projw, "projw", l);
        ADD(b->qkvb, "qkvb", l); ADD(b->projb, "projb", l);
        ADD(b->ln2w, "ln2w", l); ADD(b->ln2b, "ln2b", l); ADD(b->fcw, "fcw", l); ADD(b->fcb, "fcb", l);
        ADD(b->fcprojw, "fcprojw", l); ADD(b->fcprojb, "fcprojb", l);
        if (m->attn_params_per_layer) ADD(b->attn, "attn", l);
    }
    ADD(p->lnfw, "lnfw", -1); ADD(p->lnfb, "lnfb", -1); ADD(p->h1w, "h1w", -1); ADD(p->h1b, "h1b", -1);
    ADD(p->hmw, "hmw", -1); ADD(p->hmb, "hmb", -1); ADD(p->h2w, "h2w", -1); ADD(p->h2b, "h2b", -1);
#undef ADD
    const float *x = m->params + i;
    int best = 0;
    for (int k = 0; k < nt; k++)
        if (t[k].at <= x && t[k].at >= t[best].at) best = k;
    const size_t off = (size_t)(x - t[best].at);
    if (t[best].layer >= 0) snprintf(buf, n, "blocks.%d.%s[%zu]", t[best].layer, t[best].name, off);
    else snprintf(buf, n, "%s[%zu]", t[best].name, off);
}

size_t lra_model_first_nonfinite(const lra_model *m, const float *x) {
    for (size_t i = 0; i < m->nparams; i++)
        if (!isfinite(x[i])) return i;
    return m->nparams;
}

void lra_model_free(lra_model *m) {
    free(m->attn_arena);
    free(m->blocks);
    free(m->p.blocks);
    free(m->g.blocks);
    free(m->params);
    free(m->acts);
    free(m->mask);
    free(m->bf16);
    free(m->norm_partials);
    lra_attn_free(&m->attn);
    memset(m, 0, sizeof *m);
}

static void fill_normal(float *x, size_t n, double std, lra_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * lra_rng_normal(r));
}
static void fill_uniform(float *x, size_t n, double limit, lra_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(limit * (2.0 * lra_rng_uniform(r) - 1.0));
}
static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}
/* lecun_normal as in jax: truncated normal in [-2, 2] std, rescaled to variance 1/fan_in */
static void fill_lecun(float *x, size_t n, int fan_in, lra_rng *r) {
    const double std = sqrt(1.0 / fan_in) / 0.87962566103423978;
    for (size_t i = 0; i < n; i++) {
        double z;
        do z = lra_rng_normal(r); while (z < -2.0 || z > 2.0);
        x[i] = (float)(std * z);
    }
}

/* PyTorch's nn.Linear: kernel (kaiming-uniform with a = sqrt(5)) and bias both U(+-1/sqrt(fan_in)) */
static void fill_torch_linear(float *w, float *bias, size_t out, int fan_in, lra_rng *r) {
    const double bound = 1.0 / sqrt((double)fan_in);
    fill_uniform(w, out * (size_t)fan_in, bound, r);
    if (bias) fill_uniform(bias, out, bound, r);
}

static void init_flax(lra_model *m, lra_rng *r) {
    const lra_model_cfg *c = &m->cfg;
    size_t C = c->emb, Q = c->qkv, M = c->mlp;
    fill_normal(m->p.wte, (size_t)c->vocab * C, 1.0, r);
    if (m->p.pos) fill_normal(m->p.pos, (size_t)m->T * C, 0.02, r);
    for (int l = 0; l < c->layers; l++) {
        lra_block_params *b = &m->p.blocks[l];
        /* query, key and value are three separate (C -> Q) kernels in flax */
        fill_uniform(b->qkvw, 3 * Q * C, sqrt(6.0 / (double)(C + Q)), r);
        fill_uniform(b->projw, C * Q, sqrt(6.0 / (double)(C + Q)), r);
        if (b->qkvb) { fill_normal(b->qkvb, 3 * Q, 1e-6, r); fill_normal(b->projb, C, 1e-6, r); }
        fill_uniform(b->fcw, M * C, sqrt(6.0 / (double)(C + M)), r);
        fill_normal(b->fcb, M, 1e-6, r);
        fill_uniform(b->fcprojw, C * M, sqrt(6.0 / (double)(C + M)), r);
        fill_normal(b->fcprojb, C, 1e-6, r);
    }
    fill_lecun(m->p.h1w, M * head_in(c), (int)head_in(c), r); fill_const(m->p.h1b, M, 0.0f);
    if (head_mid(c)) { fill_lecun(m->p.hmw, head_mid(c) * M, (int)M, r); fill_const(m->p.hmb, head_mid(c), 0.0f); }
    fill_lecun(m->p.h2w, (size_t)c->classes * head_last(c), (int)head_last(c), r);
    fill_const(m->p.h2b, (size_t)c->classes, 0.0f);
}

static void init_torch(lra_model *m, lra_rng *r) {
    const lra_model_cfg *c = &m->cfg;
    size_t C = c->emb, Q = c->qkv, M = c->mlp;
    fill_normal(m->p.wte, (size_t)c->vocab * C, 0.02, r);
    if (m->p.pos) fill_normal(m->p.pos, (size_t)m->T * C, 0.02, r);
    for (int l = 0; l < c->layers; l++) {
        lra_block_params *b = &m->p.blocks[l];
        fill_torch_linear(b->qkvw, b->qkvb, 3 * Q, (int)C, r); /* W_q, W_k, W_v: each fan-in C */
        fill_torch_linear(b->projw, b->projb, C, (int)Q, r);
        fill_torch_linear(b->fcw, b->fcb, M, (int)C, r);
        fill_torch_linear(b->fcprojw, b->fcprojb, C, (int)M, r);
    }
    fill_torch_linear(m->p.h1w, m->p.h1b, M, (int)head_in(c), r);
    if (head_mid(c)) fill_torch_linear(m->p.hmw, m->p.hmb, head_mid(c), (int)M, r);
    fill_torch_linear(m->p.h2w, m->p.h2b, (size_t)c->classes, (int)head_last(c), r);
}

void lra_model_init(lra_model *m, uint64_t seed) {
    const lra_model_cfg *c = &m->cfg;
    const size_t C = c->emb;
    lra_rng r;
    lra_rng_seed(&r, lra_stream(seed, 0x1417, 0));
    if (c->init == LRA_INIT_TORCH) init_torch(m, &r);
    else init_flax(m, &r);
    if (m->p.cls) fill_const(m->p.cls, C, 0.0f);
    for (int l = 0; l < c->layers; l++) {
        lra_block_params *b = &m->p.blocks[l];
        fill_const(b->ln1w, C, 1.0f); fill_const(b->ln1b, C, 0.0f);
        fill_const(b->ln2w, C, 1.0f); fill_const(b->ln2b, C, 0.0f);
        lra_attn_init_params(&m->attn, b->attn, lra_stream(seed, 0xA77, (uint64_t)l));
    }
    fill_const(m->p.lnfw, C, 1.0f); fill_const(m->p.lnfb, C, 0.0f);
    memset(m->adam_m, 0, 2 * m->nparams * sizeof(float));
}

/* Forward runs the work between two attention calls as one pass over blocks of LRA_ROW_BLOCK
 * rows: a block goes through every row-local layer while it is in cache - the attention output's
 * merge and projection, the residuals, LayerNorms and MLP, then the next layer's q, k, v - instead
 * of each layer reading the whole activation back from memory. The products run on the blocks
 * they run on alone, and every other layer is row by row, so the bits are those of the layers
 * one at a time (layers.h). In a bf16 run the products' inputs are written rounded only, and the
 * weights are rounded once per pass. */
typedef struct {
    const uint16_t *proj, *fc, *fcproj; /* bf16 runs: layer l's weights rounded; else NULL */
    const uint16_t *qkv;                /* layer l+1's */
} weights16;

/* Rounds the weights that the pass after layer l's attention multiplies by (layer l's
 * projection and MLP, layer l+1's q, k, v) into m->bf16, in a bf16 run; else NULL. */
static weights16 round_weights(lra_model *m, int l) {
    weights16 w = {0};
    if (!m->bf16) return w;
    const size_t C = m->cfg.emb, Q = m->cfg.qkv, M = m->cfg.mlp;
    LRA_ASSERT(pass_weights16(&m->cfg) <= bf16_scratch(&m->cfg, m->T));
    uint16_t *at = m->bf16;
    if (l >= 0) {
        const lra_block_params *p = &m->p.blocks[l];
        lra_bf16_round(at, p->projw, C * Q); w.proj = at; at += C * Q;
        lra_bf16_round(at, p->fcw, M * C); w.fc = at; at += M * C;
        lra_bf16_round(at, p->fcprojw, C * M); w.fcproj = at; at += C * M;
    }
    if (l + 1 < m->cfg.layers) { lra_bf16_round(at, m->p.blocks[l + 1].qkvw, 3 * Q * C); w.qkv = at; }
    return w;
}

/* the dropout stream of layer l's site */
static uint64_t site(const lra_model *m, int l, int which) { return lra_stream(m->step_seed, (uint64_t)l, (uint64_t)which); }

/* One row block's view of the activations: rows n0 .. n0+rows-1, and the scratch of the thread
 * that runs it */
typedef struct {
    int n0, rows;
    float *qkv; /* (rows, 3Q): q, k, v before the head split */
    float *sub; /* (rows, C): a sub-layer's output before its dropout and residual */
} row_block;

#define AT(x, width) ((x) ? (x) + (size_t)r->n0 * (width) : NULL) /* row n0 of a (N, width) tensor */

/* Layer l from its attention output: atty = merge(atto), res2 = x + dropout(atty projw^T + projb),
 * ln2 = LN(res2), fch = ln2 fcw^T + fcb, and with gelu also fchg = dropout(gelu(fch)). */
static void attn_out_rows(lra_model *m, int l, const float *x, const weights16 *w16, int gelu, const row_block *r) {
    const lra_model_cfg *c = &m->cfg;
    const lra_block_params *p = &m->p.blocks[l];
    lra_block_acts *a = &m->blocks[l];
    const int T = m->Tcur, C = c->emb, Q = c->qkv, M = c->mlp, n0 = r->n0, rows = r->rows;
    const float drop = m->train ? c->dropout : 0.0f;
    float *atty = AT(a->atty, Q), *res2 = AT(a->res2, C), *ln2 = AT(a->ln2, C), *fch = AT(a->fch, M);
    uint16_t *atty16 = AT(a->atty16, Q), *ln2_16 = AT(a->ln2_16, C);
    lra_merge_heads_rows(atty, atty16, a->atto, n0, rows, T, c->heads, m->hs);
    lra_matmul_rows_forward(r->sub, atty, atty16, p->projw, w16->proj, p->projb, rows, Q, C);
    lra_residual_dropout_rows(res2, AT(x, C), r->sub, n0, rows, T, C, m->T, drop, site(m, l, SITE_ATTN_OUT));
    lra_layernorm_rows_forward(ln2, ln2_16, a->ln2_mean + n0, a->ln2_rstd + n0, res2, p->ln2w, p->ln2b, rows, C);
    lra_matmul_rows_forward(fch, ln2, ln2_16, p->fcw, w16->fc, p->fcb, rows, C, M);
    if (gelu)
        lra_gelu_dropout_rows(AT(a->fchg, M), AT(a->fchg16, M), fch, n0, rows, T, M, m->T, drop, site(m, l, SITE_MLP_HIDDEN));
}

/* Layer l from its GELU output: res3 = res2 + dropout(fchg fcprojw^T + fcprojb). */
static void mlp_out_rows(lra_model *m, int l, const weights16 *w16, const row_block *r) {
    const lra_model_cfg *c = &m->cfg;
    const lra_block_params *p = &m->p.blocks[l];
    lra_block_acts *a = &m->blocks[l];
    const int C = c->emb, M = c->mlp;
    const float drop = m->train ? c->dropout : 0.0f;
    lra_matmul_rows_forward(r->sub, AT(a->fchg, M), AT(a->fchg16, M), p->fcprojw, w16->fcproj, p->fcprojb, r->rows, M, C);
    lra_residual_dropout_rows(AT(a->res3, C), AT(a->res2, C), r->sub, r->n0, r->rows, m->Tcur, C, m->T, drop,
                              site(m, l, SITE_MLP_OUT));
}

/* Layer l's attention input from the residual stream x: ln1 = LN(x), qkv = ln1 qkvw^T + qkvb, split
 * into the heads of q, k, v; past the last layer, the final LayerNorm instead. */
static void attn_in_rows(lra_model *m, int l, const float *x, const weights16 *w16, const row_block *r) {
    const lra_model_cfg *c = &m->cfg;
    const int T = m->Tcur, C = c->emb, Q = c->qkv, BT = m->B * docs(c) * T, n0 = r->n0, rows = r->rows;
    if (l == c->layers) {
        lra_layernorm_rows_forward(AT(m->lnf, C), NULL, m->lnf_mean + n0, m->lnf_rstd + n0, AT(x, C), m->p.lnfw,
                                   m->p.lnfb, rows, C);
        return;
    }
    const lra_block_params *p = &m->p.blocks[l];
    lra_block_acts *a = &m->blocks[l];
    float *ln1 = AT(a->ln1, C);
    uint16_t *ln1_16 = AT(a->ln1_16, C);
    lra_layernorm_rows_forward(ln1, ln1_16, a->ln1_mean + n0, a->ln1_rstd + n0, AT(x, C), p->ln1w, p->ln1b, rows, C);
    lra_matmul_rows_forward(r->qkv, ln1, ln1_16, p->qkvw, w16->qkv, p->qkvb, rows, C, 3 * Q);
    float *q = a->qkvh, *k = q + (size_t)BT * Q, *v = k + (size_t)BT * Q;
    lra_split_heads_rows(q, k, v, r->qkv, n0, rows, T, c->heads, m->hs);
}
#undef AT

enum { PASS_ATTN_OUT = 1, PASS_GELU = 2, PASS_MLP_OUT = 4, PASS_NEXT = 8 };

/* One pass over the row blocks between layer l's attention and layer l+1's (l = -1: from the
 * embeddings), doing the parts `what` names; x: layer l's input (the embeddings for l = -1) */
static void rows_pass(lra_model *m, int l, const float *x, int what) {
    const lra_model_cfg *c = &m->cfg;
    const int BT = m->B * docs(c) * m->Tcur, nblocks = (BT + LRA_ROW_BLOCK - 1) / LRA_ROW_BLOCK;
    const int threads = omp_get_max_threads() < row_threads(c) ? omp_get_max_threads() : row_threads(c);
    const weights16 w = round_weights(m, l), *w16 = &w;
    const float *out = l >= 0 ? m->blocks[l].res3 : x;
    const size_t per_thread = (size_t)LRA_ROW_BLOCK * (3 * c->qkv + c->emb);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int blk = 0; blk < nblocks; blk++) {
        float *scratch = m->row_scratch + per_thread * omp_get_thread_num();
        const int n0 = blk * LRA_ROW_BLOCK;
        const row_block r = {n0, BT - n0 < LRA_ROW_BLOCK ? BT - n0 : LRA_ROW_BLOCK, scratch,
                             scratch + (size_t)LRA_ROW_BLOCK * 3 * c->qkv};
        if (what & PASS_ATTN_OUT) attn_out_rows(m, l, x, w16, what & PASS_GELU, &r);
        if (what & PASS_MLP_OUT) mlp_out_rows(m, l, w16, &r);
        if (what & PASS_NEXT) attn_in_rows(m, l + 1, out, w16, &r);
    }
}

/* GELU alone, when its rows are not whole vector blocks: out (B,T,M) in fp32, or in a bf16 run
 * (out16 set) rounded from out, the run's scratch */
static void gelu_input(float *out, uint16_t *out16, const float *in, int B, int T, int M, int Tstride, float rate,
                       uint64_t stream) {
    lra_gelu_dropout_forward(out, in, B, T, M, Tstride, rate, stream);
    if (out16) lra_bf16_round(out16, out, (size_t)B * T * M);
}

static void block_product_backward(lra_model *m, float *dx, float *dw, float *db, const float *dout, const float *x,
                                   const uint16_t *x16, const float *w, int N, int C, int OC) {
    if (x16) lra_matmul16_backward(dx, dw, db, dout, x16, w, N, C, OC, m->bf16);
    else lra_matmul_backward(dx, dw, db, dout, x, w, N, C, OC, NULL);
}

float lra_model_forward(lra_model *m, const int32_t *tokens, const uint8_t *mask,
                        const int32_t *labels, int B, int L, int train, uint64_t step_seed) {
    const lra_model_cfg *c = &m->cfg;
    LRA_ASSERT(B >= 1 && B <= c->batch && L >= 1 && L <= c->max_len);
    const int T = L + (c->cls ? 1 : 0), C = c->emb, Q = c->qkv, M = c->mlp, K = c->classes;
    const int E = B * docs(c), NH = c->heads, hs = m->hs, BT = E * T;
    const int F = (int)head_in(c), H = (int)head_mid(c), HL = (int)head_last(c);
    const float drop = train ? c->dropout : 0.0f;
    m->tokens = tokens; m->labels = labels; m->B = B; m->L = L; m->Tcur = T;
    m->train = train; m->step_seed = step_seed;

    for (int b = 0; b < E; b++) {
        uint8_t *mb = m->mask + (size_t)b * T;
        if (c->cls) mb[0] = mask[(size_t)b * L]; /* official: the CLS position copies token 0's mask */
        memcpy(mb + (c->cls ? 1 : 0), mask + (size_t)b * L, (size_t)L);
    }
    lra_embed_forward(m->enc, tokens, m->p.wte, m->p.cls, m->p.pos ? m->p.pos : m->sinusoid, E, L, C);
    lra_dropout_apply(m->enc, E, T, C, m->T, drop, lra_stream(step_seed, LAYER_EMBED, 0));
    const int gelu_rows = M % LRA_GELU_BLOCK == 0; /* else GELU runs alone, on its fixed blocks */
    lra_attn_shape shape = {E, NH, T, hs};
    rows_pass(m, -1, m->enc, PASS_NEXT);
    for (int l = 0; l < c->layers; l++) {
        lra_block_acts *a = &m->blocks[l];
        const float *q = a->qkvh, *k = q + (size_t)BT * Q, *v = k + (size_t)BT * Q;
        lra_attn_args args = {m->mask, train ? c->attn_dropout : 0.0f, site(m, l, SITE_ATTN_PROBS), c->precision};
        lra_attn_forward(&m->attn, shape, &args, a->atto, a->ws, q, k, v, m->p.blocks[l].attn);
        const float *x = l ? m->blocks[l - 1].res3 : m->enc;
        if (gelu_rows) {
            rows_pass(m, l, x, PASS_ATTN_OUT | PASS_GELU | PASS_MLP_OUT | PASS_NEXT);
            continue;
        }
        rows_pass(m, l, x, PASS_ATTN_OUT);
        gelu_input(a->fchg, a->fchg16, a->fch, E, T, M, m->T, drop, site(m, l, SITE_MLP_HIDDEN));
        rows_pass(m, l, x, PASS_MLP_OUT | PASS_NEXT);
    }
    lra_pool_forward(m->pooled, m->lnf, m->mask, c->pool, E, T, C, c->pool_len);
    const float *feat = m->pooled;
    if (docs(c) == 2) {
        lra_pair_features_forward(m->feat, m->pooled, c->dual_head, B, C);
        feat = m->feat;
    }
    lra_matmul_forward(m->h1, feat, m->p.h1w, m->p.h1b, B, F, M, m->bf16);
    lra_relu_forward(m->h1_relu, m->h1, (long)B * M);
    const float *last = m->h1_relu;
    if (H) {
        lra_matmul_forward(m->hm, m->h1_relu, m->p.hmw, m->p.hmb, B, M, H, m->bf16);
        lra_relu_forward(m->hm_relu, m->hm, (long)B * H);
        last = m->hm_relu;
    }
    lra_matmul_forward(m->logits, last, m->p.h2w, m->p.h2b, B, HL, K, m->bf16);
    lra_crossentropy_forward(m->losses, m->probs, m->logits, labels, B, K);
    double sum = 0.0;
    for (int b = 0; b < B; b++) sum += m->losses[b];
    return (float)(sum / B);
}

void lra_model_zero_grad(lra_model *m) { memset(m->grads, 0, m->nparams * sizeof(float)); }

void lra_model_backward(lra_model *m) { lra_model_backward_shard(m, m->B); }

void lra_model_backward_shard(lra_model *m, int batch_total) {
    const lra_model_cfg *c = &m->cfg;
    const int B = m->B, T = m->Tcur, C = c->emb, Q = c->qkv, M = c->mlp, K = c->classes;
    const int E = B * docs(c), NH = c->heads, hs = m->hs, BT = E * T;
    const int F = (int)head_in(c), H = (int)head_mid(c), HL = (int)head_last(c);
    const float drop = m->train ? c->dropout : 0.0f;
    const uint64_t seed = m->step_seed;

    /* the products write their din; the rest accumulate */
    memset(m->dlogits, 0, sizeof(float) * B * K);
    memset(m->dh1, 0, sizeof(float) * B * M);
    lra_crossentropy_backward(m->dlogits, m->probs, m->labels, B, K, 1.0f / batch_total);
    if (docs(c) == 2) memset(m->dpooled, 0, sizeof(float) * E * C);
    if (H) {
        memset(m->dhm, 0, sizeof(float) * B * H);
        lra_matmul_backward(m->dhm_relu, m->g.h2w, m->g.h2b, m->dlogits, m->hm_relu, m->p.h2w, B, HL, K, m->bf16);
        lra_relu_backward(m->dhm, m->hm, m->dhm_relu, (long)B * H);
        lra_matmul_backward(m->dh1_relu, m->g.hmw, m->g.hmb, m->dhm, m->h1_relu, m->p.hmw, B, M, H, m->bf16);
    } else {
        lra_matmul_backward(m->dh1_relu, m->g.h2w, m->g.h2b, m->dlogits, m->h1_relu, m->p.h2w, B, HL, K, m->bf16);
    }
    lra_relu_backward(m->dh1, m->h1, m->dh1_relu, (long)B * M);
    if (docs(c) == 2) {
        lra_matmul_backward(m->dfeat, m->g.h1w, m->g.h1b, m->dh1, m->feat, m->p.h1w, B, F, M, m->bf16);
        lra_pair_features_backward(m->dpooled, m->dfeat, m->pooled, c->dual_head, B, C);
    } else {
        lra_matmul_backward(m->dpooled, m->g.h1w, m->g.h1b, m->dh1, m->pooled, m->p.h1w, B, F, M, m->bf16);
    }
    lra_zero(m->dnorm, (size_t)BT * C);
    lra_pool_backward(m->dnorm, m->dpooled, m->mask, c->pool, E, T, C, c->pool_len);
    const float *xlast = c->layers ? m->blocks[c->layers - 1].res3 : m->enc;
    lra_zero(m->dresid, (size_t)BT * C);
    lra_layernorm_backward(m->dresid, m->g.lnfw, m->g.lnfb, m->dnorm, xlast, m->p.lnfw, m->lnf_mean, m->lnf_rstd, BT, C);

    lra_attn_shape shape = {E, NH, T, hs};
    for (int l = c->layers - 1; l >= 0; l--) {
        lra_block_params *p = &m->p.blocks[l], *g = &m->g.blocks[l];
        lra_block_acts *a = &m->blocks[l];
        const float *xin = l ? m->blocks[l - 1].res3 : m->enc;
        /* res3 = res2 + dropout(fcproj); the layers that write their din need no clearing before */
        lra_dropout_forward(m->dnorm, m->dresid, E, T, C, m->T, drop, site(m, l, SITE_MLP_OUT));
        block_product_backward(m, m->dwide, g->fcprojw, g->fcprojb, m->dnorm, a->fchg, a->fchg16, p->fcprojw, BT, M, C);
        lra_gelu_dropout_backward(m->dmid, a->fch, m->dwide, E, T, M, m->T, drop, site(m, l, SITE_MLP_HIDDEN));
        block_product_backward(m, m->dnorm, g->fcw, g->fcb, m->dmid, a->ln2, a->ln2_16, p->fcw, BT, C, M);
        lra_layernorm_backward(m->dresid, g->ln2w, g->ln2b, m->dnorm, a->res2, p->ln2w, a->ln2_mean, a->ln2_rstd, BT, C);
        /* res2 = x + dropout(atty @ projw^T) */
        lra_dropout_forward(m->dnorm, m->dresid, E, T, C, m->T, drop, site(m, l, SITE_ATTN_OUT));
        block_product_backward(m, m->dwide, g->projw, g->projb, m->dnorm, a->atty, a->atty16, p->projw, BT, Q, C);
        lra_merge_heads_backward(m->dmid, m->dwide, E, T, NH, hs);
        lra_zero(m->dqkvh, 3 * (size_t)BT * Q); /* the backends accumulate */
        float *q = a->qkvh, *k = q + (size_t)BT * Q, *v = k + (size_t)BT * Q;
        float *dq = m->dqkvh, *dk = dq + (size_t)BT * Q, *dv = dk + (size_t)BT * Q;
        lra_attn_args args = {m->mask, m->train ? c->attn_dropout : 0.0f, site(m, l, SITE_ATTN_PROBS),
                              c->precision};
        lra_attn_backward(&m->attn, shape, &args, dq, dk, dv, g->attn, a->ws, m->dmid, a->atto, q, k, v, p->attn);
        lra_split_heads_backward(m->dwide, dq, dk, dv, E, T, NH, hs);
        block_product_backward(m, m->dnorm, g->qkvw, g->qkvb, m->dwide, a->ln1, a->ln1_16, p->qkvw, BT, C, 3 * Q);
        lra_layernorm_backward(m->dresid, g->ln1w, g->ln1b, m->dnorm, xin, p->ln1w, a->ln1_mean, a->ln1_rstd, BT, C);
    }
    lra_dropout_apply(m->dresid, E, T, C, m->T, drop, lra_stream(seed, LAYER_EMBED, 0));
    lra_embed_backward(m->g.wte, m->g.cls, m->g.pos, m->dresid, m->tokens, E, m->L, C);
}

double lra_model_grad_norm(lra_model *m) {
    const size_t n = m->nparams;
#pragma omp parallel for schedule(static)
    for (size_t ch = 0; ch < m->norm_chunks; ch++) {
        size_t lo = ch * NORM_CHUNK, hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)m->grads[i] * m->grads[i];
        m->norm_partials[ch] = s;
    }
    double total = 0.0;
    for (size_t ch = 0; ch < m->norm_chunks; ch++) total += m->norm_partials[ch];
    return sqrt(total);
}

size_t lra_model_act_bytes(const lra_model *m) {
    return m->acts_floats * sizeof(float) + (size_t)m->cfg.batch * docs(&m->cfg) * m->T +
           bf16_scratch(&m->cfg, m->T) * sizeof(uint16_t);
}
size_t lra_model_attn_ws_bytes(const lra_model *m) { return m->ws_bytes_per_layer * m->cfg.layers + m->attn_scratch_bytes; }
