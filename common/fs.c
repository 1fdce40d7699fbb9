/* fs.c - see fs.h. */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700
#include "fs.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

void lra_absolute_path(const char *path, char *out, size_t n) {
    char dir[4096], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    snprintf(out, n, "%s", path);
    if (!path[0] || path[0] == '/' || !lra_dirname(path, dir, sizeof dir) || !realpath(dir, real)) return;
    const int w = snprintf(out, n, "%s/%s", strcmp(real, "/") ? real : "", slash ? slash + 1 : path);
    if (w < 0 || (size_t)w >= n) snprintf(out, n, "%s", path);
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

static int rmdir_one(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb; (void)ftw;
    if (type == FTW_DP) rmdir(path); /* fails, harmlessly, on a folder that holds a file */
    return 0;
}

void lra_remove_empty_dirs(const char *path) { nftw(path, rmdir_one, 16, FTW_DEPTH | FTW_PHYS); }

int lra_lock_take(const char *lock_path, int *fd) {
    for (int tries = 0; tries < 100; tries++) {
        int f = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (f < 0) return errno;
        if (flock(f, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(f);
            return e == EWOULDBLOCK ? EBUSY : e;
        }
        /* the holder we waited on may have removed the file between our open and our lock: a
         * lock on a name no longer there excludes nobody, so take the one that is there now */
        struct stat held, named;
        if (fstat(f, &held) == 0 && stat(lock_path, &named) == 0 && held.st_ino == named.st_ino &&
            held.st_dev == named.st_dev) {
            *fd = f;
            return 0;
        }
        close(f);
    }
    return EBUSY;
}

void lra_lock_drop(const char *lock_path, int fd) {
    if (fd < 0) return;
    unlink(lock_path); /* while held: whoever opens the name next makes a new file */
    close(fd);
}
