/* json_file.h - JSON files written safely and read with errors that name the place. */
#ifndef LRA_JSON_FILE_H
#define LRA_JSON_FILE_H

#include <cjson/cJSON.h>

#include "atomic_file.h"
#include "lra.h"

/* Writes j (pretty-printed) to path through a temporary file in the same directory, flushed
 * and renamed over path only when complete: a failure leaves the previous file untouched and no
 * partial file under either name. Creates missing parent directories. */
lra_status lra_write_json_atomic(const char *path, const cJSON *j, char *err);

/* j, pretty-printed, into a finished temporary file for path (atomic_file.h), which the caller
 * then names (renames, links, claims) or discards. */
lra_status lra_write_json_tmp(lra_atomic_file *a, const char *path, const cJSON *j, char *err);

/* Like lra_write_json_atomic, but never replaces a file: where path is taken (even by a file made
 * while this one was written) the report goes to the first free name of PATH-2.json ..
 * PATH-100.json (PATH without its .json). The name used is left in written (n bytes). */
lra_status lra_write_json_new(const char *path, const cJSON *j, char *written, size_t n, char *err);

/* Reads and parses a JSON file holding one value; NULL with *st and err naming the file on failure:
 * a device or FIFO, more than LRA_JSON_MAX_BYTES, invalid JSON (line and column) or text after the
 * value. Caller owns. */
enum { LRA_JSON_MAX_BYTES = 64 << 20 }; /* a report with a 100,000-point curve is a few MB */
cJSON *lra_read_json(const char *path, lra_status *st, char *err);

#endif
