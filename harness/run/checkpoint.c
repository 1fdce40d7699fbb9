/* checkpoint.c - see checkpoint.h. */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include "../../common/test_hook.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/atomic_file.h"
#include "../../common/sha256.h"

enum { PREFIX = 24, TRAILER = 64 }; /* magic + version + byte-order mark + header length; hex hash */

static void put_u32(uint8_t *p, uint32_t x) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(x >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t x) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(x >> (8 * i)); }
static uint32_t get_u32(const uint8_t *p) { uint32_t x = 0; for (int i = 3; i >= 0; i--) x = x << 8 | p[i]; return x; }
static uint64_t get_u64(const uint8_t *p) { uint64_t x = 0; for (int i = 7; i >= 0; i--) x = x << 8 | p[i]; return x; }

/* The STOP_IN_CHECKPOINT test hook: a partial temporary file on disk for a test to SIGKILL over. */
static void test_stop_midway(void) {
    static int calls;
    const char *e = lra_test_hook("STOP_IN_CHECKPOINT");
    if (e && atoi(e) == ++calls) raise(SIGSTOP);
}

static int put(FILE *f, lra_sha256 *h, const void *p, size_t n) {
    lra_sha256_update(h, p, n);
    return fwrite(p, 1, n, f) == n;
}

lra_status lra_checkpoint_write(lra_owned_name *name, int *moved, const cJSON *header, const lra_ckpt_section *s,
                                int n, char *err) {
    const char *path = name->path;
    cJSON *h = cJSON_Duplicate(header, 1);
    cJSON *list = h ? cJSON_AddArrayToObject(h, "sections") : NULL;
    for (int i = 0; list && i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", s[i].name);
        cJSON_AddNumberToObject(e, "bytes", (double)s[i].bytes);
        cJSON_AddItemToArray(list, e);
    }
    char *text = list ? cJSON_PrintUnformatted(h) : NULL;
    cJSON_Delete(h);
    if (!text) return lra_fail(err, LRA_ERR_NOMEM, "out of memory writing checkpoint %s", path);

    lra_atomic_file a;
    lra_status st = lra_atomic_open(&a, path, err);
    if (st != LRA_OK) { free(text); return st; }
    lra_sha256 hash;
    lra_sha256_init(&hash);
    uint8_t prefix[PREFIX];
    memcpy(prefix, LRA_CHECKPOINT_MAGIC, 8);
    put_u32(prefix + 8, LRA_CHECKPOINT_VERSION);
    put_u32(prefix + 12, 0x01020304u);
    put_u64(prefix + 16, strlen(text));
    int ok = put(a.f, &hash, prefix, PREFIX) && put(a.f, &hash, text, strlen(text));
    free(text);
    for (int i = 0; ok && i < n; i++) {
        if (i == n / 2) { ok = fflush(a.f) == 0; test_stop_midway(); }
        ok = ok && put(a.f, &hash, s[i].data, s[i].bytes);
    }
    char hex[65];
    lra_sha256_final_hex(&hash, hex);
    ok = ok && fwrite(hex, 1, TRAILER, a.f) == TRAILER;
    int e = lra_atomic_finish(&a, ok, LRA_ATOMIC_SYNC);
    if (!e) e = lra_atomic_put_owned(&a, name, moved, LRA_ATOMIC_SYNC);
    if (e)
        return lra_fail(err, LRA_ERR_IO, "%s: could not write the checkpoint (%s); the previous one, if any, is untouched",
                        name->path, strerror(e));
    return LRA_OK;
}

