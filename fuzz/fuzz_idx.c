/* fuzz_idx.c - Fashion-MNIST IDX files (tasks/image.c). The input is tried as the images file
 * (plain, and under the .gz name zlib also reads plain), then as the labels file, each time beside
 * a well-formed other file for 3 items whose header claims the count the input's header claims,
 * so that a file claiming more than it holds gets past the count check, as a hostile pair would. */
#include "fuzz.h" /* first: it sets the feature macros */

#include "../tasks/image.h"

static void load(void) {
    char dir[4096], err[LRA_ERR_LEN];
    snprintf(dir, sizeof dir, "%s/f", fuzz_dir());
    lra_split s;
    if (lra_fmnist_load(&s, dir, LRA_SPLIT_TEST, err) == LRA_OK) lra_split_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static uint8_t images[16 + 3 * 784], labels[8 + 3];
    const uint8_t ih[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28}, lh[8] = {0, 0, 8, 1, 0, 0, 0, 3};
    memcpy(images, ih, 16);
    for (int i = 0; i < 3 * 784; i++) images[16 + i] = (uint8_t)i;
    memcpy(labels, lh, 8);
    labels[8] = 1, labels[9] = 7, labels[10] = 9;
    if (n >= 8) { /* the other file's header claims what the input's does */
        memcpy(images + 4, data + 4, 4);
        memcpy(labels + 4, data + 4, 4);
    }
    char gz[4200];
    snprintf(gz, sizeof gz, "%s/f/t10k-images-idx3-ubyte.gz", fuzz_dir());

    fuzz_file("f/t10k-images-idx3-ubyte", data, n);
    fuzz_file("f/t10k-labels-idx1-ubyte", labels, sizeof labels);
    load();
    fuzz_file("f/t10k-images-idx3-ubyte.gz", data, n);
    load();
    remove(gz);
    fuzz_file("f/t10k-images-idx3-ubyte", images, sizeof images);
    fuzz_file("f/t10k-labels-idx1-ubyte", data, n);
    load();
    return 0;
}
