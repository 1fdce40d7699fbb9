/* layers.c - see layers.h. */
#include "layers.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "../../common/lra.h"
#include "gemm.h"

void lra_col_range(int C, int *c0, int *c1) {
    int id = omp_get_thread_num(), n = omp_get_num_threads();
    *c0 = (int)((long)C * id / n);
    *c1 = (int)((long)C * (id + 1) / n);
}

enum { FILL_CHUNK = 1 << 16 }; /* floats a thread clears or copies at a time */

void lra_zero(float *x, size_t n) {
    const long chunks = (long)((n + FILL_CHUNK - 1) / FILL_CHUNK);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (long ch = 0; ch < chunks; ch++) {
        const size_t lo = (size_t)ch * FILL_CHUNK, len = n - lo < FILL_CHUNK ? n - lo : FILL_CHUNK;
        memset(x + lo, 0, len * sizeof(float));
    }
}

void lra_copy(float *dst, const float *src, size_t n) {
    const long chunks = (long)((n + FILL_CHUNK - 1) / FILL_CHUNK);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (long ch = 0; ch < chunks; ch++) {
        const size_t lo = (size_t)ch * FILL_CHUNK, len = n - lo < FILL_CHUNK ? n - lo : FILL_CHUNK;
        memcpy(dst + lo, src + lo, len * sizeof(float));
    }
}

void lra_sinusoid_table(float *pe, int T, int C) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i += 2) {
            double w = exp(-(double)i * log(10000.0) / C);
            pe[(size_t)t * C + i] = (float)sin(t * w);
            if (i + 1 < C) pe[(size_t)t * C + i + 1] = (float)cos(t * w);
        }
}

void lra_embed_forward(float *out, const int32_t *tokens, const float *wte, const float *cls,
                       const float *pos, int B, int L, int C) {
    const int T = L + (cls != NULL);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *p = pos + (size_t)t * C;
            const float *e = (cls && t == 0) ? cls : wte + (size_t)tokens[(size_t)b * L + t - (cls != NULL)] * C;
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        }
}

void lra_embed_backward(float *dwte, float *dcls, float *dpos, const float *dout,
                        const int32_t *tokens, int B, int L, int C) {
    const int off = dcls != NULL, T = L + off;
#pragma omp parallel
    {
        int c0, c1;
        lra_col_range(C, &c0, &c1);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *g = dout + ((size_t)b * T + t) * C;
                float *d = (off && t == 0) ? dcls : dwte + (size_t)tokens[(size_t)b * L + t - off] * C;
                for (int c = c0; c < c1; c++) d[c] += g[c];
                if (dpos)
                    for (int c = c0; c < c1; c++) dpos[(size_t)t * C + c] += g[c];
            }
    }
}

/* The products run on fixed blocks (LRA_ROW_BLOCK rows of the activations, WGRAD_BLOCK output
 * features of a weight gradient), each one single-threaded lra_gemm. The blocks have the same
 * shapes whatever the thread count, so every output element is computed by the same kernel in the
 * same order: results never depend on the number of threads. The sizes were measured with oneDNN
 * at the repro shapes (64-128 wide, 64000 rows): 512-row blocks run at 1.2-1.9x OpenBLAS's
 * 64-row ones, and 32-feature weight-gradient blocks at 1.5-2.4x its 16-feature ones. */
enum { WGRAD_BLOCK = 32 }; /* LRA_ROW_BLOCK: layers.h */

size_t lra_matmul16_scratch(int N, int C, int OC) { return (size_t)N * OC + (size_t)OC * C; }
size_t lra_matmul_bf16_scratch(int N, int C, int OC) { return (size_t)N * C + lra_matmul16_scratch(N, C, OC); }

/* The products, each on fixed blocks: out = in w^T (+ bias), din = dout w, dw += dout^T in. The
 * operands are fp32 (in, w, dout), or bf16 (in16, w16, dout16) when in16 is given. */
