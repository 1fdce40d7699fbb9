/* full.c - softmax attention, the reference backend.
 *
 *   o = softmax(q k^T / sqrt(d) + M) v,   M[j] = 0 if mask[j] else -inf
 *
 * Tiled with an online (running max / running sum) softmax so that no (T x T) buffer exists:
 * forward keeps one (BQ x BK) tile of scores per thread and saves each row's log-sum-exp;
 * backward recomputes the tiles from it (FlashAttention-2's scheme). Attention dropout is applied
 * to the normalised probabilities with a mask that is a pure function of (seed, head, row, col),
 * so backward regenerates it instead of storing it.
 *
 * Both passes take the queries BQC at a time through every key block, and compute the scores
 * against a copy of the key block's K^T (backward: and V^T): Q K^T and dO V^T then run as
 * "A times B", which OpenBLAS (0.3.21, this CPU) gives to its small-matrix kernels without
 * packing, where "A times B^T" packs the same query tile again for every key block. At T = 16384,
 * head size 64, that packing was a third of the time; forward+backward went from 59% of the
 * measured peak to 76% (63% -> 75% at T = 1024), the two binaries run in one sitting.
 *
 * bf16 (args->precision, tile_bf16.h): the same tiles on lra_tile_bf16, the scale applied to the
 * scores after the product; the softmax, its statistics and every accumulator stay fp32, its
 * exponentials from exp16.h. P is rounded for P V, and in backward P and dS are rounded in pairs
 * of rows for the key block's dV^T += dO^T P and dK^T += Q^T dS (the chunk's Q and dO transposed
 * once), so that no tile is transposed; dV^T and dK^T join dV and dK once per (chunk, key block).
 * Without attention dropout, P and dS are rounded in the pass that makes them instead of being
 * stored in fp32 for a packer to read back; a key block's masks are made once per tile, and a row
 * whose max stays skips its rescale (exp(0) = 1 exactly). The same bits as packing afterwards;
 * the bf16 step 10% faster at ListOps' shape on an AMX Xeon.
 *
 * Parallelism: forward over (batch*head, query chunk); backward over batch*head, because dk
 * and dv of one head collect contributions from every query block and must be summed in a fixed
 * order for results not to depend on the thread count. Key blocks with no valid key are skipped. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "backend.h"
#include "exp16.h"
#include "tile_bf16.h"
#include "vec.h"

/* Tiles of BQ x BK scores; BQ x BK x hs stays within OpenBLAS's small-matrix limit (10^6) up to
 * head size 64. A chunk's BQC queries reuse each key block's transposed copy across its four
 * tiles, and its Q, dO and dQ (forward: accumulators), 3 x 128 KB at head size 64, stay in L2. */
enum { BQ = 128, BK = 64, BQC = 512 };
/* Masked logits. This file is built with -ffast-math (so that gcc vectorises expf through glibc's
 * vector math library), which assumes no infinities: a large finite value stands in for -inf,
 * and exp(NEG_BIG - m) is exactly 0 for any logit m in range. */
#define NEG_BIG (-1e30f)

typedef struct {
    int nthreads;
} full_ctx;

static lra_status full_opt(const char *key, const char *val, void *user, char *err) {
    (void)val; (void)user;
    return lra_fail(err, LRA_ERR_USAGE, "full: unknown option '%s' (full attention takes no options)", key);
}

static lra_status full_configure(void **ctx, const char *opts, lra_attn_shape max, int nthreads, char *err) {
    (void)max;
    lra_status st = lra_attn_parse_opts("full", opts, full_opt, NULL, err);
    if (st != LRA_OK) return st;
    full_ctx *c = calloc(1, sizeof *c);
    if (!c) return lra_fail(err, LRA_ERR_NOMEM, "full: out of memory");
    c->nthreads = nthreads;
    *ctx = c;
    return LRA_OK;
}

static void full_release(void *ctx) { free(ctx); }

static cJSON *full_describe(const void *ctx) { (void)ctx; return cJSON_CreateObject(); }

