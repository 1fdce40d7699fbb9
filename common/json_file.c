/* json_file.c - see json_file.h. */
#define _POSIX_C_SOURCE 200809L
#include "json_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

lra_status lra_write_json_tmp(lra_atomic_file *a, const char *path, const cJSON *j, char *err) {
    char *text = cJSON_Print(j);
    if (!text) return lra_fail(err, LRA_ERR_NOMEM, "out of memory printing the report");
    lra_status st = lra_atomic_open(a, path, err);
    if (st == LRA_OK) {
        size_t n = strlen(text);
        int e = lra_atomic_finish(a, fwrite(text, 1, n, a->f) == n && fputc('\n', a->f) != EOF, LRA_ATOMIC_SYNC);
        if (e) st = lra_fail(err, LRA_ERR_IO, "%s: could not write the report: %s", path, strerror(e));
    }
    free(text);
    return st;
}

lra_status lra_write_json_atomic(const char *path, const cJSON *j, char *err) {
    lra_atomic_file a;
    lra_status st = lra_write_json_tmp(&a, path, j, err);
    if (st != LRA_OK) return st;
    int e = lra_atomic_rename(&a, LRA_ATOMIC_SYNC);
    return e ? lra_fail(err, LRA_ERR_IO, "%s: could not write the report: %s", path, strerror(e)) : LRA_OK;
}

lra_status lra_write_json_new(const char *path, const cJSON *j, char *written, size_t n, char *err) {
    lra_atomic_file a;
    lra_status st = lra_write_json_tmp(&a, path, j, err);
    if (st != LRA_OK) return st;
    lra_owned_name name; /* holding nothing: path where free, else path-2.json .. path-100.json */
    lra_owned_init(&name, path, 0);
    int moved, e = lra_atomic_put_owned(&a, &name, &moved, LRA_ATOMIC_SYNC);
    snprintf(written, n, "%s", name.path);
    if (e == EEXIST)
        return lra_fail(err, LRA_ERR_IO, "%s: taken, and so are its names -2 .. -100: report not written", path);
    return e ? lra_fail(err, LRA_ERR_IO, "%s: could not write the report: %s", written, strerror(e)) : LRA_OK;
}

/* the first position at or after i in text (len bytes) that is not a blank */
static size_t skip_blanks(const char *text, size_t i, size_t len) {
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) i++;
    return i;
}

/* 1-based line and column of byte `at` of text */
static void line_col(const char *text, size_t at, size_t *line, size_t *col) {
    *line = *col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') { (*line)++; *col = 1; } else (*col)++;
    }
}

cJSON *lra_read_json(const char *path, lra_status *st, char *err) {
    struct stat sb; /* a device would be read without end, a FIFO's open waits for a writer */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) {
        *st = lra_fail(err, LRA_ERR_IO, "%s: not a regular file (a report is a JSON file)", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) { *st = lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno)); return NULL; }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len > LRA_JSON_MAX_BYTES) {
            free(text);
            fclose(f);
            *st = lra_fail(err, LRA_ERR_FORMAT, "%s: more than %d MiB: not a report or checkpoint header", path,
                           LRA_JSON_MAX_BYTES >> 20);
            return NULL;
        }
        if (cap - len < 65536) {
            char *t = realloc(text, cap = cap ? 2 * cap : 1 << 16);
            if (!t) {
                free(text);
                fclose(f);
                *st = lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", path);
                return NULL;
            }
            text = t;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (!got) break;
    }
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    text[len] = '\0';
    const char *end = NULL;
    cJSON *j = bad ? NULL : cJSON_ParseWithLengthOpts(text, len, &end, 0);
    const size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
    size_t line, col;
    if (j && skip_blanks(text, at, len) < len) { /* junk, or a second value, after the first: not one report */
        cJSON_Delete(j);
        j = NULL;
        line_col(text, skip_blanks(text, at, len), &line, &col);
        *st = lra_fail(err, LRA_ERR_FORMAT, "%s:%zu:%zu: text after the JSON value (one report per file)", path, line, col);
    } else if (!j && bad) /* reading a directory fails here, with EISDIR */
        *st = lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(bad));
    else if (!j) { /* say where the JSON stops making sense: line and column */
        line_col(text, at, &line, &col);
        /* nothing but blanks after the error: the file stops mid-value */
        *st = lra_fail(err, LRA_ERR_FORMAT, "%s:%zu:%zu: not valid JSON %s", path, line, col,
                       skip_blanks(text, at + 1, len) >= len ? "(the file ends too early: truncated?)" : "here");
    }
    free(text);
    return j;
}
