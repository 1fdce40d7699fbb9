/* optim.h - Adam with decoupled weight decay and the official LRA learning-rate schedules. */
#ifndef LRA_OPTIM_H
#define LRA_OPTIM_H

#include <stddef.h>

enum { LRA_SCHED_RSQRT = 0, LRA_SCHED_COSINE = 1, LRA_SCHED_CONSTANT = 2 };

/* Learning rate at 0-based step s (the official code counts from 0, so step 0 has rate 0):
 *   rsqrt:  base * min(1, s/W) / sqrt(max(s, W))                       (ListOps, Text, Retrieval)
 *   cosine: base * min(1, s/W) * max(0, 0.5 (1 + cos(pi * ((max(0, s-W) / total) mod 1))))
 *                                                                      (Image, Pathfinder)
 *   constant: base * min(1, s/W) */
double lra_lr_at(int schedule, double base, long s, long warmup, long total);

/* One step of flax's optim.Adam (the optimizer of the official code), element-wise:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd * p)
 * t is the 1-based step count. The weight decay is decoupled from the gradient (AdamW) and, as
 * in flax, scaled by the learning rate. grad_scale multiplies g first (gradient clipping). */
void lra_adam_step(float *p, const float *g, float *m, float *v, size_t n, double lr, double b1,
                   double b2, double eps, double wd, long t, float grad_scale);

#endif
