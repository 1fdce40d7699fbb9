/* fuzz_cifar.c - CIFAR-10 binary records (tasks/image.c): any bytes as test_batch.bin. */
#include "fuzz.h" /* first: it sets the feature macros */

#include "../tasks/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_file("cifar-10-batches-bin/test_batch.bin", data, n);
    char dir[4096], err[LRA_ERR_LEN];
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", fuzz_dir());
    lra_split s;
    if (lra_cifar_load(&s, dir, LRA_SPLIT_TEST, err) == LRA_OK) lra_split_free(&s);
    return 0;
}
