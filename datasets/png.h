/* png.h - 8-bit grayscale PNG through libpng's simplified API: what Pathfinder reads and writes. */
#ifndef LRA_PNG_H
#define LRA_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "../common/lra.h"

/* Decodes a PNG held in memory (any colour type; converted to 8-bit gray as libpng does) into
 * out (w*h bytes, row-major). The image must be exactly w x h. what names it in messages.
 * LRA_ERR_FORMAT for an empty, corrupt or wrongly sized image. */
lra_status lra_png_decode_gray(const void *data, size_t n, uint8_t *out, int w, int h, const char *what, char *err);

/* Writes w x h gray pixels as an 8-bit grayscale PNG at path (the caller renames into place). */
lra_status lra_png_write_gray(const char *path, const uint8_t *px, int w, int h, char *err);

#endif