/* per-thread scratch, floats: fp32, forward's score tile (BQ x BK), K^T (hs x BK), and a chunk's
 * accumulators (BQC x hs) with m, l (BQC); or backward's S, dS and dropped P (BQ x BK each) with
 * a key block's K^T and V^T (hs x BK each). bf16 (tile_bf16.h) replaces the K^T and V^T copies
 * with bf16 operands: forward the chunk's Q as rows, a key block's K and V in pairs, and P;
 * backward the chunk's Q and dO as rows and transposed, a key block's K and V in pairs (and K in
 * pairs of rows), P and dS in pairs of rows and dS as rows, and the key block's dV^T and dK^T
 * (fp32), which it adds to dV and dK once per chunk: transposing the chunk's Q and dO once costs
 * less than transposing every tile's P and dS. hp: hs rounded up to even. */
typedef struct {
    float *S, *acc, *m, *l;          /* forward */
    float *dP, *Pd;                  /* backward */
    float *Kt, *Vt;                  /* fp32: K^T, V^T (hs, BK) */
    float *dVt, *dKt;                /* bf16: a key block's dV^T, dK^T (hs, BK) over one chunk */
    uint16_t *Qb, *dOb;              /* bf16: (BQC, hp) rows */
    uint16_t *QT, *dOT;              /* bf16: (hs, BQC) transposed */
    uint16_t *Kp, *Vp;               /* bf16: K^T, V^T as pairs of K's and V's columns (hp / 2, BK, 2) */
    uint16_t *Kr, *Vr;               /* bf16: K, V as pairs of rows (BK / 2, hs, 2) */
    uint16_t *Pb, *Pp, *dSp;         /* bf16: P (BQ, BK) rows, P and dS in pairs of rows (BQ / 2, BK, 2) */
} tiles;

/* the thread's tiles from base (NULL: sizes only), forward's or backward's; returns the floats they span */
static size_t tiles_at(tiles *t, float *base, int hs, int backward) {
    const size_t hp = (size_t)lra_bf16_even(hs), u16 = 2; /* bf16 elements per float */
    size_t off = 0;
    memset(t, 0, sizeof *t);
#define TAKE(ptr, n) (ptr = base ? (void *)(base + off) : NULL, off += (n))
#define TAKE16(ptr, n) TAKE(ptr, ((n) + u16 - 1) / u16)
    TAKE(t->S, BQ * BK);
    if (!backward) {
        TAKE(t->acc, BQC * (size_t)hs);
        TAKE(t->m, BQC);
        TAKE(t->l, BQC);
        TAKE(t->Kt, (size_t)hs * BK);
        TAKE16(t->Qb, BQC * hp);
        TAKE16(t->Kp, hp * BK);
        TAKE16(t->Vr, (size_t)BK * hs);
        TAKE16(t->Pb, BQ * BK);
    } else {
        TAKE(t->dP, BQ * BK);
        TAKE(t->Pd, BQ * BK);
        TAKE(t->Kt, (size_t)hs * BK);
        TAKE(t->Vt, (size_t)hs * BK);
        TAKE(t->dVt, (size_t)hs * BK);
        TAKE(t->dKt, (size_t)hs * BK);
        TAKE16(t->Qb, BQC * hp);
        TAKE16(t->dOb, BQC * hp);
        TAKE16(t->QT, (size_t)hs * BQC);
        TAKE16(t->dOT, (size_t)hs * BQC);
        TAKE16(t->Kp, hp * BK);
        TAKE16(t->Vp, hp * BK);
        TAKE16(t->Kr, (size_t)BK * hs);
        TAKE16(t->Pb, BQ * BK);
        TAKE16(t->Pp, BQ * BK);
        TAKE16(t->dSp, BQ * BK);
    }
#undef TAKE
#undef TAKE16
    return off;
}

static size_t scratch_floats(int hs) {
    tiles t;
    const size_t fwd = tiles_at(&t, NULL, hs, 0), bwd = tiles_at(&t, NULL, hs, 1);
    return fwd > bwd ? fwd : bwd;
}

/* saved: each row's log-sum-exp (forward) and D (backward's), 8 bytes per (batch, head, token) */
static size_t full_saved_bytes(const void *ctx, lra_attn_shape s) {
    (void)ctx;
    return sizeof(float) * 2 * (size_t)s.B * s.NH * s.T;
}

