/* fuzz_options.c - command-line option parsing (harness/run/config.c) and the backends' --attn-opt
 * parsers: the input's lines are the arguments. A configuration that parses must survive the
 * round trip `lra-bench resume` makes (report config -> arguments -> configuration) unchanged,
 * and its backend must either accept its options or refuse them with a message. */
#include "fuzz.h" /* first: it sets the feature macros */

#include <cjson/cJSON.h>

#include "../attention/attention.h"
#include "../harness/run/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    enum { MAXA = 32 };
    char *text = malloc(n + 1), *argv[MAXA];
    memcpy(text, data, n);
    text[n] = '\0';
    int argc = 0;
    for (char *p = text; argc < MAXA;) {
        argv[argc++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    lra_config c, c2;
    int help;
    char err[LRA_ERR_LEN];
    if (lra_config_parse(&c, argc, argv, &help, err) == LRA_OK && !help) {
        cJSON *j = lra_config_to_json(&c);
        char *args[128];
        int k = lra_config_args_from_json(j, args, 128);
        if (lra_config_parse(&c2, k, args, &help, err) != LRA_OK) {
            fprintf(stderr, "the report's options do not parse again: %s\n", err);
            abort();
        }
        cJSON *a = lra_config_identity_json(&c), *b = lra_config_identity_json(&c2);
        char diff[1024];
        if (lra_config_diff(a, "the report", b, diff, sizeof diff)) {
            fprintf(stderr, "options changed in the round trip: %s\n", diff);
            abort();
        }
        cJSON_Delete(a);
        cJSON_Delete(b);
        for (int i = 0; i < k; i++) free(args[i]);
        cJSON_Delete(j);
        lra_attn h;
        lra_attn_shape sh = {2, 2, 16, 4};
        if (lra_attn_create(&h, c.backend, c.attn_opts, sh, 1, err) == LRA_OK) lra_attn_free(&h);
        else if (!err[0]) { fprintf(stderr, "refused without a message\n"); abort(); }
    }
    free(text);
    return 0;
}
