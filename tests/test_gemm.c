/* test_gemm.c - the encoder's matrix products (harness/encoder/gemm.c through oneDNN) against a float64
 * reference: every transpose and beta, strided operands, the matmul layer's blocking past one
 * block, the same bits from a serial call and from inside a two-thread region, and the same at
 * the lower instruction sets oneDNN dispatches to (each ISA test caps oneDNN before its first call:
 * Check runs every test in a fresh child, so each cap is the process's first oneDNN call).
 * bf16: the rounding against a reference written another way (nearest of the two neighbours,
 * ties to even), and the bf16 products against the float64 reference on the rounded operands
 * (their products are exact in fp32, so only fp32 summation separates them), at every ISA:
 * AVX512-BF16 (native), AVX-512 (oneDNN emulates) and AVX2 (gemm.c widens to fp32). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "../harness/encoder/gemm.h"
#include "../harness/encoder/layers.h"
#include "tests.h"

/* C (M,N) = op(A) op(B) + beta C in float64, op from the stored layouts as gemm.h says */
static void ref_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = beta != 0.0f ? C[(size_t)i * ldc + j] : 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
            }
            C[(size_t)i * ldc + j] = (float)s;
        }
}

/* every transpose and beta at odd sizes and strides wider than the rows */
static void check_all_forms(void) {
    enum { M = 37, N = 19, K = 70, PAD = 3 };
    const int lda_n = K + PAD, lda_t = M + PAD, ldb_n = N + PAD, ldb_t = K + PAD, ldc = N + PAD;
    float *A = malloc(sizeof(float) * K * (M + PAD) * 2), *B = malloc(sizeof(float) * K * (N + PAD) * 2);
    float C[M * ldc], R[M * ldc];
    t_fill(A, (size_t)K * (M + PAD) * 2, 1.0f, 1);
    t_fill(B, (size_t)K * (N + PAD) * 2, 1.0f, 2);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int beta = 0; beta < 2; beta++) {
                t_fill(C, M * ldc, 1.0f, 3);
                if (!beta) /* C is not read with beta 0: NaN there must not reach the result */
                    for (int i = 0; i < M * ldc; i++) C[i] = NAN;
                memcpy(R, C, sizeof C);
                const int lda = ta ? lda_t : lda_n, ldb = tb ? ldb_t : ldb_n;
                lra_gemm(ta, tb, M, N, K, A, lda, B, ldb, (float)beta, C, ldc);
                ref_gemm(ta, tb, M, N, K, A, lda, B, ldb, (float)beta, R, ldc);
                for (int i = 0; i < M; i++)
                    ck_assert_msg(t_close(C + i * ldc, R + i * ldc, N, 1e-5, 1e-5) <= 1.0,
                                  "gemm ta=%d tb=%d beta=%d row %d differs from the float64 reference (ISA %s)", ta,
                                  tb, beta, i, lra_gemm_isa());
            }
    free(A);
    free(B);
}

static float ref_bf16(float x);

/* the matmul layer on 1100 rows (two full 512-row blocks and a partial one) and 70 output
 * features (two full 32-feature weight-gradient blocks and a partial one), bias on; with bf16,
 * in bf16 against the float64 reference on the rounded operands (the bias gradient stays an fp32
 * sum of the unrounded dout) */
