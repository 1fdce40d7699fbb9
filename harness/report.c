/* report.c - see report.h. */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../datasets/atomic_file.h"

lra_status lra_write_json_atomic(const char *path, const cJSON *j, char *err) {
    char *text = cJSON_Print(j);
    if (!text) return lra_fail(err, LRA_ERR_NOMEM, "out of memory printing the report");
    lra_atomic_file a;
    lra_status st = lra_atomic_open(&a, path, err);
    if (st == LRA_OK) {
        size_t n = strlen(text);
        int e = lra_atomic_commit(&a, fwrite(text, 1, n, a.f) == n && fputc('\n', a.f) != EOF, LRA_ATOMIC_SYNC);
        if (e) st = lra_fail(err, LRA_ERR_IO, "%s: could not write the report: %s", path, strerror(e));
    }
    free(text);
    return st;
}

cJSON *lra_read_json(const char *path, lra_status *st, char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { *st = lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno)); return NULL; }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
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
    if (!j && bad) /* reading a directory fails here, with EISDIR */
        *st = lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(bad));
    else if (!j) { /* say where the JSON stops making sense: line and column */
        const size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
        size_t line = 1, col = 1;
        for (size_t i = 0; i < at; i++) {
            if (text[i] == '\n') { line++; col = 1; } else col++;
        }
        size_t rest = at + 1; /* nothing but blanks after the error: the file stops mid-value */
        while (rest < len && (text[rest] == ' ' || text[rest] == '\n' || text[rest] == '\r' || text[rest] == '\t')) rest++;
        *st = lra_fail(err, LRA_ERR_FORMAT, "%s:%zu:%zu: not valid JSON %s", path, line, col,
                       rest >= len ? "(the file ends too early: truncated?)" : "here");
    }
    free(text);
    return j;
}
