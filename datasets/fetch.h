/* fetch.h - downloads through libcurl: a progress bar, resume of an interrupted download (HTTP
 * Range), md5/sha256 verification, and a file that appears under its final name only when it is
 * complete and verified. file:// URLs work too (local copies, mirrors on disk). */
#ifndef LRA_FETCH_H
#define LRA_FETCH_H

#include "../common/lra.h"

typedef struct {
    const char *url;
    const char *dest;   /* final path; the download goes to dest.part until verified */
    const char *md5;    /* expected hex digest, or NULL */
    const char *sha256; /* expected hex digest, or NULL */
    int progress;       /* 1: a progress bar on stderr */
    long timeout_s;     /* give up when no byte arrives for this long (0: 60 s) */
} lra_fetch_req;

/* Downloads r->url to r->dest. An existing dest is kept (and verified when a checksum is known);
 * an existing dest.part is resumed from its end. On a checksum mismatch dest.part is deleted and
 * the result is LRA_ERR_CHECKSUM naming both digests. HTTP errors are LRA_ERR_NET with the status
 * and what to do (403: access refused; 404: not there). */
lra_status lra_fetch(const lra_fetch_req *r, char *err);

/* Hex digests of a whole file (md5 into md5[33], sha256 into sha[65]; either may be NULL). */
lra_status lra_file_digests(const char *path, char md5[33], char sha[65], char *err);

#endif
