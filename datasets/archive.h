/* archive.h - streaming reads of tar archives (plain, gzip, ...) through libarchive.
 *
 * One pass over the archive: every regular-file member is offered to a callback, which reads
 * what it wants of the member's bytes (the rest is skipped). The archive's own bytes are hashed
 * on the way, so a loader records the sha256 of exactly the file it read, without a second pass.
 * Member names that would escape a directory they were extracted into (absolute paths, ".."
 * components) make the whole archive an error: an archive with such a member is not one we
 * trust, whether or not we extract it. */
#ifndef LRA_ARCHIVE_H
#define LRA_ARCHIVE_H

#include <stdint.h>
#include <sys/types.h>

#include "../common/lra.h"

typedef struct lra_archive_member lra_archive_member;

/* Called once per regular-file member, in archive order. name is the member's path with any
 * leading "./" removed; size its declared size. Returning anything but LRA_OK stops the walk
 * and becomes the walk's result (with the callback's message in err). */
typedef lra_status (*lra_archive_fn)(void *user, const char *name, int64_t size, lra_archive_member *m, char *err);

/* Walks the archive at path. sha256 (may be NULL) receives the hex digest of the archive file's
 * bytes when the walk completes. Errors: LRA_ERR_IO (cannot open or read), LRA_ERR_FORMAT
 * (not an archive, truncated or corrupt, unsafe member name), or the callback's status. */
lra_status lra_archive_walk(const char *path, lra_archive_fn fn, void *user, char sha256[65], char *err);

/* Reads up to n bytes of the current member into buf; returns the count (0 at its end), or -1
 * with the message in err when the archive is corrupt or truncated. */
ssize_t lra_archive_read(lra_archive_member *m, void *buf, size_t n, char *err);

/* 1 when name is a relative path without "." or ".." components that would leave its
 * directory (the check lra_archive_walk applies to every member). */
int lra_archive_name_safe(const char *name);

/* Extracts the regular-file members whose path contains one of the NULL-terminated `want`
 * substrings (at most 16) into dir (keeping their paths), each through a temporary file renamed
 * when complete. Where a want matches under two roots (the release's duplicate folders:
 * lra_release/X and lra_release/lra_release/X), only the members under the root met first are
 * extracted. *count receives the number written, *skipped the duplicates passed over (either
 * may be NULL). A member that would escape dir stops the extraction with an error: nothing is
 * ever written outside dir. */
lra_status lra_archive_extract(const char *path, const char *dir, const char *const *want, long *count, long *skipped,
                               char *err);

#endif
