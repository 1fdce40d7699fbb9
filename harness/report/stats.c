/* stats.c - see stats.h. */
#include "stats.h"

#include <math.h>

double lra_t975(double df) {
    static const double table[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                     2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                     2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    static const double tail_df[5] = {30, 40, 60, 120, INFINITY}, tail_t[5] = {2.042, 2.021, 2.000, 1.980, 1.960};
    if (!(df >= 1)) return NAN;
    if (df <= 30) {
        int lo = (int)floor(df);
        if (lo == 30 || df == lo) return table[lo - 1];
        double w = (1 / df - 1.0 / lo) / (1.0 / (lo + 1) - 1.0 / lo); /* linear in 1/df */
        return table[lo - 1] + w * (table[lo] - table[lo - 1]);
    }
    for (int i = 0; i < 4; i++)
        if (df <= tail_df[i + 1]) {
            double w = (1 / df - 1 / tail_df[i]) / (1 / tail_df[i + 1] - 1 / tail_df[i]);
            return tail_t[i] + w * (tail_t[i + 1] - tail_t[i]);
        }
    return 1.960;
}

double lra_half95(lra_estimate e) { return isnan(e.se) ? NAN : lra_t975(e.df) * e.se; }

double lra_mean(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s / n;
}

double lra_stdev(const double *x, int n) {
    if (n < 2) return 0;
    double m = lra_mean(x, n), s = 0;
    for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (n - 1));
}

lra_estimate lra_estimate_mean(const double *x, int n) {
    lra_estimate e = {.mean = NAN, .se = NAN, .df = NAN, .n = n};
    if (n < 1) return e;
    e.mean = lra_mean(x, n);
    if (n >= 2) {
        e.se = lra_stdev(x, n) / sqrt(n);
        e.df = n - 1;
    }
    return e;
}

lra_estimate lra_estimate_diff(const double *a, const long *seed_a, int na, const double *b, const long *seed_b, int nb) {
    double d[64];
    int pairs = 0;
    for (int i = 0; i < na; i++)
        for (int k = 0; k < nb && pairs < 64; k++)
            if (seed_a[i] == seed_b[k]) { d[pairs++] = a[i] - b[k]; break; }
    if (pairs >= 2) {
        lra_estimate e = lra_estimate_mean(d, pairs);
        e.paired = 1;
        return e;
    }
    lra_estimate ea = lra_estimate_mean(a, na), eb = lra_estimate_mean(b, nb);
    lra_estimate e = {.mean = ea.mean - eb.mean, .se = NAN, .df = NAN, .n = na < nb ? na : nb};
    if (na >= 2 && nb >= 2) {
        const double va = ea.se * ea.se, vb = eb.se * eb.se;
        e.se = sqrt(va + vb);
        e.df = va + vb > 0 ? (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1)) : (na < nb ? na : nb) - 1;
    }
    return e;
}

lra_estimate lra_estimate_average(const lra_estimate *e, int k) {
    lra_estimate avg = {.mean = 0, .se = 0, .df = NAN, .n = k ? e[0].n : 0};
    double v = 0, v2_df = 0, min_df = INFINITY;
    for (int i = 0; i < k; i++) {
        avg.mean += e[i].mean / k;
        if (e[i].n < avg.n) avg.n = e[i].n;
        const double vi = e[i].se * e[i].se; /* NAN propagates: no interval */
        v += vi;
        v2_df += vi * vi / e[i].df;
        if (e[i].df < min_df) min_df = e[i].df;
    }
    avg.se = k ? sqrt(v) / k : NAN;
    avg.df = v2_df > 0 ? v * v / v2_df : min_df; /* every se 0: no spread to weigh */
    if (isnan(avg.se)) avg.df = NAN;
    avg.paired = k > 0;
    for (int i = 0; i < k; i++) avg.paired &= e[i].paired;
    return avg;
}
