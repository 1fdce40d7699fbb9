/* pathfinder_gen.h - a Pathfinder generator in C after lra.md's description of snakes2.py
 * (Linsley et al. 2018): two target snakes of dashed "paddles", shorter distractor snakes, two
 * round markers; label 1 when both markers sit on the two ends of one snake. It writes the
 * official layout: imgs/<batch>/sample_<k>.png and metadata/<batch>.npy (plain text lines
 * "imgs/<batch> sample_<k>.png <k> <label> ..."). Not the official images: the same task. */
#ifndef LRA_PATHFINDER_GEN_H
#define LRA_PATHFINDER_GEN_H

#include "../common/lra.h"

typedef struct {
    int size;           /* image side: 32 (Pathfinder) or 128 (Path-X) */
    int contour_length; /* paddles per target snake: 6, 9, 14 (the LRA "hard" set) */
    long n_images;      /* total images */
    int per_batch;      /* images per imgs/<batch> folder and metadata file */
    uint64_t seed;
} lra_pathfinder_gen_cfg;

/* LRA's pathfinder32 hard set: 32 px, contour length 14; n images in batches of 1000. */
void lra_pathfinder_gen_defaults(lra_pathfinder_gen_cfg *c, int size, long n);

/* Draws one image (size*size bytes) with the given label into img; returns 0, or -1 when the
 * snakes could not be placed within the attempt budget (the caller draws again). */
int lra_pathfinder_draw(lra_rng *r, const lra_pathfinder_gen_cfg *c, int label, uint8_t *img);

/* Writes the whole set under dir (e.g. DATA/pathfinder32/curv_contour_length_14): into
 * dir.partial first, renamed to dir when every image and metadata file is written, so a
 * half-generated set is never taken for a whole one. Labels alternate 1/0 (balanced). */
lra_status lra_pathfinder_generate(const char *dir, const lra_pathfinder_gen_cfg *c, int quiet, char *err);

/* Writes a 4x4 contact sheet of the first 16 images generate would write (each scaled up
 * `scale` times, row by row) as a PNG; labels (16, may be NULL) receives their labels. */
lra_status lra_pathfinder_contact_sheet(const char *path, const lra_pathfinder_gen_cfg *c, int scale, int *labels,
                                        char *err);

#endif