static size_t full_scratch_bytes(const void *ctx, lra_attn_shape s) {
    const full_ctx *c = ctx;
    return sizeof(float) * (size_t)c->nthreads * scratch_floats(s.hs);
}

static void full_flops(const void *ctx, lra_attn_shape s, double *fwd, double *bwd) {
    (void)ctx;
    double t2d = (double)s.B * s.NH * s.T * (double)s.T * s.hs;
    *fwd = 4.0 * t2d;  /* q k^T and p v */
    *bwd = 10.0 * t2d; /* recomputed q k^T, dO v^T, p^T dO, dS k, dS^T q */
}

static int block_has_key(const uint8_t *mask, int j0, int nk) {
    for (int j = 0; j < nk; j++)
        if (mask[j0 + j]) return 1;
    return 0;
}

/* bf16's key masks of one key block (nk <= BK), 16 keys to a mask: the same for every row */
LRA_AVX512BW_TARGET static void keys_bf16(__mmask16 *valid, const uint8_t *mk, int nk) {
    for (int j = 0; j < nk; j += 16) valid[j / 16] = lra_keys16(mk + j, nk - j);
}

/* bf16's logits: 16 of a row's scores times sc, masked keys NEG_BIG */
LRA_AVX512BW_TARGET static inline __m512 logits16(const float *row, __mmask16 k, __mmask16 valid, float sc) {
    return _mm512_mask_mul_ps(_mm512_set1_ps(NEG_BIG), valid, _mm512_maskz_loadu_ps(k, row), _mm512_set1_ps(sc));
}

/* bf16's online step for one row of S (nk <= BK; valid: keys_bf16's masks): vec.h's, masked and
 * scaled in the same pass, on exp16.h's exp (bf16 runs only where the CPU has AVX-512). The row's
 * sum adds 16 lanes, then the lanes, where fp32's order is gcc's. The unnormalised probabilities
 * go to pb, rounded for P V (and pb's odd column cleared), or to the row in fp32 where dropout
 * comes first (pb NULL). Where the row's max stays, the rescale is exp(0) = 1 exactly and is
 * skipped (most key blocks past the first few). */
LRA_BF16_TARGET static void online_row_bf16(float *row, uint16_t *pb, int nk, const __mmask16 *valid, float sc,
                                            float *mx, float *sum, float *acc, int hs) {
    __m512 vmax = _mm512_set1_ps(*mx);
    for (int j = 0; j < nk; j += 16) {
        const __mmask16 k = lra_lanes16(nk - j);
        vmax = _mm512_mask_max_ps(vmax, k, vmax, logits16(row + j, k, valid[j / 16], sc));
    }
    const float tmx = _mm512_reduce_max_ps(vmax);
    __m512 vsum = _mm512_setzero_ps();
    for (int j = 0; j < nk; j += 16) { /* the logits again: cheaper than a store and a load */
        const __mmask16 k = lra_lanes16(nk - j);
        const __m512 e = lra_exp16(_mm512_sub_ps(logits16(row + j, k, valid[j / 16], sc), _mm512_set1_ps(tmx)));
        if (pb) lra_bf16_store16(pb + j, k, e);
        else _mm512_mask_storeu_ps(row + j, k, e);
        vsum = _mm512_mask_add_ps(vsum, k, vsum, e);
    }
    if (pb && (nk & 1)) pb[nk] = 0;
    const float tsum = _mm512_reduce_add_ps(vsum);
    if (tmx == *mx) {
        *sum += tsum;
        return;
    }
    const float rescale = _mm512_cvtss_f32(lra_exp16(_mm512_set1_ps(*mx - tmx)));
    *sum = *sum * rescale + tsum;
    *mx = tmx;
    for (int d = 0; d < hs; d += 16) {
        const __mmask16 k = lra_lanes16(hs - d);
        _mm512_mask_storeu_ps(acc + d, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, acc + d), _mm512_set1_ps(rescale)));
    }
}

