/* atomic_file.c - see atomic_file.h. */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

lra_status lra_atomic_open(lra_atomic_file *a, const char *path, char *err) {
    a->f = NULL;
    lra_status st = lra_mkdirs_parent(path, a->dir, sizeof a->dir, err);
    if (st != LRA_OK) return st;
    snprintf(a->path, sizeof a->path, "%s", path);
    int w = snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid());
    if (w < 0 || (size_t)w >= sizeof a->tmp) return lra_fail(err, LRA_ERR_IO, "%s: path too long", path);
    a->f = fopen(a->tmp, "wb");
    if (!a->f) return lra_fail(err, LRA_ERR_IO, "%s: %s", a->tmp, strerror(errno));
    return LRA_OK;
}

/* errno, or EIO where a failure left none (a short fwrite need not set it) */
static int why(void) { return errno ? errno : EIO; }

int lra_atomic_finish(lra_atomic_file *a, int ok, int flags) {
    int e = ok ? 0 : why();
    if (!e && fflush(a->f) != 0) e = why();
    if (!e && (flags & LRA_ATOMIC_SYNC) && fsync(fileno(a->f)) != 0) e = why();
    if (fclose(a->f) != 0 && !e) e = why();
    a->f = NULL;
    if (e) remove(a->tmp);
    return e;
}

/* a new name (rename or link) is durable only once its directory is */
static void sync_dir(const lra_atomic_file *a, int flags) {
    if (!(flags & LRA_ATOMIC_SYNC)) return;
    int d = open(a->dir, O_RDONLY);
    if (d >= 0) { fsync(d); close(d); }
}

int lra_atomic_rename(lra_atomic_file *a, int flags) {
    if (rename(a->tmp, a->path) != 0) {
        int e = why();
        remove(a->tmp);
        return e;
    }
    sync_dir(a, flags);
    return 0;
}

int lra_atomic_link_new(lra_atomic_file *a, const char *path, int flags) {
    int e = link(a->tmp, path) == 0 ? 0 : errno;
    if (e == EPERM || e == EOPNOTSUPP || e == ENOSYS) { /* no hard links here */
        if (access(path, F_OK) == 0) return EEXIST;
        e = rename(a->tmp, path) == 0 ? 0 : errno;
    } else if (!e) remove(a->tmp);
    if (e == EEXIST) return e;
    if (e) { remove(a->tmp); return e; }
    sync_dir(a, flags);
    return 0;
}

void lra_atomic_discard(lra_atomic_file *a) { remove(a->tmp); }

static int file_id(const char *path, unsigned long long id[6]) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    id[0] = (unsigned long long)st.st_dev;
    id[1] = (unsigned long long)st.st_ino;
    id[2] = (unsigned long long)st.st_size;
    id[3] = (unsigned long long)st.st_mtim.tv_sec * 1000000000ull + (unsigned long long)st.st_mtim.tv_nsec;
    id[4] = (unsigned long long)st.st_ctim.tv_sec * 1000000000ull + (unsigned long long)st.st_ctim.tv_nsec;
    id[5] = 0;
    return 1;
}

static int held_there(const lra_owned_name *o) {
    unsigned long long now[6];
    return o->held && file_id(o->path, now) && !memcmp(now, o->id, sizeof now);
}

static void hold(lra_owned_name *o) {
    o->held = file_id(o->path, o->id);
}

void lra_owned_init(lra_owned_name *o, const char *path, int adopt) {
    snprintf(o->path, sizeof o->path, "%s", path);
    o->held = 0;
    if (adopt) hold(o);
}

void lra_owned_remove(lra_owned_name *o) {
    if (held_there(o)) remove(o->path);
    o->held = 0;
}

int lra_atomic_claim(lra_atomic_file *a, lra_owned_name *o, int flags) {
    int e = lra_atomic_link_new(a, o->path, flags);
    if (!e) hold(o);
    return e;
}

int lra_atomic_put_owned(lra_atomic_file *a, lra_owned_name *o, int *moved, int flags) {
    *moved = 0;
    if (held_there(o)) {
        int e = lra_atomic_rename(a, flags);
        if (!e) hold(o);
        return e;
    }
    /* not ours (any more): the name where it is free, else the first free numbered one */
    char want[4200];
    snprintf(want, sizeof want, "%s", o->path);
    const char *slash = strrchr(want, '/'), *dot = strrchr(want, '.');
    const int stem = (int)(dot && (!slash || dot > slash) ? dot - want : (long)strlen(want));
    int e = lra_atomic_link_new(a, want, flags);
    for (int k = 2; e == EEXIST && k <= 100; k++) {
        int w = snprintf(o->path, sizeof o->path, "%.*s-%d%s", stem, want, k, want + stem);
        e = w > 0 && (size_t)w < sizeof o->path ? lra_atomic_link_new(a, o->path, flags) : ENAMETOOLONG;
        *moved = 1;
    }
    if (e) lra_atomic_discard(a); /* kept by a refused link; gone already after any other failure */
    if (e) { snprintf(o->path, sizeof o->path, "%s", want); *moved = 0; return e; }
    hold(o);
    return 0;
}

int lra_atomic_commit(lra_atomic_file *a, int ok, int flags) {
    int e = lra_atomic_finish(a, ok, flags);
    return e ? e : lra_atomic_rename(a, flags);
}

int lra_atomic_sweep(const char *path) {
    char dir[4096], stale[8400];
    if (!lra_dirname(path, dir, sizeof dir)) return 0;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0) continue;
        char *end;
        long pid = strtol(n + blen + 5, &end, 10);
        if (*end || end == n + blen + 5 || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* running (or not ours to ask) */
        snprintf(stale, sizeof stale, "%s/%s", dir, n);
        removed += remove(stale) == 0;
    }
    closedir(d);
    return removed;
}
