/* pathfinder.h - the Pathfinder task (and Path-X): entry points used by tests and tools. */
#ifndef LRA_PATHFINDER_H
#define LRA_PATHFINDER_H

#include "task.h"

/* The difficulty directory under a data directory: DIR/pathfinderS/curv_contour_length_14, or the
 * same under lra_release/ or lra_release/lra_release/ (the release's layouts). 0 when absent. */
int lra_pathfinder_find(const char *data_dir, int size, char *out, size_t n);

/* Loads one split of the images listed by root/metadata/<n>.npy (read in numeric order of n; one
 * "imgs/<b> sample_<k>.png <k> <label> ..." line per image): split 0 = the first 80% of the
 * lines, 1 the next 10%, 2 the last 10%. Images are size x size 8-bit PNGs, tokens their pixels
 * (row-major, 0-255). Empty or unreadable images are skipped and counted in s->skipped, with one
 * warning naming the first (unless quiet). */
lra_status lra_pathfinder_load(lra_split *s, const char *root, int size, int split, int quiet, char *err);

#endif
