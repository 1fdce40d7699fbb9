/* train.h - one training step, the same for training runs (run.c) and `lra-bench speed`. */
#ifndef LRA_TRAIN_H
#define LRA_TRAIN_H

#include "config.h"
#include "model.h"

/* This step's optimizer settings, schedules already applied. */
typedef struct {
    double lr, beta1, beta2, eps, wd; /* AdamW (optim.h) */
    double clip;                      /* global gradient-norm clip; 0 = off */
    long t;                           /* 1-based step count, for Adam's bias correction */
} lra_step_hparams;

/* The settings of 0-based step s of a run with options c: its schedules applied. */
lra_step_hparams lra_step_hparams_at(const lra_config *c, long s);

/* forward in training mode (dropout from `stream`) on B examples of L tokens, the gradients of the
 * mean loss, their global norm into *norm (before clipping), then, when the loss and the norm are
 * finite, AdamW with the gradients scaled to at most hp->clip. Returns the mean loss. A non-finite
 * loss or norm leaves the parameters and moments untouched: the caller names what diverged. */
float lra_train_step(lra_model *m, const int32_t *tokens, const uint8_t *mask, const int32_t *labels, int B, int L,
                     uint64_t stream, const lra_step_hparams *hp, double *norm);

#endif
