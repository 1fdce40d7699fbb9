/* atomic_file.h - replacing a file whole or not at all.
 *
 * Every file lra-bench writes for later (reports, checkpoints, generated splits, extracted
 * archive members, plots) goes to PATH.tmp.PID first and is renamed over PATH only once all of it
 * is written, so a reader, a full disk or a kill sees the old file or the complete new one, never
 * half of one. A failed write removes its temporary file. */
#ifndef LRA_ATOMIC_FILE_H
#define LRA_ATOMIC_FILE_H

#include <stdio.h>

#include "lra.h"

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

/* A name a run writes again and again (its report, its checkpoint), held by the file this process
 * put there last, told by device, inode, size and change times (an inode number alone is reused at
 * once when a file is removed and another made): a rename replaces only that file, never one
 * another process made under the name meanwhile (two runs started at the same instant with one
 * --out). */
typedef struct {
    char path[4200]; /* where the file is now: the name asked for, or the free one taken instead */
    int held;        /* the file at path is ours: id says which */
    unsigned long long id[6]; /* dev, ino, size, mtime and ctime in ns */
} lra_owned_name;

/* o->path from path, with nothing held yet; or, with adopt, the file there now held as ours (a
 * resumed run's own report, or what --overwrite may replace). */
void lra_owned_init(lra_owned_name *o, const char *path, int adopt);

/* Claims o->path with a finished temporary file: a hard link that fails where the name exists
 * (EEXIST, the temporary file kept) even when another process made it a moment ago; on success
 * the file is held. Returns 0 or errno. */
int lra_atomic_claim(lra_atomic_file *a, lra_owned_name *o, int flags);

/* Puts a finished temporary file at o->path: over the file held there, else (nothing held, or the
 * file there is not ours) under the name where it is free, else under the first free of
 * stem-2.ext .. stem-100.ext, which o->path then becomes (*moved set). Never replaces a file it
 * does not hold. Returns 0 or errno (EEXIST: every name taken), the temporary file removed. */
int lra_atomic_put_owned(lra_atomic_file *a, lra_owned_name *o, int *moved, int flags);

/* Removes the file at o->path if it is the one held (a claim given up); nothing is held after. */
void lra_owned_remove(lra_owned_name *o);

/* Removes a finished temporary file that will not be renamed (another file of the same set failed). */
void lra_atomic_discard(lra_atomic_file *a);

/* finish, then rename: the one call of a writer with a single file. */
int lra_atomic_commit(lra_atomic_file *a, int ok, int flags);

/* Removes path.tmp.PID files whose writer is gone (no process PID here): what a SIGKILL or a
 * crash left halfway. Called once per run for its report and checkpoint, not per write (it
 * reads the whole directory). Returns the number removed. */
int lra_atomic_sweep(const char *path);

#endif
