/* listops_gen.h - a C port of the official ListOps generator (lra_benchmarks/data/listops.py). */
#ifndef LRA_LISTOPS_GEN_H
#define LRA_LISTOPS_GEN_H

#include "../common/lra.h"

typedef struct {
    long n_train, n_val, n_test; /* official: 96000, 2000, 2000 */
    int min_length, max_length;  /* keep trees with min_length < length < max_length: 500, 2000 */
    int max_depth, max_args;     /* 10, 10 */
    uint64_t seed;
} lra_listops_gen_cfg;

void lra_listops_gen_defaults(lra_listops_gen_cfg *c);

/* Generates one tree with the official recursion (from depth 1), writes its official
 * serialisation, e.g. "( ( ( [MAX 2 ) 9 ) ] )", into buf (NUL-terminated) and returns its
 * value 0-9 and its length (operators, digits and ']' counted, as the official code does).
 * Returns 0 with *length = -1 when the tree reached max_length tokens (generation stops early
 * then: such a tree would be rejected anyway) or the buffer is too small. */
int lra_listops_tree(lra_rng *r, const lra_listops_gen_cfg *c, char *buf, size_t bufsize, int *length);

/* Generates the three de-duplicated splits and writes them as official TSVs (header
 * "Source\tTarget", CRLF) named basic_{train,val,test}.tsv in dir, each through a temporary file
 * renamed when complete. */
lra_status lra_listops_generate(const char *dir, const lra_listops_gen_cfg *c, char *err);

/* An independent evaluator of a serialised expression (for tests and checks): returns the
 * value 0-9, or -1 when the text is not a well-formed ListOps expression. */
int lra_listops_eval(const char *src);

#endif
