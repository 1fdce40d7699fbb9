/* peak.h - the machine's fp32 peak, measured: a loop of independent fused multiply-adds on the
 * widest vectors the build targets, on every thread at once, so speed tables can say how close
 * a kernel comes to what these cores can do. */
#ifndef LRA_PEAK_H
#define LRA_PEAK_H

/* GFLOP/s (an FMA counts 2) of `threads` threads, the best of three runs of about 0.1 s each. */
double lra_peak_gflops(int threads);
/* The same for bf16 products: vdpbf16ps (AVX512-BF16; a pair of products and their sum count 2
 * each); 0 on a CPU without it. */
double lra_peak_bf16_gflops(int threads);
/* The same on AMX tiles: tdpbf16ps into four accumulator tiles (16 x 16 x 32 products, 16384
 * flops an instruction); 0 where lra_tile_amx_usable() is not. */
double lra_peak_amx_gflops(int threads);

#endif
