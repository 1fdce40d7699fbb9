/* lra.c - status strings, error formatting, random helpers, clocks, allocation. */
#define _POSIX_C_SOURCE 200809L
#include "lra.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

const char *lra_strerror(lra_status st) {
    switch (st) {
    case LRA_OK: return "no error";
    case LRA_ERR_USAGE: return "usage error";
    case LRA_ERR_IO: return "input/output error";
    case LRA_ERR_FORMAT: return "malformed data";
    case LRA_ERR_CONFIG: return "invalid configuration";
    case LRA_ERR_NET: return "network error";
    case LRA_ERR_NOMEM: return "out of memory";
    case LRA_ERR_CHECKSUM: return "checksum mismatch";
    case LRA_ERR_DIVERGED: return "training diverged";
    case LRA_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

lra_status lra_fail(char *err, lra_status st, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, LRA_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return st;
}

int64_t lra_rng_range(lra_rng *r, int64_t lo, int64_t hi) {
    LRA_ASSERT(hi >= lo);
    uint64_t span = (uint64_t)(hi - lo) + 1;
    uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    uint64_t x;
    do x = lra_rng_u64(r); while (x >= limit);
    return lo + (int64_t)(x % span);
}

double lra_rng_normal(lra_rng *r) {
    /* Box-Muller; one value per call keeps the stream simple and reproducible */
    double u1 = 1.0 - lra_rng_uniform(r); /* (0, 1] */
    double u2 = lra_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * LRA_PI * u2);
}

void lra_rng_shuffle(lra_rng *r, uint32_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)lra_rng_range(r, 0, (int64_t)i - 1);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

double lra_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void *lra_alloc_touched(size_t bytes) {
    if (bytes == 0) bytes = 64;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}