void lra_matmul_rows_forward(float *out, const float *in, const uint16_t *in16, const float *w, const uint16_t *w16,
                             const float *bias, int rows, int C, int OC) {
    /* fp32: the bias as oneDNN's bias argument, the same bits as the rows of bias copied into out
     * and a sum post-op (4-step checkpoints at oneDNN's AMX, AVX512_CORE_BF16 and AVX2 levels) and
     * 20-35% faster at ListOps' shape. bf16's kernels give other bits with it, so bf16 keeps the
     * copies until its next numerics version. */
    if (in16) {
        if (bias)
            for (int n = 0; n < rows; n++) memcpy(out + (size_t)n * OC, bias, sizeof(float) * OC);
        lra_gemm_bf16(0, 1, rows, OC, C, in16, C, w16, C, bias ? 1.0f : 0.0f, out, OC);
    } else {
        lra_gemm_bias(0, 1, rows, OC, C, in, C, w, C, bias, 0.0f, out, OC);
    }
}

static void products_forward(float *out, const float *in, const uint16_t *in16, const float *w, const uint16_t *w16,
                             const float *bias, int N, int C, int OC) {
    const int nblocks = (N + LRA_ROW_BLOCK - 1) / LRA_ROW_BLOCK;
#pragma omp parallel for schedule(dynamic)
    for (int blk = 0; blk < nblocks; blk++) {
        const int n0 = blk * LRA_ROW_BLOCK, rows = N - n0 < LRA_ROW_BLOCK ? N - n0 : LRA_ROW_BLOCK;
        lra_matmul_rows_forward(out + (size_t)n0 * OC, in ? in + (size_t)n0 * C : NULL, in16 ? in16 + (size_t)n0 * C : NULL,
                                w, w16, bias, rows, C, OC);
    }
}

static void products_backward(float *din, float *dw, const float *dout, const uint16_t *dout16, const float *in,
                              const uint16_t *in16, const float *w, const uint16_t *w16, int N, int C, int OC) {
    if (din) {
        const int nblocks = (N + LRA_ROW_BLOCK - 1) / LRA_ROW_BLOCK;
#pragma omp parallel for schedule(dynamic)
        for (int blk = 0; blk < nblocks; blk++) {
            const int n0 = blk * LRA_ROW_BLOCK, rows = N - n0 < LRA_ROW_BLOCK ? N - n0 : LRA_ROW_BLOCK;
            if (in16) lra_gemm_bf16(0, 0, rows, C, OC, dout16 + (size_t)n0 * OC, OC, w16, C, 0.0f, din + (size_t)n0 * C, C);
            else lra_gemm(0, 0, rows, C, OC, dout + (size_t)n0 * OC, OC, w, C, 0.0f, din + (size_t)n0 * C, C);
        }
    }
    if (dw) {
        /* dw (OC,C) += dout^T in: blocks of output features, each summing over all N rows */
        const int nblocks = (OC + WGRAD_BLOCK - 1) / WGRAD_BLOCK;
#pragma omp parallel for schedule(dynamic)
        for (int blk = 0; blk < nblocks; blk++) {
            const int o0 = blk * WGRAD_BLOCK, rows = OC - o0 < WGRAD_BLOCK ? OC - o0 : WGRAD_BLOCK;
            if (in16) lra_gemm_bf16(1, 0, rows, C, N, dout16 + o0, OC, in16, C, 1.0f, dw + (size_t)o0 * C, C);
            else lra_gemm(1, 0, rows, C, N, dout + o0, OC, in, C, 1.0f, dw + (size_t)o0 * C, C);
        }
    }
}

/* dbias (OC) += the column sums of dout (N,OC). Each thread sums its own columns over the rows in
 * order (the bits never depend on the thread count), all of them in one pass over the rows: one pass
 * per 16 columns read a 64-byte piece of every row, a stride that the prefetchers stop following at
 * each page, and ran at a fifth of the memory bandwidth. (Rounding a bf16 backward's dout in the
 * same pass measured no faster than the separate row-parallel rounding.) */
static void bias_backward(float *dbias, const float *dout, int N, int OC) {
#pragma omp parallel
    {
        int lo, hi;
        lra_col_range(OC, &lo, &hi);
        for (int c0 = lo; c0 < hi; c0 += LRA_SUM_COLS) {
            const int nc = hi - c0 < LRA_SUM_COLS ? hi - c0 : LRA_SUM_COLS;
            float sum[LRA_SUM_COLS] = {0};
            for (int n = 0; n < N; n++) {
                const float *row = dout + (size_t)n * OC + c0;
                for (int c = 0; c < nc; c++) sum[c] += row[c];
            }
            for (int c = 0; c < nc; c++) dbias[c0 + c] += sum[c];
        }
    }
}