static void check_matmul_layer(int bf16) {
    enum { N = 1100, C = 24, OC = 70 };
    float *in = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * OC * C), *bias = malloc(sizeof(float) * OC);
    float *out = malloc(sizeof(float) * N * OC), *ref = malloc(sizeof(float) * N * OC);
    float *dout = malloc(sizeof(float) * N * OC), *din = malloc(sizeof(float) * N * C), *rdin = malloc(sizeof(float) * N * C);
    float *dw = malloc(sizeof(float) * OC * C), *rdw = malloc(sizeof(float) * OC * C);
    float *db = calloc(OC, sizeof(float));
    uint16_t *scratch = bf16 ? malloc(sizeof(uint16_t) * lra_matmul_bf16_scratch(N, C, OC)) : NULL;
    t_fill(in, N * C, 1.0f, 4); t_fill(w, OC * C, 1.0f, 5); t_fill(bias, OC, 1.0f, 6); t_fill(dout, N * OC, 1.0f, 7);
    t_fill(din, N * C, 1.0f, 8); t_fill(dw, OC * C, 1.0f, 9); /* backward writes din, accumulates onto dw */
    memset(rdin, 0, sizeof(float) * N * C);
    memcpy(rdw, dw, sizeof(float) * OC * C);
    lra_matmul_forward(out, in, w, bias, N, C, OC, scratch);
    lra_matmul_backward(din, dw, db, dout, in, w, N, C, OC, scratch);
    for (int o = 0; o < OC; o++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
        ck_assert_msg(fabs(db[o] - s) <= 1e-4 * (1 + fabs(s)), "matmul dbias[%d]: %g, reference %g", o, db[o], s);
    }
    if (bf16) {
        for (int i = 0; i < N * C; i++) in[i] = ref_bf16(in[i]);
        for (int i = 0; i < OC * C; i++) w[i] = ref_bf16(w[i]);
        for (int i = 0; i < N * OC; i++) dout[i] = ref_bf16(dout[i]);
    }
    for (int n = 0; n < N; n++) memcpy(ref + (size_t)n * OC, bias, sizeof(float) * OC);
    ref_gemm(0, 1, N, OC, C, in, C, w, C, 1.0f, ref, OC);
    ref_gemm(0, 0, N, C, OC, dout, OC, w, C, 1.0f, rdin, C);
    ref_gemm(1, 0, OC, C, N, dout, OC, in, C, 1.0f, rdw, C);
    const char *p = bf16 ? "bf16" : "fp32";
    ck_assert_msg(t_close(out, ref, (size_t)N * OC, 1e-5, 1e-5) <= 1.0, "%s matmul forward (ISA %s)", p, lra_gemm_isa());
    ck_assert_msg(t_close(din, rdin, (size_t)N * C, 1e-5, 1e-5) <= 1.0, "%s matmul din (ISA %s)", p, lra_gemm_isa());
    ck_assert_msg(t_close(dw, rdw, (size_t)OC * C, 1e-4, 1e-4) <= 1.0, "%s matmul dw (ISA %s)", p, lra_gemm_isa());
    free(in); free(w); free(bias); free(out); free(ref); free(dout); free(din); free(rdin); free(dw); free(rdw); free(db);
    free(scratch);
}

/* A weight gradient's long sum (K = 64000 rows, as at ListOps' repro shape) gives the same bits
 * called serially with two threads available and called by one thread of a two-thread region:
 * oneDNN would split a serial call's sum across the threads, which would make a result depend
 * on where it was called from and on the thread count. */
static void check_serial_equals_region(void) {
    enum { M = 32, N = 64, K = 64000 };
    float *A = malloc(sizeof(float) * K * M), *B = malloc(sizeof(float) * K * N);
    float serial[M * N] = {0}, inside[M * N] = {0};
    t_fill(A, (size_t)K * M, 1.0f, 10);
    t_fill(B, (size_t)K * N, 1.0f, 11);
    omp_set_num_threads(2);
    lra_gemm(1, 0, M, N, K, A, M, B, N, 1.0f, serial, N);
    ck_assert_int_eq(omp_get_max_threads(), 2); /* the caller's thread count is put back */
#pragma omp parallel num_threads(2)
    {
        if (omp_get_thread_num() == 1 || omp_get_num_threads() == 1)
            lra_gemm(1, 0, M, N, K, A, M, B, N, 1.0f, inside, N);
    }
    ck_assert_msg(memcmp(serial, inside, sizeof serial) == 0, "a serial lra_gemm differs from one inside a region");
    free(A);
    free(B);
}

/* x rounded to bf16 and back: the nearer of the two bf16 neighbours of x, the even one on a tie */
static float ref_bf16(float x) {
    if (isnan(x) || isinf(x)) return x;
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u; /* toward zero, and one step away from it */
    float flo, fhi;
    memcpy(&flo, &lo, sizeof flo);
    memcpy(&fhi, &hi, sizeof fhi);
    const double dhi = isinf(fhi) ? copysign(ldexp(1.0, 128), x) : fhi; /* past the largest: 2^128 */
    const double below = fabs((double)x - flo), above = fabs(dhi - x);
    if (below < above || (below == above && !(lo & 0x10000u))) return flo;
    return fhi;
}

