/* backend.h - what a backend implements: its function table (after ggml's backend interface).
 * Only the backends (attention/<name>.c) and the registry include this; everyone else holds an lra_attn
 * handle and calls the lra_attn_* wrappers of attention.h. attention.h states the layout, sizes
 * and gradient contract every slot follows. */
#ifndef LRA_ATTN_BACKEND_H
#define LRA_ATTN_BACKEND_H

#include "attention.h"
#include "tile_bf16.h"

typedef struct lra_attn_i {
    const char *name;    /* registry key, e.g. "full" */
    const char *summary; /* one line for --help */

    /* Parses "key=value,key=value" (opts may be NULL or ""), validates it against the maximum
     * shape and creates the backend's context in *ctx. Unknown keys and values that cannot work
     * are LRA_ERR_USAGE with a message naming the option and the limit. `nthreads` is the most
     * OpenMP threads any later call will run with (per-thread scratch is sized from it). */
    lra_status (*configure)(void **ctx, const char *opts, lra_attn_shape max, int nthreads, char *err);
    void (*release)(void *ctx);
    /* Resolved options as a JSON object for reports; the caller owns the result. */
    cJSON *(*describe)(const void *ctx);
    /* Bytes one layer's forward leaves for its backward at shape s: the layer's own workspace. */
    size_t (*saved_bytes)(const void *ctx, lra_attn_shape s);
    /* Optional (NULL = none): bytes of scratch one call at shape s uses and leaves nothing in, so
     * that one region serves every layer in turn. */
    size_t (*scratch_bytes)(const void *ctx, lra_attn_shape s);
    /* Analytic flops of one forward and one backward call at shape s, all heads. */
    void (*flops)(const void *ctx, lra_attn_shape s, double *fwd, double *bwd);

    /* ws: the layer's saved_bytes; scratch: scratch_bytes, its contents undefined on entry */
    void (*forward)(const void *ctx, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws, void *scratch,
                    const float *q, const float *k, const float *v, const float *params);
    void (*backward)(const void *ctx, lra_attn_shape s, const lra_attn_args *a,
                     float *dq, float *dk, float *dv, float *dparams, void *ws, void *scratch, const float *dout,
                     const float *o, const float *q, const float *k, const float *v,
                     const float *params);

    /* Optional (NULL = the backend has no parameters): number of learned parameters per layer at
     * the maximum shape, and their initialisation from a seed. */
    size_t (*param_count)(const void *ctx, lra_attn_shape max);
    void (*init_params)(const void *ctx, lra_attn_shape max, float *params, uint64_t seed);
    /* Optional: diagnostics of the last forward at shape s with args a (routing statistics...);
     * the caller owns the result. */
    cJSON *(*diagnostics)(const void *ctx, const void *ws, lra_attn_shape s, const lra_attn_args *a);
    /* Optional (NULL = no such limit): into buf, the options under which this backend computes
     * exactly full attention at every shape up to max (moe with one block of every key, mita
     * with experts that hold every key...). The generic tests hold every backend that has one to
     * full attention's outputs and gradients there. */
    void (*exact_opts)(lra_attn_shape max, char *buf, size_t n);
    /* 1: under args.precision == LRA_BF16 the backend's products take bf16 operands with fp32
     * sums (attention/tile_bf16.h); the wrappers pass LRA_BF16 only where the CPU has bf16
     * hardware, so a backend sees LRA_FP32 otherwise. 0: fp32 in both precisions. */
    int bf16;
} lra_attn_i;

/* The kernel of a call's bf16 products (tile_bf16.h): the CPU's under LRA_BF16, NONE (fp32) under
 * LRA_FP32. It reads the environment: a backend asks once per call, or per head, not per tile. */
static inline lra_tile_isa lra_attn_bf16_kernel(const lra_attn_args *a) {
    return a->precision == LRA_BF16 ? lra_tile_bf16_isa() : LRA_TILE_NONE;
}

/* Registry order: NULL-terminated; lookup by name (NULL if unknown). */
const lra_attn_i *const *lra_attn_registry(void);
const lra_attn_i *lra_attn_find(const char *name);

#endif
