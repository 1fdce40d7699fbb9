/* vec.h - small vector helpers for the attention kernels. */
#ifndef LRA_ATTN_VEC_H
#define LRA_ATTN_VEC_H

/* a += ax x; b += by y; c += cz z over n floats. The three outputs are rows of different
 * gradient buffers (dq, dk, dv) and never overlap the inputs: `restrict` says so, which is what
 * lets gcc vectorise the loop (without it the backward passes of moe and mita ran scalar). */
static inline void lra_axpy3(float *restrict a, const float *restrict x, float ax, float *restrict b,
                             const float *restrict y, float by, float *restrict c, const float *restrict z,
                             float cz, int n) {
    for (int d = 0; d < n; d++) {
        a[d] += ax * x[d];
        b[d] += by * y[d];
        c[d] += cz * z[d];
    }
}

#endif
