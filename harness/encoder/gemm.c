/* gemm.c - see gemm.h.
 *
 * bf16: the same primitives with bf16 operands and an fp32 destination (oneDNN accumulates in
 * fp32). oneDNN 2.6 has bf16 matmul kernels from AVX-512 up (emulated without AVX512-BF16); below
 * that, primitive creation says "unimplemented" and the operands are widened to fp32 here, whose
 * products of bf16 values are exact, so the result is the same mixed-precision product.
 *
 * fp32: every dimension and stride is a run-time value (DNNL_RUNTIME_DIM_VAL), so one primitive
 * per (transA, transB, beta, bias) serves every shape: batches padded to different lengths never
 * build a new kernel mid-run. bf16: one primitive per shape (dimensions, strides, transposes,
 * beta), kept in a small per-thread cache, least recently used out first. Why: oneDNN 2.6 runs
 * run-time shapes on its gemm:jit kernels and fixed ones on its brgemm kernels, which on AMX are
 * 1.2-3x faster at the encoder's 512-row blocks (docs/speed.md); in fp32 the two measured level,
 * and fp32 keeps its bits. A shape's bits are its kernel's: an evicted primitive built again
 * gives the same ones. oneDNN threads a call itself unless it runs inside a parallel region, so
 * the calling thread's OpenMP thread count is held at 1 while a primitive is built and run: a
 * serial call then cannot split its sum over K across threads either. */
#include "gemm.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

enum { MAX_THREADS = 256, N_PRIMS = 16, N_SHAPED = 48 };

/* a bf16 primitive built for one shape: {transA, transB, beta != 0, M, N, K, lda, ldb, ldc} */
typedef struct {
    int shape[9];
    dnnl_primitive_t prim;
    unsigned long last_use;
} shaped_prim;

typedef struct {
    dnnl_primitive_t prim[N_PRIMS];    /* fp32: [bias * 8 + transA * 4 + transB * 2 + (beta != 0)] */
    shaped_prim bf16[N_SHAPED];        /* bf16: by shape; prim NULL where free */
    unsigned long uses;
    int no_bf16;                       /* oneDNN said "unimplemented" for bf16 operands */
    dnnl_stream_t stream;
    float *wide; size_t wide_floats;   /* bf16 operands widened, where oneDNN has no bf16 kernel */
} thread_cache;

static dnnl_engine_t engine;
static thread_cache *caches[MAX_THREADS]; /* each slot built and used by its own thread only */

static void check(dnnl_status_t st, const char *what) {
    if (st == dnnl_success) return;
    fprintf(stderr, "lra-bench: internal error: oneDNN %s failed (status %d)\n", what, (int)st);
    abort();
}

static dnnl_engine_t get_engine(void) {
#pragma omp critical(lra_gemm_engine)
    if (!engine) check(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine_create");
    return engine;
}

/* a (rows, cols) matrix stored row-major with leading dimension ld, or its transpose */
static void matrix_desc(dnnl_memory_desc_t *md, int trans, long rows, long cols, long ld, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {trans ? 1 : ld, trans ? ld : 1};
    check(dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides), "memory_desc_init");
}

static dnnl_data_type_t operand_type(lra_precision p) { return p == LRA_BF16 ? dnnl_bf16 : dnnl_f32; }

/* NULL when oneDNN has no kernel for bf16 operands on this CPU. dims: {M, N, K, lda, ldb, ldc}, each
 * a value, or NULL for all of them run-time (DNNL_RUNTIME_DIM_VAL) */
static dnnl_primitive_t build(lra_precision prec, int transA, int transB, int accumulate, int with_bias,
                              const int *dims) {
    const long R = DNNL_RUNTIME_DIM_VAL;
    const long M = dims ? dims[0] : R, N = dims ? dims[1] : R, K = dims ? dims[2] : R;
    const long lda = dims ? dims[3] : R, ldb = dims ? dims[4] : R, ldc = dims ? dims[5] : R;
    dnnl_memory_desc_t a, b, c, bias;
    matrix_desc(&a, transA, M, K, lda, operand_type(prec));
    matrix_desc(&b, transB, K, N, ldb, operand_type(prec));
    matrix_desc(&c, 0, M, N, ldc, dnnl_f32);
    matrix_desc(&bias, 0, 1, N, N, dnnl_f32);
    dnnl_matmul_desc_t md;
    check(dnnl_matmul_desc_init(&md, &a, &b, with_bias ? &bias : NULL, &c), "matmul_desc_init");
    dnnl_primitive_attr_t attr;
    check(dnnl_primitive_attr_create(&attr), "attr_create");
    if (accumulate) {
        dnnl_post_ops_t po;
        check(dnnl_post_ops_create(&po), "post_ops_create");
        check(dnnl_post_ops_append_sum(po, 1.0f), "post_ops_append_sum");
        check(dnnl_primitive_attr_set_post_ops(attr, po), "set_post_ops");
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, &md, attr, get_engine(), NULL);
    if (st == dnnl_unimplemented && prec == LRA_BF16) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    check(st, "matmul primitive_desc_create");
    dnnl_primitive_t p;
    check(dnnl_primitive_create(&p, pd), "primitive_create");
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return p;
}

static thread_cache *my_cache(void) {
    const int id = omp_get_thread_num();
    if (id >= MAX_THREADS) {
        fprintf(stderr, "lra-bench: internal error: more than %d threads\n", MAX_THREADS);
        abort();
    }
    if (!caches[id]) {
        thread_cache *tc = calloc(1, sizeof *tc);
        if (!tc) {
            fprintf(stderr, "lra-bench: out of memory for the matrix-product cache\n");
            abort();
        }
        check(dnnl_stream_create(&tc->stream, get_engine(), dnnl_stream_default_flags), "stream_create");
        caches[id] = tc;
    }
    return caches[id];
}

