/* train.h - one training step and one evaluation batch, the same for training runs (run.c,
 * evaluate.c) and `lra-bench speed`, on one process or data-parallel over MPI (dist.h).
 *
 * Gradient shards: a batch of B examples is cut into S = min(--grad-shards, B) shards of
 * consecutive examples (lra_dist_shard_examples), each a forward and backward of its own; the
 * shard gradients, each of (sum of the shard's losses) / B, are added in shard order. S, not the
 * number of processes, fixes every sum, so losses, accuracies and parameters are the same bits
 * at any P (and any thread count). S = 1 is the plain step: one forward and backward of the batch.
 * Dropout in shard s draws from the step's stream, or with S > 1 from lra_stream(stream, SHARD, s). */
#ifndef LRA_TRAIN_H
#define LRA_TRAIN_H

#include "model.h"

/* This step's optimizer settings, schedules already applied. */
typedef struct {
    double lr, beta1, beta2, eps, wd; /* AdamW (optim.h) */
    double clip;                      /* global gradient-norm clip; 0 = off */
    long t;                           /* 1-based step count, for Adam's bias correction */
} lra_step_hparams;

/* A model with its shard buffers. Owns the buffers, not the model. */
typedef struct {
    lra_model *m;
    int shards;          /* --grad-shards */
    float *grad_sum;     // (nparams): the shards' sum so far (one process, S > 1)
    float *send, *recv;  // (own shards, nparams), (S, nparams / P + 1): the MPI sum's buffers
    float *losses;       // (B): each example's loss in the last step or evaluation batch
    int32_t *predicted;  // (B): each example's predicted class (argmax of its probabilities)
    /* communication, summed over steps: seconds in MPI calls, bytes this process sent */
    double comm_seconds, comm_bytes;
} lra_trainer;

lra_status lra_trainer_create(lra_trainer *t, lra_model *m, int shards, char *err);
void lra_trainer_free(lra_trainer *t);

/* forward in training mode on B examples of L tokens (dropout from `stream`), the gradients of the
 * mean loss (by shards, above), their global norm into *norm (before clipping), then, when the
 * loss and the norm are finite, AdamW with the gradients scaled to at most hp->clip. Fills
 * t->losses and t->predicted and returns the mean loss. A non-finite loss or norm leaves the
 * parameters and moments untouched: the caller names what diverged. Under MPI every process calls
 * it with the same batch and computes its own shards. */
float lra_train_step(lra_trainer *t, const int32_t *tokens, const uint8_t *mask, const int32_t *labels, int B, int L,
                     uint64_t stream, const lra_step_hparams *hp, double *norm);

/* Forward in evaluation mode on B examples, by the same shards: t->losses and t->predicted. */
void lra_eval_batch(lra_trainer *t, const int32_t *tokens, const uint8_t *mask, const int32_t *labels, int B, int L);

#endif