void lra_matmul16_forward(float *out, const uint16_t *in16, const float *w, const float *bias, int N, int C, int OC,
                          uint16_t *scratch) {
    uint16_t *w16 = scratch; /* (OC,C) */
    lra_bf16_round(w16, w, (size_t)OC * C);
    products_forward(out, NULL, in16, NULL, w16, bias, N, C, OC);
}

void lra_matmul16_backward(float *din, float *dw, float *dbias, const float *dout, const uint16_t *in16, const float *w,
                           int N, int C, int OC, uint16_t *scratch) {
    uint16_t *dout16 = scratch, *w16 = scratch + (size_t)N * OC; /* (N,OC), (OC,C) */
    if (din || dw) lra_bf16_round(dout16, dout, (size_t)N * OC);
    if (din) lra_bf16_round(w16, w, (size_t)OC * C);
    products_backward(din, dw, NULL, dout16, NULL, in16, NULL, w16, N, C, OC);
    if (dbias) bias_backward(dbias, dout, N, OC);
}

void lra_matmul_forward(float *out, const float *in, const float *w, const float *bias, int N,
                        int C, int OC, uint16_t *bf16) {
    if (!bf16) {
        products_forward(out, in, NULL, w, NULL, bias, N, C, OC);
        return;
    }
    lra_bf16_round(bf16, in, (size_t)N * C);
    lra_matmul16_forward(out, bf16, w, bias, N, C, OC, bf16 + (size_t)N * C);
}

void lra_matmul_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                         const float *w, int N, int C, int OC, uint16_t *bf16) {
    if (bf16) {
        if (dw) lra_bf16_round(bf16, in, (size_t)N * C);
        lra_matmul16_backward(din, dw, dbias, dout, bf16, w, N, C, OC, bf16 + (size_t)N * C);
        return;
    }
    products_backward(din, dw, dout, NULL, in, NULL, w, NULL, N, C, OC);
    if (dbias) bias_backward(dbias, dout, N, OC);
}

void lra_relu_forward(float *out, const float *in, long N) {
    for (long i = 0; i < N; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void lra_relu_backward(float *din, const float *in, const float *dout, long N) {
    for (long i = 0; i < N; i++) din[i] += in[i] > 0.0f ? dout[i] : 0.0f;
}

/* The dropout mask's index of element (b, t, 0): t strided by the model's maximum length */
static inline uint32_t mask_index(int b, int t, int C, int Tstride) {
    return ((uint32_t)b * (uint32_t)Tstride + (uint32_t)t) * (uint32_t)C;
}
/* One dropout site's mask: its stream, the keep threshold (0 at rate 0: every element kept) and the
 * scale of the kept elements, 1/(1-rate) */
typedef struct { uint32_t stream, threshold; float scale; } dropout_mask;
static dropout_mask mask_of(float rate, uint64_t stream) {
    return (dropout_mask){(uint32_t)stream, lra_dropout_threshold(rate), rate > 0.0f ? 1.0f / (1.0f - rate) : 1.0f};
}
/* r (n) *= the mask of elements first .. first+n-1: the one expression every dropout here applies */
static inline void mask_span(float *r, int n, uint32_t first, dropout_mask m) {
    for (int c = 0; c < n; c++) r[c] *= lra_keep(m.stream, first + (uint32_t)c, m.threshold) ? m.scale : 0.0f;
}

void lra_dropout_apply(float *x, int B, int T, int C, int Tstride, float rate, uint64_t stream) {
    if (rate <= 0.0f) return;
    const dropout_mask m = mask_of(rate, stream);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) mask_span(x + ((size_t)b * T + t) * C, C, mask_index(b, t, C, Tstride), m);
}

void lra_dropout_forward(float *out, const float *in, int B, int T, int C, int Tstride, float rate, uint64_t stream) {
    if (rate <= 0.0f) {
        lra_copy(out, in, (size_t)B * T * C);
        return;
    }
    const dropout_mask m = mask_of(rate, stream);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const size_t off = ((size_t)b * T + t) * C;
            memcpy(out + off, in + off, sizeof(float) * C);
            mask_span(out + off, C, mask_index(b, t, C, Tstride), m);
        }
}

