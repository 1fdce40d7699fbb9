/* datadir.c - see datadir.h. */
#define _XOPEN_SOURCE 700
#include "datadir.h"

#include "../common/atomic_file.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>

lra_status lra_data_dir(char *out, size_t n, const char *explicit_dir, char *err) {
    const char *env;
    int w;
    if (explicit_dir && *explicit_dir) w = snprintf(out, n, "%s", explicit_dir);
    else if ((env = getenv("LRA_DATA_DIR")) && *env) w = snprintf(out, n, "%s", env);
    else if ((env = getenv("XDG_CACHE_HOME")) && *env) w = snprintf(out, n, "%s/lra-bench", env);
    else if ((env = getenv("HOME")) && *env) w = snprintf(out, n, "%s/.cache/lra-bench", env);
    else return lra_fail(err, LRA_ERR_USAGE, "no data directory: pass --data-dir or set LRA_DATA_DIR");
    if (w < 0 || (size_t)w >= n) return lra_fail(err, LRA_ERR_USAGE, "data directory path too long");
    /* a directory the user named must exist: a typo would otherwise get generated data where the
     * official files were meant; only the default cache is created */
    const int named = (explicit_dir && *explicit_dir) || ((env = getenv("LRA_DATA_DIR")) && *env);
    struct stat sb;
    if (named && (stat(out, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        return lra_fail(err, LRA_ERR_USAGE, "%s %s is not a directory (a data directory you name must exist; only the "
                        "default cache is created)", explicit_dir && *explicit_dir ? "--data-dir" : "LRA_DATA_DIR", out);
    return LRA_OK;
}

lra_status lra_generated_mark(const char *dir, unsigned long long seed, const char *note, char *err) {
    char path[4400];
    snprintf(path, sizeof path, "%s/GENERATED_BY_LRA_BENCH", dir);
    lra_atomic_file a;
    lra_status st = lra_atomic_open(&a, path, err);
    if (st != LRA_OK) return st;
    fprintf(a.f, "generator seed %llu\n", seed);
    if (note) fprintf(a.f, "%s\n", note);
    int e = lra_atomic_commit(&a, !ferror(a.f), LRA_ATOMIC_SYNC);
    return e ? lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(e)) : LRA_OK;
}

int lra_generated_seed(const char *dir, unsigned long long *seed, char *note, size_t n) {
    char path[4400];
    snprintf(path, sizeof path, "%s/GENERATED_BY_LRA_BENCH", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fscanf(f, "generator seed %llu\n", seed) == 1;
    if (note && n) {
        if (!ok || !fgets(note, (int)n, f)) note[0] = '\0';
        note[strcspn(note, "\n")] = '\0';
    }
    fclose(f);
    return ok;
}

