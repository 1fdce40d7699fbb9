/* gemm.h - the encoder's matrix products, through oneDNN's matmul primitive.
 *
 * Rules. Row-major fp32 in and out, BLAS-style strides (lda, ldb, ldc: elements between rows as
 * stored). op(X) is X, or X^T when its flag is set, so op(A) is (M,K) and op(B) is (K,N).
 * One call runs on the calling thread only, inside the caller's parallel region or serially:
 * callers cut the work into blocks whose shapes never depend on the thread count, so neither do
 * the results. oneDNN picks its kernels at run time for the CPU at hand (AVX2, AVX-512,
 * AVX512-BF16, AMX; ONEDNN_MAX_CPU_ISA caps it): results are the same bits on one machine and one
 * ISA, not across ISAs. Primitives are cached per thread and built on first use; nothing here
 * fails on valid arguments (an error from oneDNN is a bug: it aborts naming the call). */
#ifndef LRA_GEMM_H
#define LRA_GEMM_H

/* C (M,N) = op(A) op(B) + beta C, beta 0 or 1 (C is not read when 0) */
void lra_gemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc);

/* The instruction set oneDNN dispatches to on this CPU, e.g. "avx512_core_bf16" (static). */
const char *lra_gemm_isa(void);

#endif
