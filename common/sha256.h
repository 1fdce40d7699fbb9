/* sha256.h - SHA-256 (FIPS 180-4), streaming, for data checksums recorded in reports. */
#ifndef LRA_SHA256_H
#define LRA_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t nbytes;
    uint8_t buf[64];
    size_t nbuf;
} lra_sha256;

void lra_sha256_init(lra_sha256 *s);
void lra_sha256_update(lra_sha256 *s, const void *data, size_t n);
/* Writes 64 lowercase hex digits and a NUL into hex[65]. */
void lra_sha256_final_hex(lra_sha256 *s, char hex[65]);

#endif
