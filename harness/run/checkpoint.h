/* checkpoint.h - a training run's state in one self-checking file, for exact resume.
 *
 * Layout (all integers little-endian; sections are raw bytes of this machine, float32 / uint32):
 *   "LRACKPT\n"                    magic, 8 bytes
 *   u32 format version             LRA_CHECKPOINT_VERSION
 *   u32 0x01020304                 byte-order mark: a checkpoint from another byte order is refused
 *   u64 H                          header length
 *   H bytes of JSON                the caller's fields, plus "sections": [{"name", "bytes"}, ...]
 *   the sections, back to back, in the order listed
 *   64 hex digits                  SHA-256 of everything above
 * The trailing hash makes a truncated or corrupted file fail as a whole, before any of it is used.
 * What the header holds (configuration, step, RNG and data-order state) is the caller's: see
 * harness/run/run.c, which also decides what "the same run" means when resuming. */
#ifndef LRA_CHECKPOINT_H
#define LRA_CHECKPOINT_H

#include <cjson/cJSON.h>

#include "../../common/atomic_file.h"

#include "../../common/lra.h"

#define LRA_CHECKPOINT_VERSION 1
#define LRA_CHECKPOINT_MAGIC "LRACKPT\n"

typedef struct {
    const char *name;
    const void *data;
    size_t bytes;
} lra_ckpt_section;

/* Writes header (borrowed, not modified) and the n sections to name->path through PATH.tmp.PID in
 * the same directory: written, flushed, fsync'd and put in place by lra_atomic_put_owned (over
 * the checkpoint this process wrote there before, never over another's: then under a free
 * numbered name, which name->path becomes and *moved says), then the directory fsync'd. On any
 * failure (full disk, file-size limit, read-only directory) the temporary file is removed, the
 * last good checkpoint is untouched, and err names the file and the reason. */
lra_status lra_checkpoint_write(lra_owned_name *name, int *moved, const cJSON *header, const lra_ckpt_section *s,
                                int n, char *err);

enum { LRA_CKPT_MAX_SECTIONS = 16 };

typedef struct {
    const uint8_t *data; /* the whole file (owned when read by lra_checkpoint_read) */
    size_t size;
    uint8_t *owned;
    cJSON *header; /* owned */
    int nsections;
    struct { char name[32]; size_t off, bytes; } sec[LRA_CKPT_MAX_SECTIONS];
} lra_checkpoint;

/* Reads and verifies a checkpoint file. LRA_ERR_IO when it cannot be read; LRA_ERR_FORMAT, with
 * err naming the file and what is wrong, for anything that is not a whole checkpoint of this
 * format version. On success the caller owns ck (lra_checkpoint_free). */
lra_status lra_checkpoint_read(const char *path, lra_checkpoint *ck, char *err);

/* The same checks on a buffer in memory (borrowed: it must outlive ck); name is used in messages.
 * This is the entry point the fuzzer drives. */
lra_status lra_checkpoint_parse(lra_checkpoint *ck, const uint8_t *buf, size_t n, const char *name, char *err);

/* Copies section `name` into dst, which holds exactly `bytes`; LRA_ERR_FORMAT when the section is
 * missing or has another size. */
lra_status lra_checkpoint_section(const lra_checkpoint *ck, const char *name, void *dst, size_t bytes, char *err);

void lra_checkpoint_free(lra_checkpoint *ck);

/* 1 when the file at path begins with the checkpoint magic. */
int lra_checkpoint_sniff(const char *path);

#endif