static float widen1(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* lra_bf16_round on random values, exact ties both ways, the largest float, infinities, NaN,
 * subnormals and zeros, over more than one thread's chunk */
static void check_bf16_round(void) {
    enum { N = 40000 };
    float *x = malloc(sizeof(float) * N);
    uint16_t *h = malloc(sizeof(uint16_t) * N);
    t_fill(x, N, 3.0f, 12);
    const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x7f7fffffu, 0x7f7f7fffu, 0x7f800000u,
                                0xff800000u, 0x00000001u, 0x00008000u, 0x00018000u, 0x80000000u, 0x00000000u};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) memcpy(x + 100 * i, special + i, sizeof(float));
    x[5000] = NAN;
    lra_bf16_round(h, x, N);
    for (int i = 0; i < N; i++) {
        if (isnan(x[i])) {
            ck_assert_msg(isnan(widen1(h[i])), "NaN rounds to %04x", h[i]);
            continue;
        }
        const float want = ref_bf16(x[i]), got = widen1(h[i]);
        ck_assert_msg(memcmp(&want, &got, sizeof got) == 0, "bf16 of %a (element %d): %a, nearest-even %a", x[i], i, got, want);
    }
    free(x);
    free(h);
}

/* lra_gemm_bf16 in every transpose and beta against the float64 product of the rounded operands */
static void check_bf16_forms(void) {
    enum { M = 37, N = 19, K = 70, PAD = 3 };
    const size_t na = (size_t)K * (M + PAD) * 2, nb = (size_t)K * (N + PAD) * 2;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    uint16_t *A16 = malloc(sizeof(uint16_t) * na), *B16 = malloc(sizeof(uint16_t) * nb);
    float C[M * (N + PAD)], R[M * (N + PAD)];
    const int ldc = N + PAD;
    t_fill(A, na, 1.0f, 13);
    t_fill(B, nb, 1.0f, 14);
    lra_bf16_round(A16, A, na);
    lra_bf16_round(B16, B, nb);
    for (size_t i = 0; i < na; i++) A[i] = ref_bf16(A[i]);
    for (size_t i = 0; i < nb; i++) B[i] = ref_bf16(B[i]);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int beta = 0; beta < 2; beta++) {
                t_fill(C, M * ldc, 1.0f, 15);
                if (!beta)
                    for (int i = 0; i < M * ldc; i++) C[i] = NAN;
                memcpy(R, C, sizeof C);
                const int lda = ta ? M + PAD : K + PAD, ldb = tb ? K + PAD : N + PAD;
                lra_gemm_bf16(ta, tb, M, N, K, A16, lda, B16, ldb, (float)beta, C, ldc);
                ref_gemm(ta, tb, M, N, K, A, lda, B, ldb, (float)beta, R, ldc);
                for (int i = 0; i < M; i++)
                    ck_assert_msg(t_close(C + i * ldc, R + i * ldc, N, 1e-5, 1e-5) <= 1.0,
                                  "bf16 gemm ta=%d tb=%d beta=%d row %d differs from the float64 reference on the "
                                  "rounded operands (ISA %s)", ta, tb, beta, i, lra_gemm_isa());
            }
    free(A); free(B); free(A16); free(B16);
}

/* bf16 builds a primitive per shape (gemm.c's per-thread cache, 48 of them): one call after
 * another on one thread, shapes that differ only in K, in a stride, or in everything, more of them
 * than the cache holds and then the first again, each against the float64 product */