/* One (nq x nk) tile of scores S (row stride BK) into the running softmax of its query rows:
 * the scores times sc (1 where the product applied the scale), masked keys to NEG_BIG, then
 * vec.h's online step per row (max m, sum l, accumulator rows acc (nq x hs) rescaled), leaving
 * the tile's unnormalised probabilities (dropped, when dropout is on) for acc += P V: in S, or
 * (bf16) in Pb, rounded. */
static void online_softmax_tile(float *S, uint16_t *Pb, float *m, float *l, float *acc, int nq, int nk, int hs,
                                const uint8_t *mk, float sc, const lra_attn_args *a, int bh, int i0, int j0,
                                uint32_t thr, float keep_scale, lra_tile_isa b16) {
    __mmask16 valid[BK / 16];
    if (b16) keys_bf16(valid, mk, nk);
    for (int r = 0; r < nq; r++) {
        float *row = S + r * BK;
        if (b16) {
            online_row_bf16(row, thr ? NULL : Pb + r * BK, nk, valid, sc, &m[r], &l[r], acc + (size_t)r * hs, hs);
        } else {
            for (int j = 0; j < nk; j++) row[j] = mk[j] ? row[j] * sc : NEG_BIG;
            lra_online_softmax_tile(row, nk, &m[r], &l[r], acc + (size_t)r * hs, hs); /* 0 for masked keys */
        }
        if (thr) {
            const uint32_t rs = (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)(i0 + r));
            for (int j = 0; j < nk; j++)
                row[j] *= lra_keep(rs, (uint32_t)(j0 + j), thr) ? keep_scale : 0.0f;
        }
    }
    if (b16 && thr) lra_bf16_rows(Pb, BK, S, BK, nq, nk, 1.0f);
}

/* S (nq, nk; row stride BK) = A B over hs: fp32, Q K^T scaled (A: rows of q; B: the block's K^T
 * in t->Kt), or bf16, unscaled (A: the chunk's rows from Ab; B: the block in pairs, Bp) */
static void scores(float *S, int nq, int nk, int hs, float scale, const float *A, const float *Bt,
                   const uint16_t *Ab, const uint16_t *Bp, lra_tile_isa b16) {
    if (b16) lra_tile_bf16(b16, nq, nk, lra_bf16_even(hs) / 2, Ab, lra_bf16_even(hs), Bp, BK, S, BK, 0);
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, nk, hs, scale, A, hs, Bt, BK, 0.0f, S, BK);
}

/* Forward takes BQC query rows at a time through every key block, so that each key block's K^T
 * (bf16: K and V in pairs) is made once per chunk and the rows' Q, running sums and accumulators
 * stay in cache. */
