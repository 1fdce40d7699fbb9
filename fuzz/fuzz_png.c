/* fuzz_png.c - PNG decoding through our libpng wrapper (datasets/png.c), at Pathfinder's and
 * Path-X's sizes. */
#include "fuzz.h" /* first: it sets the feature macros */

#include "../datasets/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static uint8_t px[128 * 128];
    char err[LRA_ERR_LEN];
    lra_png_decode_gray(data, n, px, 32, 32, "fuzz.png", err);
    lra_png_decode_gray(data, n, px, 128, 128, "fuzz.png", err);
    return 0;
}