lra_status lra_checkpoint_parse(lra_checkpoint *ck, const uint8_t *buf, size_t n, const char *name, char *err) {
    memset(ck, 0, sizeof *ck);
    if (n < 8 || memcmp(buf, LRA_CHECKPOINT_MAGIC, 8) != 0)
        return lra_fail(err, LRA_ERR_FORMAT, "%s: not an lra-bench checkpoint (it does not begin with the checkpoint's "
                        "magic: damaged, or another kind of file)", name);
    if (n < PREFIX + TRAILER)
        return lra_fail(err, LRA_ERR_FORMAT, "%s: truncated checkpoint (%zu bytes)", name, n);
    uint32_t version = get_u32(buf + 8);
    if (version != LRA_CHECKPOINT_VERSION)
        return lra_fail(err, LRA_ERR_FORMAT, "%s: checkpoint format version %u; this lra-bench reads version %d",
                        name, version, LRA_CHECKPOINT_VERSION);
    if (get_u32(buf + 12) != 0x01020304u)
        return lra_fail(err, LRA_ERR_FORMAT, "%s: checkpoint written on a machine of another byte order", name);
    lra_sha256 h;
    char want[65];
    lra_sha256_init(&h);
    lra_sha256_update(&h, buf, n - TRAILER);
    lra_sha256_final_hex(&h, want);
    if (memcmp(want, buf + n - TRAILER, TRAILER) != 0)
        return lra_fail(err, LRA_ERR_FORMAT, "%s: checkpoint is truncated or corrupt (its SHA-256 does not match)", name);
    const uint64_t hl = get_u64(buf + 16), body = n - PREFIX - TRAILER;
    if (hl > body) return lra_fail(err, LRA_ERR_FORMAT, "%s: header length %llu exceeds the file", name, (unsigned long long)hl);
    ck->header = cJSON_ParseWithLength((const char *)buf + PREFIX, (size_t)hl);
    if (!cJSON_IsObject(ck->header)) {
        lra_checkpoint_free(ck);
        return lra_fail(err, LRA_ERR_FORMAT, "%s: checkpoint header is not a JSON object", name);
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(ck->header, "sections"), *e;
    size_t off = PREFIX + (size_t)hl;
    if (!cJSON_IsArray(list)) {
        lra_checkpoint_free(ck);
        return lra_fail(err, LRA_ERR_FORMAT, "%s: checkpoint header lists no sections", name);
    }
    cJSON_ArrayForEach(e, list) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *by = cJSON_GetObjectItemCaseSensitive(e, "bytes");
        if (ck->nsections == LRA_CKPT_MAX_SECTIONS || !cJSON_IsString(nm) || strlen(nm->valuestring) >= 32 ||
            !cJSON_IsNumber(by) || !(by->valuedouble >= 0) || by->valuedouble > (double)(n - TRAILER - off)) {
            lra_checkpoint_free(ck);
            return lra_fail(err, LRA_ERR_FORMAT, "%s: checkpoint section %d is malformed or exceeds the file", name,
                            ck->nsections);
        }
        snprintf(ck->sec[ck->nsections].name, 32, "%s", nm->valuestring);
        ck->sec[ck->nsections].off = off;
        ck->sec[ck->nsections].bytes = (size_t)by->valuedouble;
        off += (size_t)by->valuedouble;
        ck->nsections++;
    }
    if (off != n - TRAILER) {
        lra_checkpoint_free(ck);
        return lra_fail(err, LRA_ERR_FORMAT, "%s: checkpoint sections do not add up to the file's size", name);
    }
    ck->data = buf;
    ck->size = n;
    return LRA_OK;
}

lra_status lra_checkpoint_read(const char *path, lra_checkpoint *ck, char *err) {
    memset(ck, 0, sizeof *ck);
    struct stat sb; /* a device has no size to read, a FIFO's open waits for a writer */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return lra_fail(err, LRA_ERR_IO, "%s: not a regular file (a checkpoint is one)", path);
    FILE *f = fopen(path, "rb");
    if (!f) return lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        int e = errno;
        fclose(f);
        free(buf);
        return lra_fail(err, size < 0 || buf ? LRA_ERR_IO : LRA_ERR_NOMEM, "%s: cannot read: %s", path,
                        buf || size < 0 ? strerror(e ? e : EIO) : "out of memory");
    }
    fclose(f);
    lra_status st = lra_checkpoint_parse(ck, buf, (size_t)size, path, err);
    if (st != LRA_OK) { free(buf); return st; }
    ck->owned = buf;
    return LRA_OK;
}

lra_status lra_checkpoint_section(const lra_checkpoint *ck, const char *name, void *dst, size_t bytes, char *err) {
    for (int i = 0; i < ck->nsections; i++) {
        if (strcmp(ck->sec[i].name, name) != 0) continue;
        if (ck->sec[i].bytes != bytes)
            return lra_fail(err, LRA_ERR_FORMAT, "checkpoint section '%s' holds %zu bytes where this run needs %zu",
                            name, ck->sec[i].bytes, bytes);
        memcpy(dst, ck->data + ck->sec[i].off, bytes);
        return LRA_OK;
    }
    return lra_fail(err, LRA_ERR_FORMAT, "checkpoint has no section '%s'", name);
}

void lra_checkpoint_free(lra_checkpoint *ck) {
    cJSON_Delete(ck->header);
    free(ck->owned);
    memset(ck, 0, sizeof *ck);
}

int lra_checkpoint_sniff(const char *path) {
    char magic[8];
    struct stat sb; /* only a regular file can be one (a FIFO's open would wait for a writer) */
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int yes = fread(magic, 1, 8, f) == 8 && memcmp(magic, LRA_CHECKPOINT_MAGIC, 8) == 0;
    fclose(f);
    return yes;
}
