/* exp16.h - exp of 16 floats in one AVX-512 register, for the bf16 paths' softmax.
 *
 * Why not expf: gcc vectorises expf through glibc's libmvec at the width it prefers, 8 lanes
 * (AVX2) on CPUs where it tunes for 256-bit vectors, and a lone expf (a row's rescale) is a scalar
 * call; in full's bf16 attention on an AMX Xeon those calls were a fifth of the time. The bf16
 * paths run only where the CPU has AVX512-BF16, hence AVX-512F, so these need no other dispatch.
 *
 * exp(x) = 2^n e^r, n = round(x log2 e), r = x - n ln 2 (ln 2 in two parts, Cody-Waite, so that
 * n ln2_hi is exact), e^r by its Taylor series to r^6 on |r| <= ln2 / 2 (truncation 1.2e-7
 * relative), 2^n by vscalefps. Within 3 ulp of exp on [-87, 88]; denormal results below; exactly
 * 0 below -104 (the masked logits, NEG_BIG, among them). NaN in gives NaN out. */
#ifndef LRA_ATTN_EXP16_H
#define LRA_ATTN_EXP16_H

#include <immintrin.h>
#include <stdint.h>

#include "transpose16.h"

#define LRA_AVX512BW_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

LRA_AVX512BW_TARGET static inline __m512 lra_exp16(__m512 x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-104.0f), _CMP_NLT_UQ); /* NaN stays */
    x = _mm512_min_ps(_mm512_set1_ps(88.7f), x); /* x second: a NaN passes through */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606820309417232e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(live, p, n);
}

/* the lanes of mk[0..n) (bytes; n <= 16) that are nonzero: the valid keys of a 16-key step */
LRA_AVX512BW_TARGET static inline __mmask16 lra_keys16(const uint8_t *mk, int n) {
    const __m512i b = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lra_lanes16(n), mk));
    return _mm512_test_epi32_mask(b, b);
}

/* exp of one float on the same code, for a row's rescale: the bits of the 16-lane form */
LRA_AVX512BW_TARGET static inline float lra_exp1(float x) { return _mm512_cvtss_f32(lra_exp16(_mm512_set1_ps(x))); }

/* max(init, row[0..n)) */
LRA_AVX512BW_TARGET static inline float lra_max16(const float *row, int n, float init) {
    __m512 m = _mm512_set1_ps(init);
    for (int j = 0; j < n; j += 16) {
        const __mmask16 k = lra_lanes16(n - j);
        m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, row + j));
    }
    return _mm512_reduce_max_ps(m);
}

/* out (n) = exp(scale in - shift), in place when out is in; returns out's sum, kept in 16 lanes
 * (lane l sums the entries j = l mod 16, in order) and then added across lanes in a fixed tree.
 * mask (n bytes, or NULL): entries whose byte is 0 become 0. */
LRA_AVX512BW_TARGET static inline float lra_exp_row16(float *out, const float *in, int n, float scale, float shift,
                                                      const uint8_t *mask) {
    const __m512 sc = _mm512_set1_ps(scale), sh = _mm512_set1_ps(shift);
    __m512 acc = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = lra_lanes16(n - j);
        if (mask) k &= lra_keys16(mask + j, n - j < 16 ? n - j : 16);
        const __m512 e = lra_exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, in + j), sc, sh));
        const __m512 ek = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(out + j, lra_lanes16(n - j), ek);
        acc = _mm512_add_ps(acc, ek);
    }
    return _mm512_reduce_add_ps(acc);
}

/* vec.h's two online-softmax steps on this exp, for the bf16 paths: the same contracts. */
LRA_AVX512BW_TARGET static inline void lra_online_softmax_tile16(float *row, int n, float *mx, float *sum, float *acc,
                                                                 int hs) {
    const float tmx = lra_max16(row, n, *mx), rsum = lra_exp_row16(row, row, n, 1.0f, tmx, NULL);
    if (tmx == *mx) {
        *sum += rsum;
        return;
    }
    const float rescale = lra_exp1(*mx - tmx);
    *sum = *sum * rescale + rsum;
    *mx = tmx;
    for (int d = 0; d < hs; d++) acc[d] *= rescale;
}
LRA_AVX512BW_TARGET static inline void lra_online_softmax_rise16(float *row, int n, float *mx, float *sum, float *acc,
                                                                 int hs) {
    const float mi = lra_max16(row, n, *mx);
    if (mi > *mx) {
        const float rescale = lra_exp1(*mx - mi);
        for (int d = 0; d < hs; d++) acc[d] *= rescale;
        *sum *= rescale;
        *mx = mi;
    }
    *sum += lra_exp_row16(row, row, n, 1.0f, mi, NULL);
}

#endif
