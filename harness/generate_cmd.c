/* generate_cmd.c - `lra-bench generate`: ListOps' official splits, or Pathfinder / Path-X images,
 * written offline with lra-bench's generators (datasets/listops_gen.c, pathfinder_gen.c). */
#define _POSIX_C_SOURCE 200809L
#include "generate_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/fs.h"
#include "../datasets/listops_gen.h"
#include "../datasets/pathfinder_gen.h"

int lra_generate_main(int argc, char **argv) {
    char err[LRA_ERR_LEN];
    const char *out = NULL, *task = "listops";
    lra_listops_gen_cfg g;
    lra_listops_gen_defaults(&g);
    lra_pathfinder_gen_cfg pf;
    lra_pathfinder_gen_defaults(&pf, 32, 200000);
    int listops_only = 0, pathfinder_only = 0;
    const char *preview = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char *end;
        if (strncmp(a, "--out=", 6) == 0) out = a + 6;
        else if (strncmp(a, "--task=", 7) == 0) task = a + 7;
        else if (strncmp(a, "--data-seed=", 12) == 0) g.seed = pf.seed = strtoull(a + 12, NULL, 10);
        else if (strncmp(a, "--sizes=", 8) == 0) {
            listops_only = 1;
            if (sscanf(a + 8, "%ld,%ld,%ld", &g.n_train, &g.n_val, &g.n_test) != 3 || g.n_train < 1 ||
                g.n_val < 1 || g.n_test < 1) {
                fprintf(stderr, "lra-bench generate: --sizes='%s' must be three positive counts TRAIN,VAL,TEST\n", a + 8);
                return 2;
            }
        } else if (strncmp(a, "--images=", 9) == 0) {
            pathfinder_only = 1;
            pf.n_images = strtol(a + 9, &end, 10);
            if (*end || pf.n_images < 10 || pf.n_images > 100000000) {
                fprintf(stderr, "lra-bench generate: --images='%s' must be a count from 10 to 1e8\n", a + 9);
                return 2;
            }
        } else if (strncmp(a, "--preview=", 10) == 0) {
            pathfinder_only = 1;
            preview = a + 10;
        } else if (strncmp(a, "--contour=", 10) == 0) {
            pathfinder_only = 1;
            pf.contour_length = (int)strtol(a + 10, &end, 10);
            if (*end || pf.contour_length < 2 || pf.contour_length > 64) {
                fprintf(stderr, "lra-bench generate: --contour='%s' must be 2..64 paddles (LRA: 6, 9, 14)\n", a + 10);
                return 2;
            }
        } else {
            fprintf(stderr, "lra-bench generate: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    const int is_pf = strcmp(task, "pathfinder") == 0 || strcmp(task, "pathx") == 0;
    if (strcmp(task, "pathx") == 0) pf.size = 128;
    if (!is_pf && strcmp(task, "listops") != 0) {
        fprintf(stderr, "lra-bench generate: no offline generator for task '%s' (available: listops, pathfinder, pathx)\n", task);
        return 2;
    }
    if ((is_pf && listops_only) || (!is_pf && pathfinder_only)) {
        fprintf(stderr, "lra-bench generate: --sizes is for listops; --images, --contour and --preview are for pathfinder and pathx\n");
        return 2;
    }
    if (preview) { /* the first 16 images on one sheet, for eyes */
        int labels[16];
        lra_status st = lra_pathfinder_contact_sheet(preview, &pf, pf.size >= 128 ? 2 : 8, labels, err);
        if (st != LRA_OK) {
            fprintf(stderr, "lra-bench generate: %s\n", err);
            return st == LRA_ERR_USAGE ? 2 : 1;
        }
        fprintf(stderr, "lra-bench: wrote %s; labels row by row:", preview);
        for (int i = 0; i < 16; i++) fprintf(stderr, "%s%d", i % 4 ? " " : i ? " | " : " ", labels[i]);
        fprintf(stderr, "\n");
        return 0;
    }
    if (!out) {
        fprintf(stderr, "lra-bench generate: --out=DIR is required\n");
        return 2;
    }
    lra_status st = lra_mkdirs(out, err);
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/pathfinder%d/curv_contour_length_%d", out, pf.size, pf.contour_length);
    struct stat sb;
    if (st == LRA_OK && is_pf && stat(dir, &sb) == 0) { /* whole or partial: generating over it would fail late */
        fprintf(stderr, "lra-bench generate: %s exists; remove it first\n", dir);
        return 1;
    }
    static const char *const splits[3] = {"train", "val", "test"};
    for (int k = 0; k < 3 && st == LRA_OK && !is_pf; k++) { /* never replace a set, whole or partial */
        char tsv[4300];
        snprintf(tsv, sizeof tsv, "%s/basic_%s.tsv", out, splits[k]);
        if (lra_file_exists(tsv)) {
            fprintf(stderr, "lra-bench generate: %s exists; remove the set first (or --out=another directory)\n", tsv);
            return 1;
        }
    }
    lra_stop_install(); /* Ctrl-C stops generation within a second, leaving nothing half-made */
    if (st == LRA_OK) fprintf(stderr, "lra-bench: generating %s into %s (Ctrl-C stops it, keeping nothing)\n", task, is_pf ? dir : out);
    if (st == LRA_OK) st = is_pf ? lra_pathfinder_generate(dir, &pf, 0, err) : lra_listops_generate(out, &g, err);
    lra_stop_restore();
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench generate: %s\n", err);
        return st == LRA_ERR_USAGE ? 2 : 1;
    }
    if (is_pf)
        fprintf(stderr, "lra-bench: wrote %ld images (%d px, contour length %d, seed %llu) to %s\n", pf.n_images,
                pf.size, pf.contour_length, (unsigned long long)pf.seed, dir);
    else
        fprintf(stderr, "lra-bench: wrote %s/basic_{train,val,test}.tsv (%ld/%ld/%ld examples, seed %llu)\n", out,
                g.n_train, g.n_val, g.n_test, (unsigned long long)g.seed);
    return 0;
}