static void full_forward(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws,
                         void *scratch, const float *q, const float *k, const float *v, const float *params) {
    (void)params;
    const full_ctx *c = ctx;
    const int T = s.T, hs = s.hs, hp = lra_bf16_even(hs), BH = s.B * s.NH, nchunks = (T + BQC - 1) / BQC;
    const lra_tile_isa b16 = lra_attn_bf16_kernel(a);
    const float scale = 1.0f / sqrtf((float)hs), sc = b16 ? scale : 1.0f;
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    float *lse = ws;                                    /* (B, NH, T) */
    float *scratch0 = scratch;
    const size_t per = scratch_floats(hs); /* each thread's floats */

#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        for (int ch = 0; ch < nchunks; ch++) {
            tiles t;
            tiles_at(&t, scratch0 + (size_t)omp_get_thread_num() * per, hs, 0);
            float *S = t.S, *acc = t.acc, *m = t.m, *l = t.l; /* acc (BQC, hs): the chunk's unnormalised outputs */
            const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
            const size_t head = (size_t)bh * T * hs;
            const int c0 = ch * BQC, nc = T - c0 < BQC ? T - c0 : BQC;
            for (int r = 0; r < nc; r++) { m[r] = NEG_BIG; l[r] = 0.0f; }
            memset(acc, 0, sizeof(float) * (size_t)nc * hs);
            if (b16) lra_bf16_rows(t.Qb, hp, q + head + (size_t)c0 * hs, hs, nc, hs, 1.0f);
            for (int j0 = 0; j0 < T; j0 += BK) {
                const int nk = T - j0 < BK ? T - j0 : BK;
                if (!block_has_key(mask, j0, nk)) continue;
                const float *K = k + head + (size_t)j0 * hs, *V = v + head + (size_t)j0 * hs;
                if (b16) {
                    lra_bf16_pairs_cols(t.Kp, BK, K, hs, nk, hs);
                    lra_bf16_pairs_rows(t.Vr, hs, V, hs, nk, hs, 1.0f);
                } else {
                    lra_transpose(t.Kt, BK, K, nk, hs);
                }
                for (int b0 = 0; b0 < nc; b0 += BQ) {
                    const int nq = nc - b0 < BQ ? nc - b0 : BQ;
                    float *accb = acc + (size_t)b0 * hs;
                    scores(S, nq, nk, hs, scale, q + head + (size_t)(c0 + b0) * hs, t.Kt, t.Qb + (size_t)b0 * hp, t.Kp,
                           b16);
                    online_softmax_tile(S, t.Pb, m + b0, l + b0, accb, nq, nk, hs, mask + j0, sc, a, bh, c0 + b0, j0,
                                        thr, keep_scale, b16);
                    if (b16) {
                        lra_tile_bf16(b16, nq, hs, lra_bf16_even(nk) / 2, t.Pb, BK, t.Vr, hs, accb, hs, 1);
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hs, nk, 1.0f, S, BK, V, hs, 1.0f,
                                    accb, hs);
                    }
                }
            }
            for (int r = 0; r < nc; r++) {
                float *out = o + head + (size_t)(c0 + r) * hs;
                const float *ar = acc + (size_t)r * hs;
                if (l[r] > 0.0f) {
                    const float inv = 1.0f / l[r];
                    for (int d = 0; d < hs; d++) out[d] = ar[d] * inv;
                    lse[(size_t)bh * T + c0 + r] = m[r] + logf(l[r]);
                } else { /* no valid key at all: output 0, and backward sees p = exp(s - big) = 0 */
                    for (int d = 0; d < hs; d++) out[d] = 0.0f;
                    lse[(size_t)bh * T + c0 + r] = -NEG_BIG;
                }
            }
        }
    }
}

/* bf16's p = exp(s sc - l) of 16 keys of one row, 0 for masked keys, on exp16.h's exp */
LRA_AVX512BW_TARGET static inline __m512 probs16(const float *srow, __mmask16 k, __mmask16 valid, float sc, float l) {
    return _mm512_maskz_mov_ps(valid, lra_exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, srow), _mm512_set1_ps(sc),
                                                                _mm512_set1_ps(l))));
}

/* bf16's p of one row (nk <= BK) in place, where dropout comes next (valid: keys_bf16's masks) */
LRA_AVX512BW_TARGET static void probs_row_bf16(float *srow, int nk, const __mmask16 *valid, float sc, float l) {
    for (int j = 0; j < nk; j += 16) {
        const __mmask16 k = lra_lanes16(nk - j);
        _mm512_mask_storeu_ps(srow + j, k, probs16(srow + j, k, valid[j / 16], sc, l));
    }
}

/* bf16: 16 keys of one backward row, p (probs16) and scale dS, dS = p (dP - D): dS first, then
 * its scale, as the fp32 loop and the packer do; the _round forms keep -ffast-math from
 * reassociating the two products. */
LRA_AVX512BW_TARGET static inline __attribute__((always_inline)) __m512
prob_ds16(__m512 *ds, const float *srow, const float *dprow, __mmask16 k, __mmask16 valid, float sc, float l,
          float D, __m512 scale) {
    const __m512 p = probs16(srow, k, valid, sc, l);
    const __m512 dpd = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, dprow), _mm512_set1_ps(D));
    *ds = _mm512_mul_round_ps(_mm512_mul_round_ps(p, dpd, _MM_FROUND_CUR_DIRECTION), scale, _MM_FROUND_CUR_DIRECTION);
    return p;
}

/* bf16 without dropout: rows r and r + 1 (has1: nq has it) of a backward tile to the products'
 * operands, rounded where they are made: p in pairs of rows (Pp), scale dS in pairs of rows (dSp)
 * and as rows (Pb). A missing second row pairs with zeros, as lra_bf16_pairs_rows pairs it.
 * valid: keys_bf16's masks. */
