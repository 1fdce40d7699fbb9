/* fuzz_idx.c - Fashion-MNIST IDX files (tasks/image.c). The input is tried as the images file
 * (plain, and under the .gz name zlib also reads plain), then as the labels file, each time beside
 * a valid other file for 3 images, so that both headers and the pixel loop are reached. */
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
