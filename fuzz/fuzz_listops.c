/* fuzz_listops.c - the ListOps TSV loader (tasks/listops.c) on any bytes as basic_train.tsv. */
#include "fuzz.h" /* first: it sets the feature macros */

#include "../tasks/listops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *path = fuzz_file("basic_train.tsv", data, n);
    lra_split s;
    char err[LRA_ERR_LEN];
    if (lra_listops_load_file(&s, path, 2000, err) == LRA_OK) {
        /* what the batcher does with a loaded split: every example's tokens and label */
        for (size_t i = 0; i < s.n; i++) {
            int32_t tok[2000], label;
            uint8_t mask[2000];
            lra_split_example(&s, i, 2000, tok, mask, &label);
        }
        lra_split_free(&s);
    }
    return 0;
}
