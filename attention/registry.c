/* registry.c - the table of attention backends (the list itself is backends.def) and the
 * lra_attn_* wrappers that look backends up in it. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "backend.h"
#include "tile_bf16.h"

#define BACKEND(name) extern const lra_attn_i lra_attn_##name;
#include "backends.def"
#undef BACKEND

static const lra_attn_i *const registry[] = {
#define BACKEND(name) &lra_attn_##name,
#include "backends.def"
#undef BACKEND
    NULL,
};

const lra_attn_i *const *lra_attn_registry(void) { return registry; }

int lra_attn_count(void) { return (int)(sizeof registry / sizeof *registry) - 1; }
const char *lra_attn_name_at(int i) { return i >= 0 && i < lra_attn_count() ? registry[i]->name : NULL; }
const char *lra_attn_summary_at(int i) { return i >= 0 && i < lra_attn_count() ? registry[i]->summary : NULL; }
int lra_attn_known(const char *name) { return lra_attn_find(name) != NULL; }

int lra_attn_exact_opts_at(int i, lra_attn_shape max, char *buf, size_t n) {
    buf[0] = '\0';
    if (i < 0 || i >= lra_attn_count() || !registry[i]->exact_opts) return 0;
    registry[i]->exact_opts(max, buf, n);
    return 1;
}

const lra_attn_i *lra_attn_find(const char *name) {
    for (const lra_attn_i *const *b = registry; *b; b++)
        if (strcmp((*b)->name, name) == 0) return *b;
    return NULL;
}

void lra_attn_names(char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (const lra_attn_i *const *b = registry; *b && used < n; b++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", b == registry ? "" : ", ", (*b)->name);
}

lra_status lra_attn_create(lra_attn *h, const char *name, const char *opts, lra_attn_shape max,
                           int nthreads, char *err) {
    memset(h, 0, sizeof *h);
    const lra_attn_i *b = lra_attn_find(name);
    if (!b) {
        char names[256];
        lra_attn_names(names, sizeof names);
        return lra_fail(err, LRA_ERR_USAGE, "unknown attention backend '%s' (known: %s)", name, names);
    }
    lra_status st = b->configure(&h->ctx, opts, max, nthreads < 1 ? 1 : nthreads, err);
    if (st != LRA_OK) return st;
    h->iface = b;
    h->max = max;
    return LRA_OK;
}

void lra_attn_free(lra_attn *h) {
    if (h->iface && h->ctx) h->iface->release(h->ctx);
    memset(h, 0, sizeof *h);
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }
size_t lra_attn_saved_bytes(const lra_attn *h) { return h->iface->saved_bytes(h->ctx, h->max); }
size_t lra_attn_scratch_bytes(const lra_attn *h) {
    return h->iface->scratch_bytes ? h->iface->scratch_bytes(h->ctx, h->max) : 0;
}
size_t lra_attn_workspace_bytes(const lra_attn *h) { return align64(lra_attn_saved_bytes(h)) + lra_attn_scratch_bytes(h); }
void lra_attn_share_scratch(lra_attn *h, void *scratch) { h->scratch = scratch; }

/* the scratch of a call with workspace ws */
static void *scratch_of(const lra_attn *h, void *ws) {
    return h->scratch ? h->scratch : (char *)ws + align64(lra_attn_saved_bytes(h));
}

size_t lra_attn_param_count(const lra_attn *h) {
    return h->iface->param_count ? h->iface->param_count(h->ctx, h->max) : 0;
}

/* ---- the wrappers: the only callers of a backend's table; optional slots handled here ---- */

const char *lra_attn_name(const lra_attn *h) { return h->iface->name; }

cJSON *lra_attn_describe(const lra_attn *h) { return h->iface->describe(h->ctx); }

void lra_attn_flops(const lra_attn *h, lra_attn_shape s, double *fwd, double *bwd) { h->iface->flops(h->ctx, s, fwd, bwd); }

void lra_attn_init_params(const lra_attn *h, float *params, uint64_t seed) {
    if (!h->iface->init_params || !lra_attn_param_count(h)) return;
    h->iface->init_params(h->ctx, h->max, params, seed);
}

lra_precision lra_attn_precision(const lra_attn *h, lra_precision p) {
    return p == LRA_BF16 && h->iface->bf16 && lra_tile_bf16_native() ? LRA_BF16 : LRA_FP32;
}

/* a's arguments with the precision the backend will run at */
static lra_attn_args effective(const lra_attn *h, const lra_attn_args *a) {
    lra_attn_args e = *a;
    e.precision = lra_attn_precision(h, a->precision);
    return e;
}

void lra_attn_forward(const lra_attn *h, lra_attn_shape s, const lra_attn_args *a, float *o, void *ws,
                      const float *q, const float *k, const float *v, const float *params) {
    const lra_attn_args e = effective(h, a);
    h->iface->forward(h->ctx, s, &e, o, ws, scratch_of(h, ws), q, k, v, params);
}

void lra_attn_backward(const lra_attn *h, lra_attn_shape s, const lra_attn_args *a, float *dq, float *dk,
                       float *dv, float *dparams, void *ws, const float *dout, const float *o, const float *q,
                       const float *k, const float *v, const float *params) {
    const lra_attn_args e = effective(h, a);
    h->iface->backward(h->ctx, s, &e, dq, dk, dv, dparams, ws, scratch_of(h, ws), dout, o, q, k, v, params);
}

cJSON *lra_attn_diagnostics(const lra_attn *h, const void *ws, lra_attn_shape s, const lra_attn_args *a) {
    if (!h->iface->diagnostics) return NULL;
    const lra_attn_args e = effective(h, a);
    return h->iface->diagnostics(h->ctx, ws, s, &e);
}

lra_status lra_attn_parse_opts(const char *backend, const char *opts, lra_opt_fn fn, void *user,
                               char *err) {
    if (!opts || !*opts) return LRA_OK;
    char buf[1024];
    if (strlen(opts) >= sizeof buf)
        return lra_fail(err, LRA_ERR_USAGE, "%s: option string too long", backend);
    strcpy(buf, opts);
    if (buf[0] == ',' || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,"))
        return lra_fail(err, LRA_ERR_USAGE, "%s: '%s' has an empty option (key=value pairs separated by single commas)",
                        backend, opts);
    char *save = NULL;
    for (char *pair = strtok_r(buf, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq || eq == pair)
            return lra_fail(err, LRA_ERR_USAGE, "%s: option '%s' is not key=value", backend, pair);
        *eq = '\0';
        lra_status st = fn(pair, eq + 1, user, err);
        if (st != LRA_OK) return st;
    }
    return LRA_OK;
}

lra_status lra_attn_opt_int(const char *backend, const char *key, const char *val, long lo,
                            long hi, int *out, char *err) {
    char *end = NULL;
    long x = strtol(val, &end, 10);
    if (!*val || *end)
        return lra_fail(err, LRA_ERR_USAGE, "%s: option %s='%s' is not an integer", backend, key, val);
    if (x < lo || x > hi)
        return lra_fail(err, LRA_ERR_USAGE, "%s: option %s=%ld is out of range [%ld, %ld]", backend,
                        key, x, lo, hi);
    *out = (int)x;
    return LRA_OK;
}
