/* dist.h - data-parallel training over MPI: one model, P processes, the same numbers at every P.
 *
 * A process started by mpirun or srun initialises MPI in lra_dist_init; a plain `lra-bench` never
 * does (MPI stays uninitialised: no start-up cost, nothing of MPI's environment needed), and every
 * function here then acts as the only process of one (rank 0 of 1, sums of one term).
 *
 * Results do not depend on P because nothing is summed across processes in an order P decides:
 * - the batch is cut into a fixed number S of gradient shards (--grad-shards), each computed by
 *   one process as a separate forward and backward; lra_dist_sum_shards adds the S shard
 *   gradients left to right in shard order, g_0 + g_1 + ... + g_{S-1}, on one process per slice
 *   of the parameters, then hands the sums to every process;
 * - per-example results (losses, predictions) are merged by a sum in which every element is
 *   non-zero on exactly one process: exact in any order.
 * Every process then applies the same AdamW step to the same gradients: identical parameters.
 *
 * Files and lines: rank 0 writes every report, checkpoint and progress line. Every process reads
 * the data and checkpoints itself (a filesystem all of them see, as on clusters); data generation
 * runs on rank 0 while the others wait (run.c). */
#ifndef LRA_DIST_H
#define LRA_DIST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../../common/lra.h"

/* Initialises MPI when this process was started by an MPI launcher (its environment says so);
 * returns 0, or 1 when MPI failed to start (a message is printed). */
int lra_dist_init(int *argc, char ***argv);
/* Ends MPI if it was started (after every collective of the job). */
void lra_dist_finalize(void);

int lra_dist_rank(void);  /* 0 without MPI */
int lra_dist_size(void);  /* P; 1 without MPI */
/* --threads=0: this host's cores divided among the processes the launcher started on it (>= 1). */
int lra_dist_default_threads(void);

/* The shards [*lo, *hi) of S that rank r computes: contiguous, ascending with the rank, as even as
 * they go; a rank past S computes none. */
void lra_dist_shards_of(int r, int S, int *lo, int *hi);
/* The examples [*lo, *hi) of B in shard s of S: contiguous, as even as they go. */
void lra_dist_shard_examples(int s, int S, int B, int *lo, int *hi);

/* x[i] summed over the processes where each element is non-zero on at most one (the others hold
 * 0): exact whatever order MPI adds in. n elements. */
void lra_dist_merge_f32(float *x, int n);
void lra_dist_merge_i32(int32_t *x, int n);
/* The largest of every process's v (stop requests, for one step to stop at on every process). */
int lra_dist_max_int(int v);
/* Every process's status: LRA_OK when all are, else the lowest failing rank's, with its message in
 * err on every process (only rank 0 prints it). */
lra_status lra_dist_agree(lra_status st, char *err);

/* The fixed-order sum of S shard gradients of n floats each, for P > 1 (one process adds its own
 * shards as it goes, train.c). This process's shard gradients were packed into `send` with
 * lra_dist_pack_shard; on return sum (n) holds the left-to-right sum on every process.
 * recv: (S, n / P + 1) floats. bytes (may be NULL) += the bytes this process sent. */
void lra_dist_pack_shard(float *send, const float *grad, int k, int own, size_t n);
void lra_dist_sum_shards(float *sum, const float *send, float *recv, int S, size_t n, double *bytes);

/* {"processes": P, "hosts": [names, one per process]} for reports; caller owns. */
cJSON *lra_dist_json(void);

#endif