LRA_BF16_TARGET static void probs_and_ds_pair_bf16(const tiles *t, const float *S, const float *dP, int r, int has1,
                                                   int nk, const __mmask16 *valid, float sc, float scale,
                                                   const float *li, const float *D) {
    uint16_t *pp = t->Pp + (size_t)(r / 2) * BK * 2, *dsp = t->dSp + (size_t)(r / 2) * BK * 2;
    uint16_t *pb0 = t->Pb + (size_t)r * BK, *pb1 = pb0 + BK;
    const float *s0 = S + (size_t)r * BK, *dp0 = dP + (size_t)r * BK;
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int j = 0; j < nk; j += 16) {
        const __mmask16 k = lra_lanes16(nk - j);
        __m512 ds0, ds1 = _mm512_setzero_ps();
        const __m512 p0 = prob_ds16(&ds0, s0 + j, dp0 + j, k, valid[j / 16], sc, li[r], D[r], vscale);
        const __m512 p1 = has1 ? prob_ds16(&ds1, s0 + BK + j, dp0 + BK + j, k, valid[j / 16], sc, li[r + 1],
                                           D[r + 1], vscale)
                               : _mm512_setzero_ps();
        lra_bf16_store_pairs16(pp + 2 * j, k, p0, p1);
        lra_bf16_store_pairs16(dsp + 2 * j, k, ds0, ds1);
        lra_bf16_store16(pb0 + j, k, ds0);
        if (has1) lra_bf16_store16(pb1 + j, k, ds1);
    }
    if (nk & 1) {
        pb0[nk] = 0;
        if (has1) pb1[nk] = 0;
    }
}

/* One (nq x nk) backward tile, row stride BK: the logits S (times sc) become the probabilities P
 * (from each row's log-sum-exp li; 0 for masked keys), Pd the dropped ones when dropout is on,
 * and dP (dL/d the dropped P) becomes dS = P (dP z - D) for the rows' D = dO . o. bf16 leaves
 * them rounded for gradient_products: P (Pd) and scale dS in pairs of rows, scale dS as rows. */
static void probs_and_ds(const tiles *t, float *S, float *dP, float *Pd, int nq, int nk, const uint8_t *mk, float sc,
                         float scale, const float *li, const float *D, const lra_attn_args *a, int bh, int i0, int j0,
                         uint32_t thr, float keep_scale, lra_tile_isa b16) {
    __mmask16 valid[BK / 16];
    if (b16) keys_bf16(valid, mk, nk);
    if (b16 && !thr) {
        for (int r = 0; r < nq; r += 2) probs_and_ds_pair_bf16(t, S, dP, r, r + 1 < nq, nk, valid, sc, scale, li, D);
        return;
    }
    for (int r = 0; r < nq; r++) {
        float *srow = S + r * BK, *dprow = dP + r * BK;
        const float l = li[r], Di = D[r];
        if (b16) {
            probs_row_bf16(srow, nk, valid, sc, l);
        } else {
            for (int j = 0; j < nk; j++) {
                float p = expf(srow[j] * sc - l);
                srow[j] = mk[j] ? p : 0.0f;
            }
        }
        if (thr) {
            float *pdrow = Pd + r * BK;
            const uint32_t rs = (uint32_t)lra_stream(a->seed, (uint64_t)bh, (uint64_t)(i0 + r));
            for (int j = 0; j < nk; j++) {
                float z = lra_keep(rs, (uint32_t)(j0 + j), thr) ? keep_scale : 0.0f;
                pdrow[j] = srow[j] * z;
                dprow[j] *= z;
            }
        }
        /* dP now holds dL/dP for the undropped P; turn it into dS in place */
        for (int j = 0; j < nk; j++) dprow[j] = srow[j] * (dprow[j] - Di);
    }
    if (b16) {
        lra_bf16_pairs_rows(t->Pp, BK, thr ? Pd : S, BK, nq, nk, 1.0f);
        lra_bf16_pairs_rows(t->dSp, BK, dP, BK, nq, nk, scale);
        lra_bf16_rows(t->Pb, BK, dP, BK, nq, nk, scale);
    }
}

