/* sysinfo.h - what a report says about the machine and the build. */
#ifndef LRA_SYSINFO_H
#define LRA_SYSINFO_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The peak resident set since the last lra_peak_rss_reset (Linux's VmHWM), else of the whole
 * process (getrusage's ru_maxrss). */
size_t lra_peak_rss_bytes(void);
/* Starts a new window for lra_peak_rss_bytes: the kernel's high-water mark drops to the current
 * resident set (writing 5 to /proc/self/clear_refs, Linux 4.0 on). Returns 0 where it cannot, and
 * the peak then stays the process's so far. */
int lra_peak_rss_reset(void);
/* {"cpu", "cores", "threads", "compiler", "cflags", "openblas_config", "openblas_core",
 *  "onednn_isa", "attention_bf16_kernels", "OPENBLAS_CORETYPE"}; caller owns. */
cJSON *lra_machine_json(int threads);
const char *lra_git_commit(void);
/* The numerics version: raised by every change that moves the bits of a training run (a kernel's
 * summation order, a vectorised function, a tile size). Checkpoints and reports record it, and
 * `resume` continues a run only under the numerics it was computed with (else it would not be the
 * same run), unless told --numerics-change=on. Checkpoints written before it existed are 1.
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
 *   9  full attention's products in bf16 under --precision=bf16 (attention/tile_bf16.c) where the
 *      CPU has AVX512-BF16; fp32 runs keep the bits of 8 */
#define LRA_NUMERICS 9

/* The version of the JSON reports lra-bench writes (runs and speed); compare reads this one only. */
#define LRA_REPORT_SCHEMA_VERSION 1
/* ISO 8601 UTC of a time(NULL) value into buf[32]. */
void lra_iso_time(long t, char *buf);

#endif