/* One row's dropout(gelu(in)) rounded to bf16, through a block of GELU_SPAN floats on the stack
 * (whole GELU blocks, so the bits are the fp32 layer's) */
enum { GELU_SPAN = 16 * LRA_GELU_BLOCK };
static void gelu_dropout_row_bf16(uint16_t *out16, const float *in, int C, uint32_t first, float rate, dropout_mask m) {
    float y[GELU_SPAN];
    for (int c0 = 0; c0 < C; c0 += GELU_SPAN) {
        const int nc = C - c0 < GELU_SPAN ? C - c0 : GELU_SPAN;
        lra_gelu_row_forward(y, in + c0, nc);
        if (rate > 0.0f) mask_span(y, nc, first + (uint32_t)c0, m);
        for (int c = 0; c < nc; c++) out16[c0 + c] = lra_bf16_of(y[c]);
    }
}

/* One row's forward: out = mask(gelu(in)), or with out16 only its bf16 rounding */
static inline void gelu_dropout_row_forward(float *out, uint16_t *out16, const float *in, int C, uint32_t first,
                                            float rate, dropout_mask m) {
    if (out16) {
        gelu_dropout_row_bf16(out16, in, C, first, rate, m);
        return;
    }
    lra_gelu_row_forward(out, in, C);
    if (rate > 0.0f) mask_span(out, C, first, m);
}

/* GELU and its dropout in one pass over rows of whole GELU blocks. Forward (dout NULL): out =
 * mask(gelu(in)), or with out16 only its bf16 rounding. Backward: masks dout in place, then out =
 * gelu'(in) dout. */
static void gelu_dropout_rows(float *out, uint16_t *out16, const float *in, float *dout, int B, int T, int C,
                              int Tstride, float rate, uint64_t stream) {
    const dropout_mask m = mask_of(rate, stream);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const size_t off = ((size_t)b * T + t) * C;
            const uint32_t first = mask_index(b, t, C, Tstride);
            if (dout) {
                if (rate > 0.0f) mask_span(dout + off, C, first, m);
                lra_gelu_row_backward_set(out + off, in + off, dout + off, C);
            } else {
                gelu_dropout_row_forward(out ? out + off : NULL, out16 ? out16 + off : NULL, in + off, C, first, rate, m);
            }
        }
}

void lra_gelu_dropout_rows(float *out, uint16_t *out16, const float *in, int n0, int rows, int T, int C, int Tstride,
                           float rate, uint64_t stream) {
    LRA_ASSERT(C % LRA_GELU_BLOCK == 0);
    const dropout_mask m = mask_of(rate, stream);
    for (int i = 0; i < rows; i++) {
        const size_t off = (size_t)i * C;
        gelu_dropout_row_forward(out ? out + off : NULL, out16 ? out16 + off : NULL, in + off, C,
                                 mask_index((n0 + i) / T, (n0 + i) % T, C, Tstride), rate, m);
    }
}

void lra_gelu_dropout_forward(float *out, const float *in, int B, int T, int C, int Tstride, float rate,
                              uint64_t stream) {
    if (C % LRA_GELU_BLOCK == 0) {
        gelu_dropout_rows(out, NULL, in, NULL, B, T, C, Tstride, rate, stream);
        return;
    }
    lra_gelu_forward(out, in, (long)B * T * C);
    lra_dropout_apply(out, B, T, C, Tstride, rate, stream);
}

void lra_gelu_dropout_forward_bf16(uint16_t *out16, const float *in, int B, int T, int C, int Tstride, float rate,
                                   uint64_t stream) {
    LRA_ASSERT(C % LRA_GELU_BLOCK == 0);
    gelu_dropout_rows(NULL, out16, in, NULL, B, T, C, Tstride, rate, stream);
}

void lra_gelu_dropout_backward(float *din, const float *in, float *dout, int B, int T, int C, int Tstride,
                               float rate, uint64_t stream) {
    if (C % LRA_GELU_BLOCK == 0) {
        gelu_dropout_rows(din, NULL, in, dout, B, T, C, Tstride, rate, stream);
        return;
    }
    lra_dropout_apply(dout, B, T, C, Tstride, rate, stream);
    lra_zero(din, (size_t)B * T * C);
    lra_gelu_backward(din, in, dout, (long)B * T * C);
}

