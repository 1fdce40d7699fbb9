/* fuzz_checkpoint.c - checkpoint files (harness/run/checkpoint.c) and what `lra-bench resume` does
 * with their header. Each input is parsed as it is, then with its SHA-256 appended, so that
 * mutations reach the header and section parsing behind the hash check instead of stopping at
 * it (the seed corpus holds checkpoints without their trailing hash). */
#include "fuzz.h" /* first: it sets the feature macros */

#include <cjson/cJSON.h>

#include "../common/sha256.h"
#include "../harness/run/checkpoint.h"
#include "../harness/run/config.h"

static void one(const uint8_t *data, size_t n, int fix) {
    uint8_t *buf = malloc(n + 64);
    memcpy(buf, data, n);
    size_t len = n;
    if (fix) {
        lra_sha256 h;
        char hex[65];
        lra_sha256_init(&h);
        lra_sha256_update(&h, buf, n);
        lra_sha256_final_hex(&h, hex);
        memcpy(buf + n, hex, 64);
        len += 64;
    }
    lra_checkpoint ck;
    char err[LRA_ERR_LEN];
    if (lra_checkpoint_parse(&ck, buf, len, "fuzz.ckpt", err) == LRA_OK) {
        static float x[4096];
        for (int i = 0; i < ck.nsections; i++)
            if (ck.sec[i].bytes <= sizeof x) lra_checkpoint_section(&ck, ck.sec[i].name, x, ck.sec[i].bytes, err);
        lra_checkpoint_section(&ck, "params", x, 16, err);
        char *args[128];
        int k = lra_config_args_from_json(cJSON_GetObjectItemCaseSensitive(ck.header, "config"), args, 128);
        lra_config c;
        int help;
        if (k > 0) lra_config_parse(&c, k, args, &help, err);
        for (int i = 0; i < k; i++) free(args[i]);
        lra_checkpoint_free(&ck);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    one(data, n, 0);
    one(data, n, 1);
    return 0;
}
