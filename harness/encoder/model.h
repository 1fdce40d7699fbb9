/* model.h - the official LRA encoder (lra.md, "Model"): embedding, optional CLS token, positions,
 * L pre-LN blocks with a pluggable attention backend, final LayerNorm, pooling, Dense-ReLU-Dense
 * head, softmax cross-entropy.
 *
 * Memory: parameters, gradients, Adam moments, activations and attention workspaces live in a few
 * arenas allocated (and touched) once by lra_model_create for the maximum batch and length;
 * forward, backward and the optimizer step never allocate. */
#ifndef LRA_MODEL_H
#define LRA_MODEL_H

#include "../../attention/attention.h"
#include "gemm.h"
#include "layers.h"

typedef struct {
    int vocab, classes;
    int max_len;       /* input tokens per example (without CLS) */
    int batch;         /* maximum examples per call */
    int layers, heads, emb, qkv, mlp;
    int cls;           /* prepend a CLS token */
    int pool;          /* LRA_POOL_CLS or LRA_POOL_MEAN */
    int learned_pos;   /* learned N(0, 0.02) positions instead of sinusoids */
    int docs;          /* documents per example (0 reads as 1), like lra_task_i.docs: 2 is the dual
                          encoder (Retrieval), both documents through the one encoder, pooled to
                          u and v, the head reading [u, v] through two hidden layers (mlp, mlp/2) */
    int dual_head;     /* with docs 2: 0 [u, v] (the official code), 1 [u, v, u*v, u-v] (the paper) */
    int dual_one_hidden; /* with docs 2: the head is Dense(mlp)-ReLU-Dense like the single one (the
                            reproduction recipe), without the official mlp/2 middle layer */
    int attn_bias;     /* biases on the q, k, v and output projections (PyTorch's nn.Linear) */
    int init;          /* LRA_INIT_FLAX (lra_model_init's official scheme) or LRA_INIT_TORCH */
    int pool_len;      /* MEAN pooling divides the sum over real positions by this fixed length
                          (the official code's padded length), never by the batch's padding */
    float dropout, attn_dropout;
    const char *backend, *attn_opts;
    lra_precision precision; /* LRA_BF16: the encoder's products in bf16 mixed precision (gemm.h) */
    int nthreads;
} lra_model_cfg;

enum { LRA_INIT_FLAX = 0, LRA_INIT_TORCH = 1 };

/* One block's parameters. C = emb, Q = qkv (heads x head size), M = mlp. */
typedef struct {
    float *ln1w, *ln1b;        // (C) each
    float *qkvw;               // (3Q, C): the q, k and v projections, stacked
    float *qkvb;               // (3Q), NULL without attention biases
    float *projw;              // (C, Q): the attention output projection
    float *projb;              // (C), NULL without attention biases
    float *ln2w, *ln2b;        // (C) each
    float *fcw, *fcb;          // (M, C), (M)
    float *fcprojw, *fcprojb;  // (C, M), (C)
    float *attn;               // the backend's own parameters, if any
} lra_block_params;

/* Views into one flat array (parameters, or gradients with the same layout). V = vocab, T the
 * encoder's length, F the head's input width (C; the dual encoder: 2C or 4C), H its middle width,
 * K classes. */
typedef struct {
    float *wte;                // (V, C)
    float *cls;                // (C), NULL without a CLS token
    float *pos;                // (T, C), NULL with sinusoidal positions
    lra_block_params *blocks;  // (L)
    float *lnfw, *lnfb;        // (C) each
    float *h1w, *h1b;          // (M, F), (M)
    float *hmw, *hmb;          // (H, M), (H): the official dual head's middle layer, else NULL
    float *h2w, *h2b;          // (K, M or H), (K)
} lra_params;

/* One block's activations, kept for backward. N = rows x T, rows = B x docs. In bf16 runs the
 * four inputs of the block's products (ln1, atty, ln2, fchg) are kept rounded, in the *16 arrays,
 * and never in fp32: their fp32 pointers name lra_model.prod_in, GELU's scratch where it runs
 * alone (NULL elsewhere, and never read). */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd;   // (N, C), (N), (N)
    float *qkvh;                        // (3, rows, heads, T, hs): q, k, v split into heads
    float *atto;                        // (rows, heads, T, hs): the attention output
    float *atty;                        // (N, Q): atto with the heads merged
    float *res2;                        // (N, C): x + dropout(proj(atty))
    float *ln2, *ln2_mean, *ln2_rstd;   // (N, C), (N), (N)
    float *fch, *fchg;                  // (N, M): the MLP's hidden layer before and after GELU
    float *res3;                        // (N, C): res2 + dropout(fcproj(fchg)), the block's output
    uint16_t *ln1_16, *atty16, *ln2_16, *fchg16; // bf16 runs: (N, C), (N, Q), (N, C), (N, M); else NULL
    void *ws;                           // the attention backend's workspace
} lra_block_acts;

