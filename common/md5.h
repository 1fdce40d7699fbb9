/* md5.h - MD5 (RFC 1321), streaming: the checksums published for the IMDB and CIFAR-10 archives
 * are MD5, so downloads are verified with it (not as a security measure). */
#ifndef LRA_MD5_H
#define LRA_MD5_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[4];
    uint64_t nbytes;
    uint8_t buf[64];
    size_t nbuf;
} lra_md5;

void lra_md5_init(lra_md5 *m);
void lra_md5_update(lra_md5 *m, const void *data, size_t n);
/* Writes 32 lowercase hex digits and a NUL into hex[33]. */
void lra_md5_final_hex(lra_md5 *m, char hex[33]);

#endif
