/* stats.h - the intervals compare and plot print, over the seeds of a configuration.
 *
 * An estimate is a mean with its standard error and degrees of freedom; its 95% confidence
 * interval is mean +- t(0.975, df) * se (Student's t). A backend's accuracy: the seeds' mean,
 * se = sd / sqrt(n), df = n - 1. The difference of two backends: paired over the seeds both ran
 * where there are two or more (the same seed means the same data order and initialisation, so
 * the seed's own effect cancels): the mean and se of the per-seed differences, df = pairs - 1;
 * otherwise Welch's unpaired interval (Welch-Satterthwaite df). An average over tasks: the mean
 * of the tasks' means, se = sqrt(sum se^2) / tasks, Welch-Satterthwaite df. Where n < 2 there is
 * no interval: se and df are NAN. */
#ifndef LRA_STATS_H
#define LRA_STATS_H

typedef struct {
    double mean, se, df; /* se, df: NAN where there is no interval */
    int n;               /* seeds (for a difference: pairs, or the smaller group unpaired) */
    int paired;          /* a difference over matching seeds */
} lra_estimate;

double lra_mean(const double *x, int n);
double lra_stdev(const double *x, int n); /* sample standard deviation; 0 for n < 2 */

/* Student's t 0.975 quantile for df >= 1: the table's three decimals (df 1-30, 40, 60, 120,
 * infinity), interpolated in 1/df between entries. NAN for df < 1 or NAN. */
double lra_t975(double df);
/* the interval's half-width t975(df) * se; NAN where there is none */
double lra_half95(lra_estimate e);
/* x[0..n) */
lra_estimate lra_estimate_mean(const double *x, int n);
/* a - b, paired over the seeds both have when two or more match, else Welch's */
lra_estimate lra_estimate_diff(const double *a, const long *seed_a, int na, const double *b, const long *seed_b, int nb);
/* the mean of k independent estimates (an average over tasks); no interval if any part has none */
lra_estimate lra_estimate_average(const lra_estimate *e, int k);

#endif
