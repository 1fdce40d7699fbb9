/* attention.h - the attention backend interface (after ggml's backend interface).
 *
 * A backend is one file in attention/ that exports one `const lra_attn_i` (attention/backend.h),
 * listed in attention/registry.c. Nothing outside attention/ sees that table: callers hold an
 * `lra_attn` handle made by lra_attn_create() and call the lra_attn_* wrappers below, which
 * handle the optional slots.
 *
 * Layout. q, k, v and o are (B, NH, T, hs) row-major: the rows of one head of one batch element
 * are contiguous. mask is (B, T): 1 = real token, 0 = padding. Padded keys never receive weight;
 * padded query rows are computed like any other row.
 *
 * Sizes. A backend is configured for a maximum shape; every later call may use the same B, NH,
 * hs and any T <= max.T (batches are padded to their longest member, so T changes per batch), and
 * any B <= max.B (the last evaluation batch is smaller). Kernels never allocate and never fail:
 * all validation happens in configure, all memory is the caller's: a workspace of
 * lra_attn_workspace_bytes bytes per call, or, in a model, one of lra_attn_saved_bytes per layer
 * (what backward needs from forward) and one scratch region of lra_attn_scratch_bytes that every
 * layer uses in turn (lra_attn_share_scratch).
 *
 * Gradients: backward ACCUMULATES (+=) into dq, dk, dv and dparams, like every layer here. */
#ifndef LRA_ATTENTION_H
#define LRA_ATTENTION_H

#include <cjson/cJSON.h>

#include "../common/lra.h"

typedef struct { int B, NH, T, hs; } lra_attn_shape;

/* Per-call arguments besides the tensors. */
typedef struct {
    const uint8_t *mask; /* (B, T), never NULL */
    float dropout;       /* dropout rate on attention probabilities; 0 in evaluation */
    uint64_t seed;       /* dropout stream: the same value must reach forward and its backward */
    lra_precision precision; /* LRA_BF16: a backend that takes bf16 (lra_attn_precision) may run its
                              * products on bf16 operands with fp32 sums; the same value must reach
                              * forward and its backward */
} lra_attn_args;

struct lra_attn_i; /* a backend's function table: attention/backend.h, for backends and the registry */

/* The handle: its fields are the wrappers' (attention/registry.c). */
typedef struct {
    const struct lra_attn_i *iface;
    void *ctx;
    lra_attn_shape max;
    void *scratch; /* the caller's shared scratch, or NULL: the end of each call's workspace */
} lra_attn;

/* Registry: the backends in registry order (0 <= i < lra_attn_count()), their names and one-line
 * summaries; lra_attn_known says whether a name is registered. */
int lra_attn_count(void);
const char *lra_attn_name_at(int i);
const char *lra_attn_summary_at(int i);
int lra_attn_known(const char *name);
/* Backend i's options under which it is exactly full attention at shapes up to max, into buf;
 * returns 0 (buf "") for a backend without such a limit. */
int lra_attn_exact_opts_at(int i, lra_attn_shape max, char *buf, size_t n);
/* "full, agent, ..." into buf, for messages and --help. */
void lra_attn_names(char *buf, size_t n);

/* Creates a handle for backend `name`; LRA_ERR_USAGE names an unknown backend. On success the
 * handle owns its context: release it with lra_attn_free. */
lra_status lra_attn_create(lra_attn *h, const char *name, const char *opts, lra_attn_shape max,
                           int nthreads, char *err);
void lra_attn_free(lra_attn *h);
const char *lra_attn_name(const lra_attn *h);
/* Sizes at the handle's maximum shape: what one layer keeps from forward to backward, the scratch
 * of one call (0 for none), and a workspace for standalone calls holding both (saved first). */
size_t lra_attn_saved_bytes(const lra_attn *h);
size_t lra_attn_scratch_bytes(const lra_attn *h);
size_t lra_attn_workspace_bytes(const lra_attn *h);
/* Later calls take their scratch from `scratch` (lra_attn_scratch_bytes bytes, the caller's, used
 * by one call at a time) instead of the end of their workspace, which then needs only
 * lra_attn_saved_bytes. */
void lra_attn_share_scratch(lra_attn *h, void *scratch);
size_t lra_attn_param_count(const lra_attn *h);     /* 0 for a backend without parameters */
/* The precision the backend's products run at in a run of precision p: LRA_BF16 only for a
 * backend that takes bf16, on a CPU with bf16 hardware (attention/tile_bf16.h); else LRA_FP32. */
lra_precision lra_attn_precision(const lra_attn *h, lra_precision p);
/* Resolved options as a JSON object for reports; the caller owns it. */
cJSON *lra_attn_describe(const lra_attn *h);
/* Analytic flops of one forward and one backward call at shape s, all heads. */
void lra_attn_flops(const lra_attn *h, lra_attn_shape s, double *fwd, double *bwd);
/* The backend's parameters (lra_attn_param_count floats) from a seed; nothing without any. */
void lra_attn_init_params(const lra_attn *h, float *params, uint64_t seed);
/* o (B,NH,T,hs) = attention(q, k, v) at shape s; ws holds what backward needs. params may be NULL
 * for a backend without parameters. */
void lra_attn_forward(const lra_attn *h, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws,
                      const float *q, const float *k, const float *v, const float *params);
/* dq, dk, dv, dparams += the gradients through the last forward at s with the same ws and args. */
void lra_attn_backward(const lra_attn *h, lra_attn_shape s, const lra_attn_args *a, float *dq, float *dk,
                       float *dv, float *dparams, void *ws, const float *dout, const float *o, const float *q,
                       const float *k, const float *v, const float *params);
/* The backend's diagnostics of the last forward at shape s with workspace ws, or NULL when it has
 * none; the caller owns the result. */
cJSON *lra_attn_diagnostics(const lra_attn *h, const void *ws, lra_attn_shape s, const lra_attn_args *a);

/* ---- helpers shared by backends' option parsers ---- */

/* Splits "a=1,b=2" and calls fn(key, value, user) for each pair; fn returns LRA_OK or a status
 * with err set. A pair without '=' is an error naming it. */
typedef lra_status (*lra_opt_fn)(const char *key, const char *val, void *user, char *err);
lra_status lra_attn_parse_opts(const char *backend, const char *opts, lra_opt_fn fn, void *user,
                               char *err);
/* Parses a decimal integer in [lo, hi]; the message names backend, key and the limit. */
lra_status lra_attn_opt_int(const char *backend, const char *key, const char *val, long lo,
                            long hi, int *out, char *err);

#endif
