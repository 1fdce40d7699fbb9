/* png.c - libpng's simplified API behind two calls. It never longjmps into our code: errors come
 * back in image.message. */
#include "png.h"

#include <string.h>

#include <png.h>

lra_status lra_png_decode_gray(const void *data, size_t n, uint8_t *out, int w, int h, const char *what, char *err) {
    if (n == 0) return lra_fail(err, LRA_ERR_FORMAT, "%s: empty file", what);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, data, n))
        return lra_fail(err, LRA_ERR_FORMAT, "%s: not a readable PNG (%s)", what, im.message);
    if ((int)im.width != w || (int)im.height != h) {
        png_image_free(&im);
        return lra_fail(err, LRA_ERR_FORMAT, "%s: %ux%u pixels, expected %dx%d", what, im.width, im.height, w, h);
    }
    im.format = PNG_FORMAT_GRAY;
    if (!png_image_finish_read(&im, NULL, out, w, NULL)) {
        lra_status st = lra_fail(err, LRA_ERR_FORMAT, "%s: corrupt PNG (%s)", what, im.message);
        png_image_free(&im);
        return st;
    }
    return LRA_OK;
}

lra_status lra_png_write_gray(const char *path, const uint8_t *px, int w, int h, char *err) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_GRAY;
    if (!png_image_write_to_file(&im, path, 0, px, w, NULL))
        return lra_fail(err, LRA_ERR_IO, "%s: cannot write PNG (%s)", path, im.message);
    return LRA_OK;
}
