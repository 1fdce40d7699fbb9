/* archive.c - libarchive behind lra_archive_walk: our own read callback feeds it the file and
 * hashes every byte it reads. */
#define _POSIX_C_SOURCE 200809L
#include "archive.h"

#include <errno.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "../common/sha256.h"
#include "../common/atomic_file.h"

struct lra_archive_member {
    struct archive *a;
    const char *path, *name;
};

typedef struct {
    FILE *f;
    lra_sha256 h;
    unsigned char buf[1 << 16];
    int read_error;
} source;

static la_ssize_t source_read(struct archive *a, void *user, const void **out) {
    (void)a;
    source *s = user;
    size_t got = fread(s->buf, 1, sizeof s->buf, s->f);
    if (got == 0 && ferror(s->f)) {
        s->read_error = errno ? errno : EIO;
        return -1;
    }
    lra_sha256_update(&s->h, s->buf, got);
    *out = s->buf;
    return (la_ssize_t)got;
}

int lra_archive_name_safe(const char *name) {
    if (!name[0] || name[0] == '/') return 0;
    for (const char *p = name; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
        p += n;
        while (*p == '/') p++;
    }
    return 1;
}

lra_status lra_archive_walk(const char *path, lra_archive_fn fn, void *user, char sha256[65], char *err) {
    source *s = calloc(1, sizeof *s);
    if (!s) return lra_fail(err, LRA_ERR_NOMEM, "%s: out of memory", path);
    if (!(s->f = fopen(path, "rb"))) {
        int e = errno;
        free(s);
        return lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(e));
    }
    lra_sha256_init(&s->h);
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    lra_status st = LRA_OK;
    if (archive_read_open(a, s, NULL, source_read, NULL) != ARCHIVE_OK)
        st = lra_fail(err, LRA_ERR_FORMAT, "%s: not a readable tar archive (%s)", path, archive_error_string(a));
    struct archive_entry *e;
    int r;
    while (st == LRA_OK && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
        if (r < ARCHIVE_WARN || r == ARCHIVE_RETRY) { /* RETRY: a damaged header, skipped */
            st = s->read_error ? lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(s->read_error))
                               : lra_fail(err, LRA_ERR_FORMAT, "%s: corrupt or truncated archive (%s)", path,
                                          archive_error_string(a));
            break;
        }
        const char *name = archive_entry_pathname(e);
        if (!name) continue;
        while (name[0] == '.' && name[1] == '/') name += 2;
        if (!name[0]) continue; /* "./" itself */
        if (!lra_archive_name_safe(name)) {
            st = lra_fail(err, LRA_ERR_FORMAT, "%s: member '%s' would escape the directory it is extracted into; "
                          "refusing the archive", path, archive_entry_pathname(e));
            break;
        }
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        lra_archive_member m = {a, path, name};
        st = fn(user, name, archive_entry_size_is_set(e) ? (int64_t)archive_entry_size(e) : -1, &m, err);
    }
    if (st == LRA_OK) {
        /* hash to the end of the file: libarchive stops at the end-of-archive marker, which ends a
         * sound archive within its last read or two. Much more after it is a marker read out of
         * damaged data (a corrupt gzip stream can decode to one), and the members after it lost. */
        long long after = 0;
        la_ssize_t got;
        while ((got = source_read(a, s, &(const void *){0})) > 0) after += got;
        if (s->read_error) st = lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(s->read_error));
        else if (after > (long long)(4 * sizeof s->buf))
            st = lra_fail(err, LRA_ERR_FORMAT, "%s: corrupt or truncated archive (its end-of-archive marker comes %lld "
                          "bytes before the end of the file)", path, after);
    }
    if (st == LRA_OK && sha256) lra_sha256_final_hex(&s->h, sha256);
    archive_read_free(a);
    fclose(s->f);
    free(s);
    return st;
}

ssize_t lra_archive_read(lra_archive_member *m, void *buf, size_t n, char *err) {
    la_ssize_t got = archive_read_data(m->a, buf, n);
    if (got < 0) {
        lra_fail(err, LRA_ERR_FORMAT, "%s: member '%s': corrupt or truncated archive (%s)", m->path, m->name,
                 archive_error_string(m->a));
        return -1;
    }
    return (ssize_t)got;
}

enum { MAX_WANT = 16, MAX_ROOT = 1024 };

typedef struct {
    const char *dir;
    const char *const *want;
    /* the release holds some folders twice (lra_release/listops-1000 and, nested,
     * lra_release/lra_release/listops-1000): each want keeps the copy under the first root it met */
    char root[MAX_WANT][MAX_ROOT];
    int rooted[MAX_WANT];
    long count, skipped;
    unsigned char buf[1 << 16];
} extractor;

static lra_status extract_member(void *user, const char *name, int64_t size, lra_archive_member *m, char *err) {
    (void)size;
    extractor *x = user;
    const char *at = NULL;
    int i;
    for (i = 0; x->want[i]; i++)
        if ((at = strstr(name, x->want[i]))) break;
    if (!at) return LRA_OK;
    size_t plen = (size_t)(at - name);
    if (plen >= MAX_ROOT) return lra_fail(err, LRA_ERR_FORMAT, "archive member %.80s...: name too long", name);
    if (!x->rooted[i]) {
        memcpy(x->root[i], name, plen);
        x->root[i][plen] = '\0';
        x->rooted[i] = 1;
    } else if (strlen(x->root[i]) != plen || memcmp(x->root[i], name, plen) != 0) {
        x->skipped++;
        return LRA_OK;
    }
    char path[8400];
    int w = snprintf(path, sizeof path, "%s/%s", x->dir, name);
    if (w < 0 || (size_t)w >= sizeof path) return lra_fail(err, LRA_ERR_FORMAT, "archive member %s: name too long", name);
    /* not fsync'd: an extraction lost to a crash is redone, and a release has ~200,000 members */
    lra_atomic_file a;
    lra_status st = lra_atomic_open(&a, path, err);
    if (st != LRA_OK) return st;
    ssize_t k;
    int ok = 1;
    while ((k = lra_archive_read(m, x->buf, sizeof x->buf, err)) > 0)
        if (fwrite(x->buf, 1, (size_t)k, a.f) != (size_t)k) { ok = 0; break; }
    if (k < 0) { /* the archive is damaged: err already says how */
        lra_atomic_finish(&a, 0, 0);
        return LRA_ERR_FORMAT;
    }
    int e = lra_atomic_commit(&a, ok, 0);
    if (e) return lra_fail(err, LRA_ERR_IO, "%s: write failed: %s", path, strerror(e));
    x->count++;
    return LRA_OK;
}

lra_status lra_archive_extract(const char *path, const char *dir, const char *const *want, long *count, long *skipped,
                               char *err) {
    int nw = 0;
    while (want[nw]) nw++;
    if (nw > MAX_WANT) return lra_fail(err, LRA_ERR_USAGE, "lra_archive_extract: more than %d patterns", MAX_WANT);
    extractor *x = calloc(1, sizeof *x);
    if (!x) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    x->dir = dir;
    x->want = want;
    lra_status st = lra_archive_walk(path, extract_member, x, NULL, err);
    if (count) *count = x->count;
    if (skipped) *skipped = x->skipped;
    free(x);
    return st;
}