/* One backward tile's three gradient products: dV_j += P^T dO (dropped P when dropout is on),
 * dK_j += scale dS^T Q, dQ_i += scale dS K. fp32: sgemm from the rows of Q and dO. bf16: the
 * block's dV^T += dO^T P and dK^T += Q^T (scale dS) from the chunk's transposed dO and Q at column
 * b (P and dS rounded by probs_and_ds, in pairs of rows), and dQ from dS's rows against K in pairs
 * of rows. */
static void gradient_products(const tiles *t, int nq, int nk, int hs, float scale, int b, const float *P,
                              const float *dS, const float *Q, const float *dO, const float *K, float *dQ,
                              float *dK, float *dV, lra_tile_isa b16) {
    if (!b16) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, nq, 1.0f, P, BK, dO, hs, 1.0f, dV, hs);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, nq, scale, dS, BK, Q, hs, 1.0f, dK, hs);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hs, nk, scale, dS, BK, K, hs, 1.0f, dQ, hs);
        return;
    }
    lra_tile_bf16(b16, hs, nk, lra_bf16_even(nq) / 2, t->dOT + b, BQC, t->Pp, BK, t->dVt, BK, 1);
    lra_tile_bf16(b16, hs, nk, lra_bf16_even(nq) / 2, t->QT + b, BQC, t->dSp, BK, t->dKt, BK, 1);
    lra_tile_bf16(b16, nq, hs, lra_bf16_even(nk) / 2, t->Pb, BK, t->Kr, hs, dQ, hs, 1);
}

/* X (n, d) += Xt^T for Xt (d, BK): a key block's dV^T or dK^T into dV or dK. Where d <= BQ, Xt
 * is transposed into tmp (a free score tile, BQ x BK) in registers first (the strided reads one
 * element at a time were 40% of the backward's own time in bf16); each element gets the same one
 * addition either way. */
static void add_transposed(float *X, const float *Xt, int n, int d, float *tmp) {
    if (d <= BQ) {
        lra_transpose(tmp, d, Xt, d, BK); /* tmp (BK, d) */
        for (size_t i = 0; i < (size_t)n * d; i++) X[i] += tmp[i];
        return;
    }
    for (int r = 0; r < n; r++)
        for (int c = 0; c < d; c++) X[(size_t)r * d + c] += Xt[(size_t)c * BK + r];
}

/* Backward walks, for each chunk of BQC queries, key blocks outside and the chunk's query blocks
 * inside, so that each key block's K^T and V^T (bf16: K and V in pairs) are made once per chunk
 * and the two score products are "A times B" (Q K^T, dO V^T), which OpenBLAS takes into its
 * small-matrix kernels; "A times B^T" goes through its packing path, which packs the same query
 * block again for every key block (a third of the time at T = 16384). */