/* out (C) = x + dropout(y), the row whose mask starts at index base */
static inline void residual_row(float *out, const float *x, const float *y, int C, uint32_t base, dropout_mask m) {
    if (m.threshold)
        for (int c = 0; c < C; c++) out[c] = x[c] + (lra_keep(m.stream, base + (uint32_t)c, m.threshold) ? m.scale * y[c] : 0.0f);
    else
        for (int c = 0; c < C; c++) out[c] = x[c] + y[c];
}

void lra_residual_dropout_forward(float *out, const float *x, const float *y, int B, int T, int C,
                                  int Tstride, float rate, uint64_t stream) {
    const dropout_mask m = mask_of(rate, stream);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const size_t off = ((size_t)b * T + t) * C;
            residual_row(out + off, x + off, y + off, C, mask_index(b, t, C, Tstride), m);
        }
}

void lra_residual_dropout_rows(float *out, const float *x, const float *y, int n0, int rows, int T, int C, int Tstride,
                               float rate, uint64_t stream) {
    const dropout_mask m = mask_of(rate, stream);
    for (int i = 0; i < rows; i++) {
        const size_t off = (size_t)i * C;
        residual_row(out + off, x + off, y + off, C, mask_index((n0 + i) / T, (n0 + i) % T, C, Tstride), m);
    }
}

/* The head layouts' copies move rows of hs floats (128 bytes at hs = 32): loops, not a memcpy per
 * row, whose call cost more than the copy (the split's memcpys were 2% of moe's step). */
static inline void copy_row(float *dst, const float *src, int n) {
    for (int j = 0; j < n; j++) dst[j] = src[j];
}

/* the whole-tensor split and merges: an example's T rows at a time */
void lra_split_heads(float *q, float *k, float *v, const float *qkv, int B, int T, int NH, int hs) {
#pragma omp parallel for
    for (int b = 0; b < B; b++) lra_split_heads_rows(q, k, v, qkv + (size_t)b * T * 3 * NH * hs, b * T, T, T, NH, hs);
}

void lra_split_heads_rows(float *q, float *k, float *v, const float *qkv, int n0, int rows, int T, int NH, int hs) {
    const int Q = NH * hs;
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < rows; i++) {
            const int b = (n0 + i) / T, t = (n0 + i) % T;
            const float *src = qkv + (size_t)i * 3 * Q + (size_t)h * hs;
            size_t dst = (((size_t)b * NH + h) * T + t) * hs;
            copy_row(q + dst, src, hs);
            copy_row(k + dst, src + Q, hs);
            copy_row(v + dst, src + 2 * Q, hs);
        }
}

void lra_split_heads_backward(float *dqkv, const float *dq, const float *dk, const float *dv, int B,
                              int T, int NH, int hs) {
    const int Q = NH * hs;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                float *dst = dqkv + ((size_t)b * T + t) * 3 * Q + (size_t)h * hs;
                size_t src = (((size_t)b * NH + h) * T + t) * hs;
                copy_row(dst, dq + src, hs);
                copy_row(dst + Q, dk + src, hs);
                copy_row(dst + 2 * Q, dv + src, hs);
            }
}

void lra_merge_heads(float *out, const float *in, int B, int T, int NH, int hs) {
#pragma omp parallel for
    for (int b = 0; b < B; b++) lra_merge_heads_rows(out + (size_t)b * T * NH * hs, NULL, in, b * T, T, T, NH, hs);
}

void lra_merge_heads_bf16(uint16_t *out16, const float *in, int B, int T, int NH, int hs) {
#pragma omp parallel for
    for (int b = 0; b < B; b++) lra_merge_heads_rows(NULL, out16 + (size_t)b * T * NH * hs, in, b * T, T, T, NH, hs);
}

