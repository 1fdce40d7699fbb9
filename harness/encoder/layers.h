/* layers.h - the encoder's layers as forward/backward pairs (llm.c style).
 *
 * Conventions: outputs first, then inputs, then sizes; shapes in comments; backward functions
 * ACCUMULATE (+=) into every gradient they write, so callers zero gradients once per step -
 * except where a line says "writes din": those set the gradient of their input (=). The model
 * reuses a few activation-gradient buffers from layer to layer, and clearing one before an
 * accumulating layer costs two more passes over it than one layer that writes it.
 * Weights are stored (out_features, in_features) row-major. Every function parallelises over
 * independent outputs (rows for activations, columns for weight gradients), so results never
 * depend on the number of threads. Nothing here allocates.
 *
 * Row blocks. The *_rows functions run one block of `rows` rows of a forward layer on the calling
 * thread, for the model's fused passes (model.c): rows n0 .. n0+rows-1 of the (B,T) rows, n = b T
 * + t. Their row-major operands point at the block's first row (a block may live in a scratch of
 * its own); n0 places it in the dropout masks and in the (B,NH,T,hs) head layout. Each computes
 * a row as its whole-tensor layer does: the same bits. */
#ifndef LRA_LAYERS_H
#define LRA_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* out (B,T,C) = [cls] ++ wte[tokens] + pos; T = L + has_cls. pos (T,C) is the sinusoidal table
 * or the learned position parameters. */
void lra_embed_forward(float *out, const int32_t *tokens, const float *wte, const float *cls,
                       const float *pos, int B, int L, int C);
/* dwte (V,C), dcls (C) (NULL without CLS), dpos (T,C) (NULL when positions are not learned) */
void lra_embed_backward(float *dwte, float *dcls, float *dpos, const float *dout,
                        const int32_t *tokens, int B, int L, int C);

/* x (n) = 0, and dst (n) = src: on every thread over fixed chunks (one thread's stores reach a
 * fraction of the memory bandwidth, and backward clears ~270 MB a layer at ListOps' shape) */
void lra_zero(float *x, size_t n);
void lra_copy(float *dst, const float *src, size_t n);

/* The columns [c0, c1) of C that the calling thread owns in an OpenMP parallel region (all of
 * them outside one). Weight gradients sum each column over the rows in order on one thread, at
 * most LRA_SUM_COLS columns in one pass over the rows (their sums held in an array on the stack). */
void lra_col_range(int C, int *c0, int *c1);
enum { LRA_SUM_COLS = 256 };

/* Sinusoidal table (T,C) as in the official code: pe[t,2i] = sin(t w_i), pe[t,2i+1] = cos(t w_i),
 * w_i = exp(-2i ln(10000)/C). */
void lra_sinusoid_table(float *pe, int T, int C);

/* out (N,C) = (in - mean) * rstd * w + b; mean, rstd (N) saved for backward; eps = 1e-6 (flax). */
void lra_layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *w,
                           const float *b, int N, int C);
/* The same with only the output rounded to bf16, out16 (N,C) = lra_bf16_of(out): a bf16 run keeps
 * its products' inputs so, and never writes their fp32 (the _bf16 layers below likewise). */
void lra_layernorm_forward_bf16(uint16_t *out16, float *mean, float *rstd, const float *in, const float *w,
                                const float *b, int N, int C);
/* A block of rows of either (out16 set: the bf16 one); see "Row blocks" above. */
void lra_layernorm_rows_forward(float *out, uint16_t *out16, float *mean, float *rstd, const float *in, const float *w,
                                const float *b, int rows, int C);
void lra_layernorm_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                            const float *w, const float *mean, const float *rstd, int N, int C);

/* out (N,OC) = in (N,C) @ w^T (OC,C) + bias (OC, may be NULL); through lra_gemm (oneDNN).
 * bf16: NULL runs the product in fp32; else it is lra_matmul_bf16_scratch(N, C, OC) uint16 that
 * the operands are rounded into (bf16 mixed precision, gemm.h). */
void lra_matmul_forward(float *out, const float *in, const float *w, const float *bias, int N,
                        int C, int OC, uint16_t *bf16);
/* A block of rows of lra_matmul_forward: out (rows,OC) = in (rows,C) w^T + bias, in fp32 (in, w)
 * or bf16 (in16, w16 set: w rounded to bf16). lra_matmul_forward runs its product on blocks of
 * LRA_ROW_BLOCK rows at multiples of it (the bits depend on a block's shape, never on the thread
 * count): a caller that passes the same blocks gets its bits. */
enum { LRA_ROW_BLOCK = 512 };
void lra_matmul_rows_forward(float *out, const float *in, const uint16_t *in16, const float *w, const uint16_t *w16,
                             const float *bias, int rows, int C, int OC);
/* writes din (N,C) = dout w; dw (OC,C) += dout^T in, dbias (OC) += column sums of dout. Each may
 * be NULL when not needed; bf16 as above (dbias always sums in fp32). */
void lra_matmul_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                         const float *w, int N, int C, int OC, uint16_t *bf16);
/* uint16 of bf16 scratch the two above need: N C + N OC + OC C */
size_t lra_matmul_bf16_scratch(int N, int C, int OC);
/* The same in bf16 with the input already rounded, in16 (N,C) (the model keeps its blocks'
 * product inputs so, for backward); scratch: lra_matmul16_scratch(N, C, OC) = N OC + OC C uint16. */
void lra_matmul16_forward(float *out, const uint16_t *in16, const float *w, const float *bias, int N, int C, int OC,
                          uint16_t *scratch);
void lra_matmul16_backward(float *din, float *dw, float *dbias, const float *dout, const uint16_t *in16, const float *w,
                           int N, int C, int OC, uint16_t *scratch);
