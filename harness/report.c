/* report.c - see report.h. */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../datasets/datadir.h"

lra_status lra_write_json_atomic(const char *path, const cJSON *j, char *err) {
    char dir[4096], tmp[4200];
    lra_status st = lra_mkdirs_parent(path, dir, sizeof dir, err);
    if (st != LRA_OK) return st;
    char *text = cJSON_Print(j);
    if (!text) return lra_fail(err, LRA_ERR_NOMEM, "out of memory printing the report");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = lra_fail(err, LRA_ERR_IO, "%s: %s", tmp, strerror(errno));
        free(text);
        return st;
    }
    size_t n = strlen(text);
    int bad = fwrite(text, 1, n, f) != n || fputc('\n', f) == EOF || fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    free(text);
    if (bad || rename(tmp, path) != 0) {
        if (!bad) e = errno;
        remove(tmp);
        return lra_fail(err, LRA_ERR_IO, "%s: could not write the report: %s", path, strerror(e));
    }
    return LRA_OK;
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
    int bad = ferror(f);
    fclose(f);
    text[len] = '\0';
    cJSON *j = bad ? NULL : cJSON_Parse(text);
    free(text);
    if (!j) *st = lra_fail(err, bad ? LRA_ERR_IO : LRA_ERR_FORMAT, "%s: %s", path, bad ? "read error" : "not a JSON report");
    return j;
}