void lra_merge_heads_rows(float *out, uint16_t *out16, const float *in, int n0, int rows, int T, int NH, int hs) {
    const int Q = NH * hs;
    for (int i = 0; i < rows; i++)
        for (int h = 0; h < NH; h++) {
            const int b = (n0 + i) / T, t = (n0 + i) % T;
            const float *x = in + (((size_t)b * NH + h) * T + t) * hs;
            if (out16)
                for (int j = 0; j < hs; j++) out16[(size_t)i * Q + (size_t)h * hs + j] = lra_bf16_of(x[j]);
            else
                copy_row(out + (size_t)i * Q + (size_t)h * hs, x, hs);
        }
}

void lra_merge_heads_backward(float *din, const float *dout, int B, int T, int NH, int hs) {
    const int Q = NH * hs;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++)
                copy_row(din + (((size_t)b * NH + h) * T + t) * hs, dout + ((size_t)b * T + t) * Q + (size_t)h * hs, hs);
}

void lra_pool_forward(float *out, const float *in, const uint8_t *mask, int mode, int B, int T, int C, int len) {
    for (int b = 0; b < B; b++) {
        const float *x = in + (size_t)b * T * C;
        float *o = out + (size_t)b * C;
        if (mode == LRA_POOL_CLS) {
            memcpy(o, x, sizeof(float) * C);
            continue;
        }
        for (int c = 0; c < C; c++) o[c] = 0.0f;
        for (int t = 0; t < T; t++)
            if (mask[(size_t)b * T + t])
                for (int c = 0; c < C; c++) o[c] += x[(size_t)t * C + c];
        for (int c = 0; c < C; c++) o[c] /= (float)len;
    }
}

void lra_pool_backward(float *din, const float *dout, const uint8_t *mask, int mode, int B, int T, int C, int len) {
    for (int b = 0; b < B; b++) {
        float *d = din + (size_t)b * T * C;
        const float *g = dout + (size_t)b * C;
        if (mode == LRA_POOL_CLS) {
            for (int c = 0; c < C; c++) d[c] += g[c];
            continue;
        }
        for (int t = 0; t < T; t++)
            if (mask[(size_t)b * T + t])
                for (int c = 0; c < C; c++) d[(size_t)t * C + c] += g[c] / (float)len;
    }
}

void lra_crossentropy_forward(float *losses, float *probs, const float *logits,
                              const int32_t *labels, int B, int K) {
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        float mx = z[0];
        for (int i = 1; i < K; i++) mx = fmaxf(mx, z[i]);
        double sum = 0.0;
        for (int i = 0; i < K; i++) sum += exp((double)z[i] - mx);
        for (int i = 0; i < K; i++) p[i] = (float)(exp((double)z[i] - mx) / sum);
        losses[b] = (float)(log(sum) + mx - z[labels[b]]);
    }
}

void lra_crossentropy_backward(float *dlogits, const float *probs, const int32_t *labels, int B,
                               int K, float scale) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < K; i++)
            dlogits[(size_t)b * K + i] += scale * (probs[(size_t)b * K + i] - (i == labels[b] ? 1.0f : 0.0f));
}

void lra_pair_features_forward(float *feat, const float *pooled, int products, int B, int C) {
    const int F = products ? 4 * C : 2 * C;
    for (int b = 0; b < B; b++) { // feat (B,F), pooled (2B,C)
        const float *u = pooled + (size_t)2 * b * C, *v = u + C;
        float *f = feat + (size_t)b * F;
        for (int i = 0; i < C; i++) {
            f[i] = u[i];
            f[C + i] = v[i];
            if (products) {
                f[2 * C + i] = u[i] * v[i];
                f[3 * C + i] = u[i] - v[i];
            }
        }
    }
}

void lra_pair_features_backward(float *dpooled, const float *dfeat, const float *pooled, int products, int B, int C) {
    const int F = products ? 4 * C : 2 * C;
    for (int b = 0; b < B; b++) {
        const float *u = pooled + (size_t)2 * b * C, *v = u + C, *g = dfeat + (size_t)b * F;
        float *du = dpooled + (size_t)2 * b * C, *dv = du + C;
        for (int i = 0; i < C; i++) {
            du[i] += g[i];
            dv[i] += g[C + i];
            if (products) {
                du[i] += g[2 * C + i] * v[i] + g[3 * C + i];
                dv[i] += g[2 * C + i] * u[i] - g[3 * C + i];
            }
        }
    }
}
