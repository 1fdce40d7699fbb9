/* optim.c - see optim.h. */
#include "optim.h"

#include <math.h>

#include "../../common/lra.h"

/* OneCycleLR's two linear phases: the position of step s within its phase, and which phase.
 * PyTorch ends phase 1 at step pct_start * total - 1 = W - 1 and phase 2 at total - 1. */
static double onecycle_pct(long s, long warmup, long total, int *phase) {
    const double end1 = (double)warmup - 1.0, end2 = (double)total - 1.0;
    if ((double)s <= end1) { *phase = 1; return end1 > 0 ? (double)s / end1 : 1.0; }
    *phase = 2;
    return end2 > end1 ? ((double)s - end1) / (end2 - end1) : 1.0;
}

double lra_beta1_at(int schedule, double b1, long s, long warmup, long total) {
    if (schedule != LRA_SCHED_ONECYCLE) return b1;
    int phase;
    const double pct = onecycle_pct(s, warmup, total, &phase);
    return phase == 1 ? 0.95 + (0.85 - 0.95) * pct : 0.85 + (0.95 - 0.85) * pct;
}

double lra_lr_at(int schedule, double base, long s, long warmup, long total) {
    if (schedule == LRA_SCHED_ONECYCLE) {
        const double initial = base / 25.0, final = initial / 1e4;
        int phase;
        const double pct = onecycle_pct(s, warmup, total, &phase);
        return phase == 1 ? initial + (base - initial) * pct : base + (final - base) * pct;
    }
    double warm = warmup > 0 ? fmin(1.0, (double)s / (double)warmup) : 1.0;
    switch (schedule) {
    case LRA_SCHED_RSQRT:
        return base * warm / sqrt((double)(s > warmup ? s : (warmup > 0 ? warmup : 1)));
    case LRA_SCHED_COSINE: {
        double progress = fmax(0.0, (double)(s - warmup) / (double)(total > 0 ? total : 1));
        return base * warm * fmax(0.0, 0.5 * (1.0 + cos(LRA_PI * fmod(progress, 1.0))));
    }
    default:
        return base * warm;
    }
}

void lra_adam_step(float *p, const float *g, float *m, float *v, size_t n, double lr, double b1,
                   double b2, double eps, double wd, long t, float grad_scale) {
    const float c1 = (float)(1.0 / (1.0 - pow(b1, (double)t)));
    const float c2 = (float)(1.0 / (1.0 - pow(b2, (double)t)));
    const float fb1 = (float)b1, fb2 = (float)b2, feps = (float)eps, flr = (float)lr, fwd = (float)wd;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        m[i] = fb1 * m[i] + (1.0f - fb1) * gi;
        v[i] = fb2 * v[i] + (1.0f - fb2) * gi * gi;
        p[i] -= flr * (m[i] * c1 / (sqrtf(v[i] * c2) + feps) + fwd * p[i]);
    }
}
