/* fuzz_report.c - report JSON as `lra-bench compare` reads it (harness/report/compare.c): the input is
 * one report, compared on its own and beside itself as a baseline, in both formats. */
#include "fuzz.h" /* first: it sets the feature macros */

#include "../harness/report/compare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static int once;
    if (!once++) { /* the tables go nowhere */
        if (!freopen("/dev/null", "w", stdout)) abort();
    }
    const char *path = fuzz_file("r.json", data, n);
    char file[4096], base[4200];
    snprintf(file, sizeof file, "%s", path);
    snprintf(base, sizeof base, "--baseline=%s", path);
    char *a1[] = {"--format=markdown", file, NULL};
    char *a2[] = {"--format=csv", base, "--max-regression=5", file, NULL};
    fuzz_quiet(1);
    lra_compare_main(2, a1);
    lra_compare_main(4, a2);
    fuzz_quiet(0);
    return 0;
}
