/* sysinfo.h - what a report says about the machine and the build. */
#ifndef LRA_SYSINFO_H
#define LRA_SYSINFO_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "../../common/lra.h"

/* The peak resident set since the last lra_peak_rss_reset (Linux's VmHWM), else of the whole
 * process (getrusage's ru_maxrss). */
size_t lra_peak_rss_bytes(void);
/* Starts a new window for lra_peak_rss_bytes: the kernel's high-water mark drops to the current
 * resident set (writing 5 to /proc/self/clear_refs, Linux 4.0 on). Returns 0 where it cannot, and
 * the peak then stays the process's so far. */
int lra_peak_rss_reset(void);
/* {"cpu", "cores", "threads", "compiler", "cflags", "openblas_config", "openblas_core",
 *  "onednn_isa", "attention_bf16_kernels", "attention_bf16_isa", "OPENBLAS_CORETYPE"}; caller owns. */
cJSON *lra_machine_json(int threads);
const char *lra_git_commit(void);
/* The numerics version, one per precision: raised by every change that moves the bits of a training
 * run in that precision (a kernel's summation order, a vectorised function, a tile size); a change
 * that moves only bf16's bits leaves fp32's version, so that fp32 runs, the long studies among
 * them, go on under faster binaries of the same bits. Checkpoints and reports record the run's
 * version, and `resume` continues a run only under the numerics it was computed with (else it
 * would not be the same run), unless told --numerics-change=on. Checkpoints written before it
 * existed are 1. Versions 1-8 are both precisions'; from 9 on, bf16's only.
 *   1  up to 550e5e6
 *   2  tiled agent, moe and mita, vector GELU, full attention's 128-row query tiles
 *   3  moe past 4096 queries and mita past 2048 in chunks, mita's 32-row tiles past T = 4096
 *      (mita on Retrieval, both on Path-X; every other task's bits are those of 2)
 *   4  full attention's score products as "A times B" on K^T blocks, in 512-query chunks
 *   5  moe's gates, logits and dP as "A times B" on transposed block means, keys and values
 *   6  mita's products against keys, values, landmarks and Vbar likewise
 *   7  agent's products against keys, values, A and V_A likewise
 *   8  the encoder's products through oneDNN (harness/encoder/gemm.c) in 512-row and 32-feature blocks,
 *      LayerNorm's row sums vectorised, GELU in its exact (erf) form instead of tanh's
 *   9  bf16: the attention backends' products in bf16 (attention/tile_bf16.c) where the CPU has
 *      AVX512-BF16 (binaries of 9 stamped 9 on fp32 runs too, which kept 8's bits)
 *  10  bf16: those products on AMX tiles (attention/tile_amx.c) where the CPU has AMX-BF16, and
 *      full attention's softmax on its own 16-lane exp (attention/exp16.h)
 *  11  bf16: the encoder's products on oneDNN primitives built for each shape (harness/encoder/gemm.c:
 *      its brgemm kernels, AMX where the CPU has it), agent's, moe's and mita's softmax on exp16.h
 * The next change of fp32's bits takes 12: 9 on an fp32 checkpoint means 8 (lra_numerics_same). */
#define LRA_NUMERICS_FP32 8
#define LRA_NUMERICS_BF16 11
/* the version of a run in precision p (an lra_precision) */
static inline int lra_numerics(lra_precision p) { return p == LRA_BF16 ? LRA_NUMERICS_BF16 : LRA_NUMERICS_FP32; }
/* whether a checkpoint recorded under version v continues as the same run in precision p: its own
 * version, or for fp32 also 9 (whose fp32 runs computed 8's bits) */
static inline int lra_numerics_same(lra_precision p, int v) { return v == lra_numerics(p) || (p != LRA_BF16 && v == 9); }

/* The version of the JSON reports lra-bench writes (runs and speed); compare reads this one only. */
#define LRA_REPORT_SCHEMA_VERSION 1
/* ISO 8601 UTC of a time(NULL) value into buf[32]. */
void lra_iso_time(long t, char *buf);

#endif
