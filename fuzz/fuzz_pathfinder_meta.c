/* fuzz_pathfinder_meta.c - Pathfinder metadata (tasks/pathfinder.c): any bytes as metadata/0.npy
 * of a tree that holds four valid images imgs/0/sample_{0..3}.png, loaded as each split. */
#include "fuzz.h" /* first: it sets the feature macros */

#include "../datasets/png.h"
#include "../tasks/pathfinder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static char root[4096];
    if (!root[0]) {
        uint8_t img[32 * 32];
        char err[LRA_ERR_LEN], rel[64];
        for (int k = 0; k < 4; k++) {
            for (int i = 0; i < 32 * 32; i++) img[i] = (uint8_t)(i * (k + 3));
            snprintf(rel, sizeof rel, "pf/imgs/0/sample_%d.png", k);
            const char *p = fuzz_file(rel, "", 0);
            if (lra_png_write_gray(p, img, 32, 32, err) != LRA_OK) { fprintf(stderr, "%s\n", err); abort(); }
        }
        snprintf(root, sizeof root, "%s/pf", fuzz_dir());
    }
    fuzz_file("pf/metadata/0.npy", data, n);
    char err[LRA_ERR_LEN];
    for (int split = 0; split < 3; split++) {
        lra_split s;
        if (lra_pathfinder_load(&s, root, 32, split, 1, err) == LRA_OK) lra_split_free(&s);
    }
    return 0;
}
