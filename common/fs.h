/* fs.h - file-system helpers shared by every layer: directories, existence, removal. */
#ifndef LRA_FS_H
#define LRA_FS_H

#include "lra.h"

/* mkdir -p */
lra_status lra_mkdirs(const char *path, char *err);
/* The directory holding path into dir (n bytes): "." for a bare name, "/" for a file at the root.
 * 0 when path does not fit. */
int lra_dirname(const char *path, char *dir, size_t n);
/* mkdir -p of the directory holding the file path; writes that directory ("." for a bare name)
 * into dir (n bytes), for writers that fsync it or put a temporary file beside path. */
lra_status lra_mkdirs_parent(const char *path, char *dir, size_t n, char *err);
int lra_file_exists(const char *path);
/* path made absolute through its directory's real path (the file itself need not exist), into
 * out (n bytes); path as it is where its directory does not resolve or the result does not fit.
 * Reports record their checkpoint, and checkpoints their report, so: a run resumed from another
 * directory would otherwise record paths relative to wherever the resuming shell stood. */
void lra_absolute_path(const char *path, char *out, size_t n);
/* rm -r: removes path and everything under it (no error when it does not exist). */
lra_status lra_rmtree(const char *path, char *err);
/* rmdir of every folder under path, and path, that holds no file: what was made for files that
 * never came (an interrupted generation). Never removes a file; errors are ignored. */
void lra_remove_empty_dirs(const char *path);

/* A run's lock: an flock on the file lock_path, held while the process lives and let go by the
 * kernel when it dies, however it dies, so "is that run still going?" has an answer that a killed
 * process cannot leave wrong. lra_lock_take: 0 and *fd where taken; EBUSY where another process
 * holds it; else an errno. lra_lock_drop removes the file, then lets go. A file left by a killed
 * run is unlocked, and taken again. */
int lra_lock_take(const char *lock_path, int *fd);
void lra_lock_drop(const char *lock_path, int fd);

#endif
