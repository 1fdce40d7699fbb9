/* registry.c - the list of attention backends. Adding a backend: write attention/<name>.c that
 * exports `const lra_attn_i lra_attn_<name>`, then add it to the two lists below. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "attention.h"

extern const lra_attn_i lra_attn_full;
extern const lra_attn_i lra_attn_moe;
extern const lra_attn_i lra_attn_agent;
extern const lra_attn_i lra_attn_mita;

static const lra_attn_i *const registry[] = {
    &lra_attn_full,
    &lra_attn_agent,
    &lra_attn_moe,
    &lra_attn_mita,
    NULL,
};

const lra_attn_i *const *lra_attn_registry(void) { return registry; }

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

size_t lra_attn_workspace_bytes(const lra_attn *h) { return h->iface->workspace_bytes(h->ctx, h->max); }

size_t lra_attn_param_count(const lra_attn *h) {
    return h->iface->param_count ? h->iface->param_count(h->ctx, h->max) : 0;
}

cJSON *lra_attn_diagnostics(const lra_attn *h, const void *ws, lra_attn_shape s, const lra_attn_args *a) {
    if (!h->iface->diagnostics) return NULL;
    return h->iface->diagnostics(h->ctx, ws, s, a);
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
