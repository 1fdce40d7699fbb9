/* fuzz.h - what the libFuzzer harnesses share. Our loaders read files and directories, so a
 * harness writes its input into a scratch directory of its own (removed at exit) and calls the
 * loader there. FUZZ_VERBOSE=1 keeps the stderr that noisy entry points (compare) otherwise send
 * to /dev/null. Build with `make fuzz`; docs/manual.md ("Fuzzing") says how to run them. */
#ifndef LRA_FUZZ_H
#define LRA_FUZZ_H

#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/lra.h"
#include "../datasets/datadir.h"

static char fuzz_root[64];

static inline void fuzz_cleanup(void) {
    if (fuzz_root[0]) lra_rmtree(fuzz_root, NULL);
}

/* The scratch directory, made on first use. */
static inline const char *fuzz_dir(void) {
    static int registered;
    if (!fuzz_root[0]) {
        snprintf(fuzz_root, sizeof fuzz_root, "/tmp/lra-fuzz-XXXXXX");
        if (!mkdtemp(fuzz_root)) { perror("mkdtemp"); abort(); }
        if (!registered++) atexit(fuzz_cleanup);
    }
    return fuzz_root;
}

/* Writes n bytes to fuzz_dir()/rel (parents created); returns the full path (static buffer). */
static inline const char *fuzz_file(const char *rel, const void *data, size_t n) {
    static char path[4096];
    char dir[4096];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), rel);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    *slash = '\0';
    if (lra_mkdirs(dir, NULL) != LRA_OK) abort();
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) { perror(path); abort(); }
    return path;
}

/* Silences stderr around a call (on = 1), then restores it (on = 0). */
static inline void fuzz_quiet(int on) {
    static int saved = -1;
    if (getenv("FUZZ_VERBOSE")) return;
    if (on) {
        fflush(stderr);
        saved = dup(2);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        close(null);
    } else if (saved >= 0) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        saved = -1;
    }
}

#endif
