/* atomic_file.h - replacing a file whole or not at all.
 *
 * Every file lra-bench writes for later (reports, checkpoints, generated splits, extracted
 * archive members, plots) goes to PATH.tmp.PID first and is renamed over PATH only once all of it
 * is written, so a reader, a full disk or a kill sees the old file or the complete new one, never
 * half of one. A failed write removes its temporary file. */
#ifndef LRA_ATOMIC_FILE_H
#define LRA_ATOMIC_FILE_H

#include <stdio.h>

#include "../common/lra.h"

/* flags: LRA_ATOMIC_SYNC fsyncs the file before the rename and its directory after it, so the new
 * file survives a power loss too (reports, checkpoints, generated data). Without it the rename
 * still makes the file appear whole, which is enough for what can be extracted again. */
enum { LRA_ATOMIC_SYNC = 1 };

typedef struct {
    FILE *f;          /* the caller writes through this between open and finish */
    char path[4096];  /* the final name */
    char tmp[4200];   /* path.tmp.PID */
    char dir[4096];   /* path's directory, fsync'd after the rename */
} lra_atomic_file;

/* Creates path's directory (mkdir -p) and opens path.tmp.PID for writing. On failure a->f is NULL
 * and err names the file. */
lra_status lra_atomic_open(lra_atomic_file *a, const char *path, char *err);

/* Flushes (and with LRA_ATOMIC_SYNC fsyncs) and closes the temporary file. ok is the caller's
 * verdict on its own writes (0: one failed, errno still says why). Returns 0, or the errno of the
 * first failure, in which case the temporary file is removed. */
int lra_atomic_finish(lra_atomic_file *a, int ok, int flags);

/* Renames a finished temporary file over path (then fsyncs the directory with LRA_ATOMIC_SYNC).
 * Returns 0, or errno after removing the temporary file. */
int lra_atomic_rename(lra_atomic_file *a, int flags);

/* Gives a finished temporary file the name `path` only where no file has it yet (a hard link, then
 * the temporary name removed), so it never replaces another's file, even one made a moment ago.
 * Returns 0; EEXIST with the temporary file kept for another name; or another errno after
 * removing it. Where the file system has no hard links, an existence check and a rename instead. */
int lra_atomic_link_new(lra_atomic_file *a, const char *path, int flags);

/* Removes a finished temporary file that will not be renamed (another file of the same set failed). */
void lra_atomic_discard(lra_atomic_file *a);

/* finish, then rename: the one call of a writer with a single file. */
int lra_atomic_commit(lra_atomic_file *a, int ok, int flags);

/* Removes path.tmp.PID files whose writer is gone (no process PID here): what a SIGKILL or a
 * crash left halfway. Called once per run for its report and checkpoint, not per write (it
 * reads the whole directory). Returns the number removed. */
int lra_atomic_sweep(const char *path);

#endif