typedef struct {
    lra_model_cfg cfg;
    int T;            /* maximum sequence length inside the encoder: max_len + cls */
    int hs;           /* head size qkv / heads */
    lra_attn attn;    /* one backend context shared by every layer; one workspace per layer */
    size_t attn_params_per_layer;

    size_t nparams;
    float *params, *grads, *adam_m, *adam_v; /* the parameter arenas, nparams floats each */
    lra_params p, g;

    /* The activation arena, carved by one function (layout_acts) for the maximum batch and T. */
    float *acts;
    size_t acts_floats, ws_bytes_per_layer; /* ws: what one layer's attention keeps for backward */
    size_t attn_scratch_bytes;              /* the attention's scratch, shared by the layers */
    void *attn_arena;                       /* every layer's ws, then the scratch */
    float *sinusoid;                 // (T, C) constant table, NULL with learned positions
    float *enc;                      // (N, C): embeddings, the first block's input
    float *lnf, *lnf_mean, *lnf_rstd; // (N, C), (N), (N): the final LayerNorm
    float *pooled;                   // (rows, C)
    float *feat;                     // (B, F): the dual encoder's pair features
    float *h1, *h1_relu;             // (B, M): the head's hidden layer before and after ReLU
    float *hm, *hm_relu;             // (B, H): the dual head's middle layer
    float *logits, *probs, *losses;  // (B, K), (B, K), (B)
    lra_block_acts *blocks;          // (L)
    /* forward scratch */
    float *row_scratch;              // (threads, LRA_ROW_BLOCK, 3Q + C): forward's row blocks' q, k, v before
                                     // the head split and sub-layer outputs before their residual (model.c)
    float *prod_in;                  // (N, M): bf16 runs with M not whole GELU blocks: GELU's fp32 output; else NULL
    /* backward scratch; the d* of one tensor, reused where the names say */
    float *dresid;                   // (N, C): the gradient along the residual stream
    float *dwide;                    // (N, max(3Q, M)): d fchg, then d atty, then d qkv_rows
    float *dmid;                     // (N, max(M, Q, C)): d fch, then d atto
    float *dnorm;                    // (N, C): d of a LayerNorm's output (and of a dropped branch)
    float *dqkvh;                    // (3, rows, heads, T, hs): d q, d k, d v
    float *dpooled, *dfeat;          // (rows, C), (B, F)
    float *dh1, *dh1_relu, *dhm, *dhm_relu, *dlogits; // like their forward tensors
    uint8_t *mask;                   // (rows, T): the attention mask, CLS position included
    uint16_t *bf16;                  // bf16 runs: the rounded weights and output gradient of one product; else NULL
    double *norm_partials; size_t norm_chunks;

    /* the last forward call, which backward differentiates */
    const int32_t *tokens; const int32_t *labels;
    int B, L, Tcur, train;
    uint64_t step_seed;
} lra_model;

/* What lra_model_create would allocate, without allocating it (for out-of-memory estimates). */
typedef struct {
    size_t params;                    /* learned parameters */
    size_t activation_bytes, attention_workspace_bytes;
    size_t total_bytes;               /* parameters, gradients, Adam m and v, activations, workspaces */
} lra_model_sizes;
lra_status lra_model_plan(lra_model_sizes *z, const lra_model_cfg *cfg, char *err);

lra_status lra_model_create(lra_model *m, const lra_model_cfg *cfg, char *err);

/* The name of the parameter tensor holding flat index i ("blocks.1.fcw[37]", "wte[5]") into buf. */
void lra_model_param_name(const lra_model *m, size_t i, char *buf, size_t n);
/* The first flat index in x (nparams floats, parameter layout) that is NaN or Inf; nparams if none. */
size_t lra_model_first_nonfinite(const lra_model *m, const float *x);
void lra_model_free(lra_model *m);
/* LRA_INIT_FLAX, the official initialisations (lra.md): embeddings N(0,1), xavier-uniform dense
 * kernels in the blocks, biases N(0, 1e-6), LayerNorm 1/0, lecun-normal head kernels with zero
 * biases. LRA_INIT_TORCH, the reproduction recipe's (PyTorch defaults): token and position
 * embeddings N(0, 0.02), every nn.Linear's kernel and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
 * LayerNorm 1/0. Learned positions are N(0, 0.02) under both. */
void lra_model_init(lra_model *m, uint64_t seed);

/* Forward over B <= cfg.batch examples of L <= cfg.max_len tokens each: tokens and mask (B,L)
 * (mask 1 = real token; with docs 2, (2B,L): rows 2b and 2b+1 are example b's two documents),
 * labels (B). Fills m->probs and m->losses and returns the mean loss.
 * train = 1 applies dropout from the stream `step_seed` (derive it per step from the run seed);
 * backward may follow only a forward with the same buffers still alive. */
float lra_model_forward(lra_model *m, const int32_t *tokens, const uint8_t *mask,
                        const int32_t *labels, int B, int L, int train, uint64_t step_seed);
/* Gradients of the mean loss of the last forward, accumulated into m->grads. */
void lra_model_zero_grad(lra_model *m);
void lra_model_backward(lra_model *m);
/* The same for a shard of a larger batch (train.h): gradients of (sum of the losses) / batch_total. */
void lra_model_backward_shard(lra_model *m, int batch_total);

/* Global L2 norm of the gradients, summed in fixed chunks in a fixed order. */
double lra_model_grad_norm(lra_model *m);

size_t lra_model_act_bytes(const lra_model *m);
size_t lra_model_attn_ws_bytes(const lra_model *m);

#endif
