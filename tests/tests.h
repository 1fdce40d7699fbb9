/* tests.h - the Check suites (one per module) and helpers they share. */
#ifndef LRA_TESTS_H
#define LRA_TESTS_H

#include <check.h>
#include <cjson/cJSON.h>

#include "../common/lra.h"

Suite *layers_suite(void);
Suite *model_suite(void);
Suite *attention_suite(void);
Suite *listops_suite(void);
Suite *cli_suite(void);
Suite *compare_suite(void);
Suite *text_suite(void);
Suite *retrieval_suite(void);
Suite *image_suite(void);
Suite *pathfinder_suite(void);
Suite *fetch_suite(void);
Suite *checkpoint_suite(void);

/* uniform values in [-scale, scale) */
void t_fill(float *x, size_t n, float scale, uint64_t seed);
/* max |a-b| / (atol + rtol * max(|a|, |b|)) over n elements: <= 1 passes */
double t_close(const float *a, const float *b, size_t n, double atol, double rtol);
/* Central finite differences of loss(ctx) with step h, on every element of x when n <= count,
 * else on `count` sampled ones, against the analytic gradient g; fails the test naming `what`,
 * the index and both values when |numeric - analytic| > atol + rtol * max(|numeric|, |analytic|).
 * A point within h of a jump of the loss (hard routing flipping) is recognised by its one-sided
 * differences disagreeing; there the analytic gradient must match one side, and such points may
 * be at most a fifth of the sample. */
typedef double (*t_loss_fn)(void *ctx);
void t_gradcheck(t_loss_fn loss, void *ctx, float *x, const float *g, size_t n, int count, float h,
                 double atol, double rtol, const char *what);
/* A fresh temporary directory (mkdtemp); returns a static buffer per call slot. */
const char *t_tmpdir(void);
/* Runs a shell command (a list is fine), captures the stderr and stdout of all of it into out (may
 * be NULL); returns the exit status. */
int t_run(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The lra-bench binary ($LRA_BENCH, default build/lra-bench). */
const char *t_bench(void);
/* Writes a gzipped tar (ustar) at path holding n regular files names[i] with lens[i] bytes of
 * data[i] (lens NULL: strlen), through libarchive's writer; fails the test on error. */
void t_tar_gz(const char *path, int n, const char *const *names, const char *const *data, const size_t *lens);
/* A JSON file (up to 1 MiB), parsed; fails the test when absent or not JSON. Caller owns. */
cJSON *t_load_json(const char *path);
/* The member at a dotted path ("results.test.accuracy"), failing the test when absent; t_num and
 * t_str also fail it when the member has another type. */
cJSON *t_get(const cJSON *j, const char *dotted);
double t_num(const cJSON *j, const char *dotted);
const char *t_str(const cJSON *j, const char *dotted);
/* Writes len bytes to path (creating parent directories); fails the test on error. Like t_tar_gz,
 * it also offers the file to t_corpus_classify. */
void t_write_file(const char *path, const void *data, size_t len);
/* With $LRA_FUZZ_CORPUS set (`make fuzz-corpus`), copies a file the tests wrote in an official
 * format into $LRA_FUZZ_CORPUS/<kind>/ as a seed for fuzz/fuzz_<kind>.c: at most max_bytes of it
 * (0: all), less strip bytes at its end. Without the variable, nothing. */
void t_corpus(const char *kind, const char *path, size_t max_bytes, size_t strip);
/* The same with the kind told by the file's name (basic_*.tsv, *aan_pairs*, .npy, .png, .bin,
 * *-ubyte*, .json, .ckpt, .gz). */
void t_corpus_classify(const char *path);

#endif
