/* transpose16.h - a 16 x 16 block of floats transposed in AVX-512 registers, for the files that
 * move tiles (transpose.c, tile_bf16.c). Compiled for AVX-512F only: a caller compiled for more
 * (AVX512-BF16) inlines it; nothing calls it on a CPU without AVX-512F. Internal to attention/. */
#ifndef LRA_ATTN_TRANSPOSE16_H
#define LRA_ATTN_TRANSPOSE16_H

#include <immintrin.h>

#define LRA_AVX512_TARGET __attribute__((target("avx512f")))

/* r[0..16) = the transpose of the 16 x 16 block held in r[0..16) (row i in r[i]): unpacks and
 * shuffles within 128-bit lanes make 4 x 4 transposes, two lane shuffles move the lanes */
LRA_AVX512_TARGET static inline void lra_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* r[4i + k], lane l: rows 4i..4i+3 of column 4l + k */
        r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int k = 0; k < 4; k++) { /* column 4l + k gathers lane l of r[k], r[4 + k], r[8 + k], r[12 + k] */
        const __m512 s0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x44), s1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xEE);
        const __m512 s2 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x44), s3 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xEE);
        t[k] = _mm512_shuffle_f32x4(s0, s2, 0x88);
        t[4 + k] = _mm512_shuffle_f32x4(s0, s2, 0xDD);
        t[8 + k] = _mm512_shuffle_f32x4(s1, s3, 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(s1, s3, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* the first n (<= 16) lanes */
static inline __mmask16 lra_lanes16(int n) { return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* blk[c] = column c of the nr x nc block at X (row stride ldx; nr, nc <= 16), zero past it: the
 * block loaded and transposed, for the caller to store column by column */
LRA_AVX512_TARGET static inline void lra_block16_t(__m512 blk[16], const float *X, size_t ldx, int nr, int nc) {
    for (int i = 0; i < 16; i++)
        blk[i] = i < nr ? _mm512_maskz_loadu_ps(lra_lanes16(nc), X + (size_t)i * ldx) : _mm512_setzero_ps();
    lra_transpose16(blk);
}

#endif
