/* optim.h - Adam with decoupled weight decay and the official LRA learning-rate schedules. */
#ifndef LRA_OPTIM_H
#define LRA_OPTIM_H

#include <stddef.h>

enum { LRA_SCHED_RSQRT = 0, LRA_SCHED_COSINE = 1, LRA_SCHED_CONSTANT = 2, LRA_SCHED_ONECYCLE = 3 };

/* Learning rate at 0-based step s (the official code counts from 0, so step 0 has rate 0):
 *   rsqrt:  base * min(1, s/W) / sqrt(max(s, W))                       (ListOps, Text, Retrieval)
 *   cosine: base * min(1, s/W) * max(0, 0.5 (1 + cos(pi * ((max(0, s-W) / total) mod 1))))
 *                                                                      (Image, Pathfinder)
 *   constant: base * min(1, s/W)
 *   onecycle: PyTorch's OneCycleLR(max_lr = base, pct_start = W/total, anneal_strategy = linear,
 *             div_factor 25, final_div_factor 1e4) as the scheduler stands before step s's update:
 *             linear from base/25 at s = 0 to base at s = W-1, then linear to base/25/1e4 at
 *             s = total-1 (the reproduction recipe, lra.md)                (repro profile) */
double lra_lr_at(int schedule, double base, long s, long warmup, long total);

/* Adam's beta1 at step s: `b1` for every schedule but onecycle, whose cycle_momentum runs it
 * against the learning rate, 0.95 -> 0.85 over the warm-up and back to 0.95 at s = total-1. */
double lra_beta1_at(int schedule, double b1, long s, long warmup, long total);

/* One step of flax's optim.Adam (the official code) and of PyTorch's AdamW (the reproduction
 * recipe, which passes the step's cycled b1), element-wise:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd * p)
 * t is the 1-based step count. The weight decay is decoupled from the gradient (AdamW) and, as
 * in flax, scaled by the learning rate. grad_scale multiplies g first (gradient clipping). */
void lra_adam_step(float *p, const float *g, float *m, float *v, size_t n, double lr, double b1,
                   double b2, double eps, double wd, long t, float grad_scale);

#endif
