/* generate_cmd.c - `lra-bench generate --task=NAME --out=DIR [options]`: a data set written
 * offline by the task's own generator (lra_task_i.generate). This file parses the options; which
 * apply is the task's to say (generate_options). */
#define _POSIX_C_SOURCE 200809L
#include "generate_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/fs.h"
#include "../../tasks/task.h"

int lra_generate_main(int argc, char **argv) {
    char err[LRA_ERR_LEN];
    const char *task = "listops", *given[8];
    int ngiven = 0;
    lra_generate_opts o = {.seed = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char *end;
        if (strncmp(a, "--out=", 6) == 0) o.out = a + 6;
        else if (strncmp(a, "--task=", 7) == 0) task = a + 7;
        else if (strncmp(a, "--data-seed=", 12) == 0) o.seed = strtoull(a + 12, NULL, 10);
        else if (strncmp(a, "--sizes=", 8) == 0) {
            given[ngiven++ & 7] = "sizes";
            if (sscanf(a + 8, "%ld,%ld,%ld", &o.sizes[0], &o.sizes[1], &o.sizes[2]) != 3 || o.sizes[0] < 1 ||
                o.sizes[1] < 1 || o.sizes[2] < 1) {
                fprintf(stderr, "lra-bench generate: --sizes='%s' must be three positive counts TRAIN,VAL,TEST\n", a + 8);
                return 2;
            }
        } else if (strncmp(a, "--lengths=", 10) == 0) {
            given[ngiven++ & 7] = "lengths";
            if (sscanf(a + 10, "%d,%d%c", &o.lengths[0], &o.lengths[1], &(char){0}) != 2 || o.lengths[0] < 0 ||
                o.lengths[1] < o.lengths[0] + 2 || o.lengths[1] > 100000) {
                fprintf(stderr, "lra-bench generate: --lengths='%s' must be MIN,MAX with 0 <= MIN, MIN + 2 <= MAX <= "
                                "100000 (the official 500,2000)\n", a + 10);
                return 2;
            }
        } else if (strncmp(a, "--images=", 9) == 0) {
            given[ngiven++ & 7] = "images";
            o.images = strtol(a + 9, &end, 10);
            if (*end || o.images < 10 || o.images > 100000000) {
                fprintf(stderr, "lra-bench generate: --images='%s' must be a count from 10 to 1e8\n", a + 9);
                return 2;
            }
        } else if (strncmp(a, "--preview=", 10) == 0) {
            given[ngiven++ & 7] = "preview";
            o.preview = a + 10;
        } else if (strncmp(a, "--contour=", 10) == 0) {
            given[ngiven++ & 7] = "contour";
            o.contour = (int)strtol(a + 10, &end, 10);
            if (*end || o.contour < 2 || o.contour > 64) {
                fprintf(stderr, "lra-bench generate: --contour='%s' must be 2..64 paddles (LRA: 6, 9, 14)\n", a + 10);
                return 2;
            }
        } else {
            fprintf(stderr, "lra-bench generate: unknown option '%s' (see lra-bench generate --help)\n", a);
            return 2;
        }
    }
    const lra_task_i *t = lra_task_find(task);
    if (!t || !t->generate) {
        char names[256] = "";
        size_t used = 0;
        for (int i = 0; i < lra_task_count(); i++)
            if (lra_task_at(i)->generate)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", lra_task_at(i)->name);
        fprintf(stderr, "lra-bench generate: no offline generator for task '%s' (available: %s)\n", task, names);
        return 2;
    }
    for (int i = 0; i < ngiven && i < 8; i++)
        if (!lra_in_list(t->generate_options, given[i])) {
            fprintf(stderr, "lra-bench generate: --%s is not an option of %s's generator (its options: %s)\n", given[i],
                    t->name, t->generate_options);
            return 2;
        }
    if (!o.out && !o.preview) {
        fprintf(stderr, "lra-bench generate: --out=DIR is required\n");
        return 2;
    }
    const int out_existed = o.out && access(o.out, F_OK) == 0;
    lra_stop_install(); /* Ctrl-C stops generation within a second, leaving nothing half-made */
    lra_status st = t->generate(&o, err);
    lra_stop_restore();
    if (st != LRA_OK) {
        if (o.out && !out_existed) lra_remove_empty_dirs(o.out); /* the folders it made for the set: nothing stays */
        fprintf(stderr, "lra-bench generate: %s\n", err);
        return st == LRA_ERR_USAGE ? 2 : 1;
    }
    return 0;
}