size_t lra_matmul16_scratch(int N, int C, int OC);

/* GELU, exact: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (PyTorch's default; flax's is tanh's). */
void lra_gelu_forward(float *out, const float *in, long N);
void lra_gelu_backward(float *din, const float *in, const float *dout, long N);
/* The same on one thread, over one row of n = a multiple of LRA_GELU_BLOCK (the vector blocks):
 * out (n) = gelu(in); din (n) = gelu'(in) dout (writes). */
enum { LRA_GELU_BLOCK = 16 };
void lra_gelu_row_forward(float *out, const float *in, int n);
void lra_gelu_row_backward_set(float *din, const float *in, const float *dout, int n);
void lra_relu_forward(float *out, const float *in, long N);
void lra_relu_backward(float *din, const float *in, const float *dout, long N);

/* Inverted dropout in place: x *= keep ? 1/(1-rate) : 0. The mask is a pure function of
 * (stream, b, t, c) with t strided by Tstride (the model's maximum length), so it does not
 * change when a batch is padded less. Its Jacobian is the same diagonal, so backward applies
 * the same call to the gradient. rate 0 is a no-op. */
void lra_dropout_apply(float *x, int B, int T, int C, int Tstride, float rate, uint64_t stream);
/* out (B,T,C) = dropout(in), out of place (a copy at rate 0); backward is the same call. */
void lra_dropout_forward(float *out, const float *in, int B, int T, int C, int Tstride, float rate, uint64_t stream);
/* out (B,T,C) = dropout(gelu(in)); backward masks dout in place and writes din = gelu'(in) dout.
 * Rows a multiple of LRA_GELU_BLOCK wide run in one pass, others as the two layers one after the
 * other: the bits are those of the two layers either way. */
void lra_gelu_dropout_forward(float *out, const float *in, int B, int T, int C, int Tstride, float rate,
                              uint64_t stream);
void lra_gelu_dropout_forward_bf16(uint16_t *out16, const float *in, int B, int T, int C, int Tstride, float rate,
                                   uint64_t stream);
/* A block of rows of either forward (out16 set: the bf16 one); C a multiple of LRA_GELU_BLOCK. */
void lra_gelu_dropout_rows(float *out, uint16_t *out16, const float *in, int n0, int rows, int T, int C, int Tstride,
                           float rate, uint64_t stream);
void lra_gelu_dropout_backward(float *din, const float *in, float *dout, int B, int T, int C, int Tstride,
                               float rate, uint64_t stream);
/* out = x + dropout(y) (B,T,C): the residual connection after a dropped sub-layer. */
void lra_residual_dropout_forward(float *out, const float *x, const float *y, int B, int T, int C,
                                  int Tstride, float rate, uint64_t stream);
void lra_residual_dropout_rows(float *out, const float *x, const float *y, int n0, int rows, int T, int C, int Tstride,
                               float rate, uint64_t stream); /* a block of rows */

/* (B,T,NH*hs) <-> (B,NH,T,hs), for q, k, v given as the three parts of a (B,T,3*NH*hs) tensor */
void lra_split_heads(float *q, float *k, float *v, const float *qkv, int B, int T, int NH, int hs);
/* a block of rows of the split (qkv at the block's first row) */
void lra_split_heads_rows(float *q, float *k, float *v, const float *qkv, int n0, int rows, int T, int NH, int hs);
/* writes dqkv (B,T,3*NH*hs) = [dq dk dv] */
void lra_split_heads_backward(float *dqkv, const float *dq, const float *dk, const float *dv, int B,
                              int T, int NH, int hs);
/* out (B,T,NH*hs) = in (B,NH,T,hs) transposed; backward writes din, the inverse transpose */
void lra_merge_heads(float *out, const float *in, int B, int T, int NH, int hs);
void lra_merge_heads_bf16(uint16_t *out16, const float *in, int B, int T, int NH, int hs);
/* a block of rows of either merge (out16 set: the bf16 one; out or out16 at the block's first row) */
void lra_merge_heads_rows(float *out, uint16_t *out16, const float *in, int n0, int rows, int T, int NH, int hs);
void lra_merge_heads_backward(float *din, const float *dout, int B, int T, int NH, int hs);

enum { LRA_POOL_CLS = 0, LRA_POOL_MEAN = 1 };

/* The dual encoder's pair features: u = pooled[2b], v = pooled[2b+1] (each C) ->
 * feat[b] = [u, v] (2C), or with products = 1 [u, v, u*v, u-v] (4C). */
void lra_pair_features_forward(float *feat, const float *pooled, int products, int B, int C);
void lra_pair_features_backward(float *dpooled, const float *dfeat, const float *pooled, int products, int B, int C);
/* out (B,C): position 0 (CLS), or MEAN: sum_t mask[b,t] in[b,t,:] / len, the real positions over
 * a fixed length (the official code zeroes padded rows and averages over its fixed padded length,
 * so the result never depends on how far a batch is padded). mask (B,T), 1 = real. */
void lra_pool_forward(float *out, const float *in, const uint8_t *mask, int mode, int B, int T, int C, int len);
void lra_pool_backward(float *din, const float *dout, const uint8_t *mask, int mode, int B, int T, int C, int len);

/* Softmax cross-entropy: probs (B,K), losses (B) from logits (B,K) and labels (B). */
void lra_crossentropy_forward(float *losses, float *probs, const float *logits,
                              const int32_t *labels, int B, int K);
/* dlogits += (probs - onehot(label)) * scale   (scale = 1/B for the batch mean) */
void lra_crossentropy_backward(float *dlogits, const float *probs, const int32_t *labels, int B,
                               int K, float scale);

#endif
