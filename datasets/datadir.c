/* datadir.c - see datadir.h. */
#define _XOPEN_SOURCE 700
#include "datadir.h"

#include "atomic_file.h"

#include <errno.h>
#include <string.h>
#include <ftw.h>
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

lra_status lra_mkdirs(const char *path, char *err) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return lra_fail(err, LRA_ERR_IO, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return lra_fail(err, LRA_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return LRA_OK;
}

int lra_dirname(const char *path, char *dir, size_t n) {
    if (strlen(path) >= n || n < 2) return 0;
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, n, ".");
    else snprintf(dir, n, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return 1;
}

lra_status lra_mkdirs_parent(const char *path, char *dir, size_t n, char *err) {
    if (!lra_dirname(path, dir, n)) return lra_fail(err, LRA_ERR_IO, "%s: path too long", path);
    return strchr(path, '/') && strcmp(dir, "/") != 0 ? lra_mkdirs(dir, err) : LRA_OK;
}

lra_status lra_generated_mark(const char *dir, unsigned long long seed, char *err) {
    char path[4400];
    snprintf(path, sizeof path, "%s/GENERATED_BY_LRA_BENCH", dir);
    lra_atomic_file a;
    lra_status st = lra_atomic_open(&a, path, err);
    if (st != LRA_OK) return st;
    fprintf(a.f, "generator seed %llu\n", seed);
    int e = lra_atomic_commit(&a, !ferror(a.f), LRA_ATOMIC_SYNC);
    return e ? lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(e)) : LRA_OK;
}

int lra_generated_seed(const char *dir, unsigned long long *seed) {
    char path[4400];
    snprintf(path, sizeof path, "%s/GENERATED_BY_LRA_BENCH", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fscanf(f, "generator seed %llu", seed) == 1;
    fclose(f);
    return ok;
}

int lra_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

lra_status lra_rmtree(const char *path, char *err) {
    struct stat st;
    if (lstat(path, &st) != 0) return LRA_OK;
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return lra_fail(err, LRA_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    return LRA_OK;
}