static void full_backward(const void *ctx, lra_attn_shape s, const lra_attn_args *a,
                          float *dq, float *dk, float *dv, float *dparams, void *ws, void *scratch, const float *dout,
                          const float *o, const float *q, const float *k, const float *v,
                          const float *params) {
    (void)params; (void)dparams;
    const full_ctx *c = ctx;
    const int T = s.T, hs = s.hs, hp = lra_bf16_even(hs), BH = s.B * s.NH;
    const lra_tile_isa b16 = lra_attn_bf16_kernel(a);
    const float scale = 1.0f / sqrtf((float)hs), sc = b16 ? scale : 1.0f;
    const uint32_t thr = lra_dropout_threshold(a->dropout);
    const float keep_scale = a->dropout > 0 ? 1.0f / (1.0f - a->dropout) : 1.0f;
    const float *lse = ws;
    float *Dall = (float *)ws + (size_t)BH * T; /* D_i = dO_i . o_i = sum_j P_ij dP_ij */
    float *scratch0 = scratch;
    const size_t per = scratch_floats(hs); /* each thread's floats */

#pragma omp parallel for schedule(dynamic) num_threads(c->nthreads)
    for (int bh = 0; bh < BH; bh++) {
        tiles t;
        tiles_at(&t, scratch0 + (size_t)omp_get_thread_num() * per, hs, 1);
        float *S = t.S, *dP = t.dP, *Pd = t.Pd; /* (BQ, BK) each: S then P, dP then dS, dropped P */
        const uint8_t *mask = a->mask + (size_t)(bh / s.NH) * T;
        const size_t head = (size_t)bh * T * hs;
        float *D = Dall + (size_t)bh * T;
        lra_row_dots(D, dout + head, o + head, T, hs);
        for (int c0 = 0; c0 < T; c0 += BQC) { /* a chunk of queries past every key block */
            const int nc = T - c0 < BQC ? T - c0 : BQC;
            if (b16) {
                lra_bf16_rows(t.Qb, hp, q + head + (size_t)c0 * hs, hs, nc, hs, 1.0f);
                lra_bf16_rows(t.dOb, hp, dout + head + (size_t)c0 * hs, hs, nc, hs, 1.0f);
                lra_bf16_rows_t(t.QT, BQC, q + head + (size_t)c0 * hs, hs, nc, hs, 1.0f);
                lra_bf16_rows_t(t.dOT, BQC, dout + head + (size_t)c0 * hs, hs, nc, hs, 1.0f);
            }
            for (int j0 = 0; j0 < T; j0 += BK) {
                const int nk = T - j0 < BK ? T - j0 : BK;
                if (!block_has_key(mask, j0, nk)) continue;
                const float *K = k + head + (size_t)j0 * hs, *V = v + head + (size_t)j0 * hs;
                float *dK = dk + head + (size_t)j0 * hs, *dV = dv + head + (size_t)j0 * hs;
                if (b16) {
                    lra_bf16_pairs_cols(t.Kp, BK, K, hs, nk, hs);
                    lra_bf16_pairs_cols(t.Vp, BK, V, hs, nk, hs);
                    lra_bf16_pairs_rows(t.Kr, hs, K, hs, nk, hs, 1.0f);
                    memset(t.dVt, 0, sizeof(float) * (size_t)hs * BK);
                    memset(t.dKt, 0, sizeof(float) * (size_t)hs * BK);
                } else {
                    lra_transpose(t.Kt, BK, K, nk, hs);
                    lra_transpose(t.Vt, BK, V, nk, hs);
                }
                const uint8_t *mk = mask + j0;
                for (int i0 = c0; i0 < c0 + nc; i0 += BQ) {
                    const int nq = c0 + nc - i0 < BQ ? c0 + nc - i0 : BQ, b = i0 - c0;
                    const float *Q = q + head + (size_t)i0 * hs, *dO = dout + head + (size_t)i0 * hs;
                    scores(S, nq, nk, hs, scale, Q, t.Kt, t.Qb + (size_t)b * hp, t.Kp, b16);
                    scores(dP, nq, nk, hs, 1.0f, dO, t.Vt, t.dOb + (size_t)b * hp, t.Vp, b16);
                    probs_and_ds(&t, S, dP, Pd, nq, nk, mk, sc, scale, lse + (size_t)bh * T + i0, D + i0, a, bh, i0,
                                 j0, thr, keep_scale, b16);
                    gradient_products(&t, nq, nk, hs, scale, b, thr ? Pd : S, dP, Q, dO, K,
                                      dq + head + (size_t)i0 * hs, dK, dV, b16);
                }
                if (b16) {
                    add_transposed(dV, t.dVt, nk, hs, S);
                    add_transposed(dK, t.dKt, nk, hs, S);
                }
            }
        }
    }
}

/* full attention is itself */
static void full_exact_opts(lra_attn_shape max, char *buf, size_t n) {
    (void)max;
    snprintf(buf, n, "%s", "");
}

const lra_attn_i lra_attn_full = {
    .name = "full",
    .summary = "softmax attention, tiled online softmax (the reference)",
    .configure = full_configure,
    .release = full_release,
    .describe = full_describe,
    .saved_bytes = full_saved_bytes,
    .scratch_bytes = full_scratch_bytes,
    .flops = full_flops,
    .forward = full_forward,
    .backward = full_backward,
    .exact_opts = full_exact_opts,
    .bf16 = 1,
};
