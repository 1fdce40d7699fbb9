/* fuzz_aan.c - the AAN (Retrieval) TSV loader (tasks/retrieval.c) on any bytes. */
#include "fuzz.h" /* first: it sets the feature macros */

#include "../tasks/retrieval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *path = fuzz_file("new_aan_pairs.train.tsv", data, n);
    lra_split s;
    char err[LRA_ERR_LEN];
    if (lra_retrieval_load_file(&s, path, 4000, err) == LRA_OK) {
        static int32_t tok[2 * 4000];
        static uint8_t mask[2 * 4000];
        for (size_t i = 0; i < s.n; i++) {
            int32_t label;
            lra_split_example(&s, i, lra_split_len(&s, i), tok, mask, &label);
        }
        lra_split_free(&s);
    }
    return 0;
}