static void check_bf16_shapes(void) {
    enum { M = 21, N = 18, KMAX = 80, LD = KMAX + 9 };
    float *A = malloc(sizeof(float) * M * LD), *B = malloc(sizeof(float) * N * LD);
    uint16_t *A16 = malloc(sizeof(uint16_t) * M * LD), *B16 = malloc(sizeof(uint16_t) * N * LD);
    float C[M * (N + 4)], R[M * (N + 4)];
    t_fill(A, (size_t)M * LD, 1.0f, 23);
    t_fill(B, (size_t)N * LD, 1.0f, 24);
    lra_bf16_round(A16, A, (size_t)M * LD);
    lra_bf16_round(B16, B, (size_t)N * LD);
    for (int i = 0; i < M * LD; i++) A[i] = ref_bf16(A[i]);
    for (int i = 0; i < N * LD; i++) B[i] = ref_bf16(B[i]);
    int Ks[64], lds[64], ldcs[64], n = 0;
    const int few[][3] = {{70, LD, N}, {33, LD, N}, {70, KMAX, N}, {70, LD, N + 4}, {64, 64, N}, {70, LD, N}};
    for (int i = 0; i < 6; i++, n++) Ks[n] = few[i][0], lds[n] = few[i][1], ldcs[n] = few[i][2];
    for (int k = 2; n < 63; k++, n++) Ks[n] = k, lds[n] = LD, ldcs[n] = N; /* past the cache's 48 */
    Ks[n] = 70, lds[n] = LD, ldcs[n] = N + 4, n++;                         /* evicted, built again */
    for (int c = 0; c < n; c++) {
        const int K = Ks[c], ld = lds[c], ldc = ldcs[c];
        for (int i = 0; i < M * (N + 4); i++) C[i] = NAN;
        memcpy(R, C, sizeof C);
        lra_gemm_bf16(0, 1, M, N, K, A16, ld, B16, ld, 0.0f, C, ldc);
        ref_gemm(0, 1, M, N, K, A, ld, B, ld, 0.0f, R, ldc);
        for (int i = 0; i < M; i++)
            ck_assert_msg(t_close(C + i * ldc, R + i * ldc, N, 1e-5, 1e-5) <= 1.0,
                          "bf16 gemm call %d (K %d, lda = ldb = %d, ldc %d) row %d differs from the float64 reference "
                          "(ISA %s)", c, K, ld, ldc, i, lra_gemm_isa());
    }
    free(A); free(B); free(A16); free(B16);
}

static void check_bf16(void) {
    check_bf16_round();
    check_bf16_forms();
    check_bf16_shapes();
    check_matmul_layer(1);
}

static void cap_isa(dnnl_cpu_isa_t isa, const char *name) {
    ck_assert_msg(dnnl_set_max_cpu_isa(isa) == dnnl_success,
                  "could not cap oneDNN at %s: it had already run in this process (run the tests with CK_FORK=yes)", name);
    ck_assert_msg((dnnl_get_effective_cpu_isa() & ~isa) == 0, "oneDNN capped at %s dispatches to %s", name, lra_gemm_isa());
}

START_TEST(test_gemm_reference) {
    check_all_forms();
    check_matmul_layer(0);
}
END_TEST

START_TEST(test_gemm_serial_equals_region) { check_serial_equals_region(); }
END_TEST

START_TEST(test_gemm_bf16) {
    check_bf16();
    __builtin_cpu_init();
    ck_assert_int_eq(lra_bf16_native(), __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16"));
}
END_TEST

START_TEST(test_gemm_avx512_core_bf16) {
    cap_isa(dnnl_cpu_isa_avx512_core_bf16, "AVX512_CORE_BF16");
    ck_assert_int_eq(lra_bf16_native(), !!__builtin_cpu_supports("avx512bf16"));
    check_bf16();
}
END_TEST

START_TEST(test_gemm_avx512_core) {
    cap_isa(dnnl_cpu_isa_avx512_core, "AVX512_CORE");
    ck_assert_int_eq(lra_bf16_native(), 0);
    check_all_forms();
    check_matmul_layer(0);
    check_bf16();
}
END_TEST

START_TEST(test_gemm_avx2) {
    cap_isa(dnnl_cpu_isa_avx2, "AVX2");
    ck_assert_str_eq(lra_gemm_isa(), "avx2"); /* every x86-64 machine of ours has AVX2 */
    check_all_forms();
    check_matmul_layer(0);
    check_serial_equals_region();
    ck_assert_int_eq(lra_bf16_native(), 0);
    check_bf16();
}
END_TEST

Suite *gemm_suite(void) {
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("oneDNN products");
    tcase_add_test(tc, test_gemm_reference);
    tcase_add_test(tc, test_gemm_serial_equals_region);
    tcase_add_test(tc, test_gemm_bf16);
    tcase_add_test(tc, test_gemm_avx512_core_bf16);
    tcase_add_test(tc, test_gemm_avx512_core);
    tcase_add_test(tc, test_gemm_avx2);
    suite_add_tcase(s, tc);
    return s;
}
