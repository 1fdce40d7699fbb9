/* lra.h - the small header every module of lra-bench shares: status codes, error buffers,
 * assertions and a deterministic counter-based random number generator.
 *
 * Error convention (cJSON/libcurl style): functions that can fail return lra_status and, when
 * given a non-NULL `char err[LRA_ERR_LEN]`, write a one-line message naming the culprit (file,
 * line, option, value) into it. Broken invariants (shape mismatches, programming errors) are not
 * errors but bugs: LRA_ASSERT aborts with file:line. */
#ifndef LRA_H
#define LRA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define LRA_ERR_LEN 512
#define LRA_PI 3.14159265358979323846

typedef enum {
    LRA_OK = 0,
    LRA_ERR_USAGE,    /* bad command line or option value: exit status 2 */
    LRA_ERR_IO,       /* a file could not be opened, read or written */
    LRA_ERR_FORMAT,   /* a file's content is not in the expected format */
    LRA_ERR_CONFIG,   /* a configuration that cannot work (sizes, limits) */
    LRA_ERR_NET,      /* a download failed */
    LRA_ERR_NOMEM,    /* an allocation failed */
    LRA_ERR_CHECKSUM, /* data does not match its known checksum */
    LRA_ERR_DIVERGED, /* a NaN or Inf appeared in training */
    LRA_ERR_INTERRUPTED, /* stopped by SIGINT or SIGTERM (a partial report was written) */
} lra_status;

/* A run's precision (--precision): fp32, or bf16 mixed precision: the products take bf16
 * operands (fp32 rounded to nearest even) and accumulate in fp32; everything else stays fp32. */
typedef enum { LRA_FP32 = 0, LRA_BF16 = 1 } lra_precision;

/* Static, never NULL. */
const char *lra_strerror(lra_status st);

/* Formats a message into err (when err is non-NULL) and returns st, so that a failure is one
 * line: `return lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno));` */
lra_status lra_fail(char *err, lra_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LRA_ASSERT(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: internal error: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* ---- random numbers ------------------------------------------------------------------------
 * Everything random in a run (initialisation, shuffling, dropout masks) derives from the run's
 * seed through these functions, so a run is reproducible and independent of the thread count:
 * dropout masks are a pure function of (stream, element index), never of thread order. */

/* splitmix64 finaliser: a bijective 64-bit mixer. */
static inline uint64_t lra_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* A stream id for (parent, a, b): used to derive per-step, per-layer, per-site seeds. */
static inline uint64_t lra_stream(uint64_t parent, uint64_t a, uint64_t b) {
    return lra_mix64(lra_mix64(parent ^ lra_mix64(a)) ^ lra_mix64(b + 0x632BE59BD9B4E019ull));
}

/* lowbias32 (Wellons): a cheap bijective 32-bit hash that vectorises; used for dropout. */
static inline uint32_t lra_hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* Dropout keep test for element i of a stream: keep when hash >= threshold, where
 * threshold = rate * 2^32 (see lra_dropout_threshold). */
static inline int lra_keep(uint32_t stream, uint32_t i, uint32_t threshold) {
    return lra_hash32(stream ^ lra_hash32(i + 0x9E3779B9U)) >= threshold;
}
static inline uint32_t lra_dropout_threshold(float rate) {
    double t = (double)rate * 4294967296.0;
    return t >= 4294967295.0 ? 4294967295U : (uint32_t)t;
}

/* A sequential generator (xoshiro-free: a splitmix64 counter) for initialisation and shuffles. */
typedef struct { uint64_t state; } lra_rng;
static inline void lra_rng_seed(lra_rng *r, uint64_t seed) { r->state = lra_mix64(seed); }
static inline uint64_t lra_rng_u64(lra_rng *r) {
    r->state += 0x9E3779B97F4A7C15ull;
    uint64_t x = r->state;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
/* uniform double in [0, 1) with 53 random bits */
static inline double lra_rng_uniform(lra_rng *r) { return (double)(lra_rng_u64(r) >> 11) * 0x1.0p-53; }
/* uniform integer in [lo, hi] (inclusive), unbiased by rejection */
int64_t lra_rng_range(lra_rng *r, int64_t lo, int64_t hi);
double lra_rng_normal(lra_rng *r);
/* Fisher-Yates shuffle of n indices */
void lra_rng_shuffle(lra_rng *r, uint32_t *idx, size_t n);

/* ---- stopping on SIGINT / SIGTERM --------------------------------------------------------
 * lra_stop_install() catches both: the first sets lra_stop_requested() (and says so on stderr),
 * a second exits at once with 128 + signal. Long work (training steps, data generation) polls
 * lra_stop_requested() and stops cleanly; lra_stop_restore() puts the previous handlers back.
 * The signals are taken by a thread of their own and blocked in every other thread (a handler
 * that interrupts oneDNN's JIT code corrupts the heap: stop.c). lra_stop_init() sets that up;
 * a program calls it first, before any thread starts, since only later threads inherit the block
 * (lra_stop_install() calls it too, for programs that did not). Signals sent while no run
 * listens do what they did before: end the process, or nothing if ignored. */
void lra_stop_init(void);
void lra_stop_install(void);
void lra_stop_restore(void);
int lra_stop_requested(void); /* 0, or the signal that asked */

/* ---- small utilities -------------------------------------------------------------------- */
double lra_now(void); /* monotonic seconds */
/* Allocates with 64-byte alignment and touches every page, so that later timing and training
 * steps never take page faults. Returns NULL on failure. Free with free(). */
void *lra_alloc_touched(size_t bytes);

#endif