/* this thread's bf16 primitive for the shape, built (evicting the least recently used) if missing;
 * NULL when oneDNN has no bf16 kernel here */
static dnnl_primitive_t shaped_bf16(thread_cache *tc, const int shape[9]) {
    if (tc->no_bf16) return NULL;
    shaped_prim *slot = &tc->bf16[0];
    for (int i = 0; i < N_SHAPED; i++) {
        shaped_prim *e = &tc->bf16[i];
        if (e->prim && memcmp(e->shape, shape, sizeof e->shape) == 0) {
            e->last_use = ++tc->uses;
            return e->prim;
        }
        if (!e->prim || (slot->prim && e->last_use < slot->last_use)) slot = e;
    }
    if (slot->prim) dnnl_primitive_destroy(slot->prim);
    slot->prim = build(LRA_BF16, shape[0], shape[1], shape[2], 0, shape + 3);
    if (!slot->prim) {
        tc->no_bf16 = 1;
        return NULL;
    }
    memcpy(slot->shape, shape, sizeof slot->shape);
    slot->last_use = ++tc->uses;
    return slot->prim;
}

/* one product on the calling thread; 0 when prec is bf16 and oneDNN has no kernel for it */
static int run_product(lra_precision prec, int transA, int transB, int M, int N, int K, const void *A, int lda,
                       const void *B, int ldb, const float *bias, float beta, float *C, int ldc) {
    thread_cache *tc = my_cache();
    dnnl_primitive_t p;
    if (prec == LRA_BF16) {
        const int shape[9] = {transA, transB, beta != 0.0f, M, N, K, lda, ldb, ldc};
        if (!(p = shaped_bf16(tc, shape))) return 0;
    } else {
        const int slot = (bias != NULL) * 8 + transA * 4 + transB * 2 + (beta != 0.0f);
        if (!tc->prim[slot]) tc->prim[slot] = build(prec, transA, transB, beta != 0.0f, bias != NULL, NULL);
        p = tc->prim[slot];
    }

    dnnl_memory_desc_t a, b, c;
    matrix_desc(&a, transA, M, K, lda, operand_type(prec));
    matrix_desc(&b, transB, K, N, ldb, operand_type(prec));
    matrix_desc(&c, 0, M, N, ldc, dnnl_f32);
    dnnl_memory_t ma, mb, mc, mbias = NULL;
    check(dnnl_memory_create(&ma, &a, engine, (void *)A), "memory_create");
    check(dnnl_memory_create(&mb, &b, engine, (void *)B), "memory_create");
    check(dnnl_memory_create(&mc, &c, engine, C), "memory_create");
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_BIAS, NULL}};
    if (bias) {
        dnnl_memory_desc_t bd;
        matrix_desc(&bd, 0, 1, N, N, dnnl_f32);
        check(dnnl_memory_create(&mbias, &bd, engine, (void *)bias), "memory_create");
        args[3].memory = mbias;
    }
    check(dnnl_primitive_execute(p, tc->stream, bias ? 4 : 3, args), "matmul execute");
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mc);
    if (mbias) dnnl_memory_destroy(mbias);
    return 1;
}

void lra_gemm_bias(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   const float *bias, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    const int saved_threads = omp_get_max_threads();
    omp_set_num_threads(1);
    run_product(LRA_FP32, transA, transB, M, N, K, A, lda, B, ldb, bias, beta, C, ldc);
    omp_set_num_threads(saved_threads);
}

void lra_gemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc) {
    lra_gemm_bias(transA, transB, M, N, K, A, lda, B, ldb, NULL, beta, C, ldc);
}

/* the (rows, cols) bf16 matrix at x, leading dimension ld, as fp32 into out (rows, cols) */
static void widen(float *out, const uint16_t *x, long rows, long cols, long ld) {
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < cols; c++) {
            const uint32_t u = (uint32_t)x[r * ld + c] << 16;
            memcpy(out + r * cols + c, &u, sizeof u);
        }
}

void lra_gemm_bf16(int transA, int transB, int M, int N, int K, const uint16_t *A, int lda,
                   const uint16_t *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    const int saved_threads = omp_get_max_threads();
    omp_set_num_threads(1);
    if (!run_product(LRA_BF16, transA, transB, M, N, K, A, lda, B, ldb, NULL, beta, C, ldc)) {
        /* stored as given: op(A) is (M,K), so A holds (transA ? K : M) rows of (transA ? M : K) */
        const long ar = transA ? K : M, ac = transA ? M : K, br = transB ? N : K, bc = transB ? K : N;
        thread_cache *tc = my_cache();
        const size_t need = (size_t)(ar * ac + br * bc);
        if (need > tc->wide_floats) {
            free(tc->wide);
            tc->wide = malloc(need * sizeof(float));
            if (!tc->wide) {
                fprintf(stderr, "lra-bench: out of memory widening bf16 operands (%zu bytes)\n", need * sizeof(float));
                abort();
            }
            tc->wide_floats = need;
        }
        widen(tc->wide, A, ar, ac, lda);
        widen(tc->wide + ar * ac, B, br, bc, ldb);
        run_product(LRA_FP32, transA, transB, M, N, K, tc->wide, (int)ac, tc->wide + ar * ac, (int)bc, NULL, beta, C,
                    ldc);
    }
    omp_set_num_threads(saved_threads);
}

int lra_bf16_native(void) {
    const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) == (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

const char *lra_precision_name(lra_precision p) { return p == LRA_BF16 ? "bf16" : "fp32"; }

const char *lra_gemm_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "other";
    }
}
