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
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        lra_status st = lra_mkdirs(dir, err);
        if (st != LRA_OK) return st;
    }
    char *text = cJSON_Print(j);
    if (!text) return lra_fail(err, LRA_ERR_NOMEM, "out of memory printing the report");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        lra_status st = lra_fail(err, LRA_ERR_IO, "%s: %s", tmp, strerror(errno));
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
