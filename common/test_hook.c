/* test_hook.c - see test_hook.h. */
#include "test_hook.h"

#include <stdio.h>
#include <stdlib.h>

const char *lra_test_hook(const char *name) {
    char var[64];
    snprintf(var, sizeof var, "LRA_TEST_%s", name);
    const char *v = getenv(var);
    return v && *v ? v : NULL;
}
