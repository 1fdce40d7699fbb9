/* fetch_cmd.c - `lra-bench fetch --task=X | --all [--url=U] [--data-dir=D]`: where each task's
 * official data comes from (lra.md, "Data release and layout"), downloaded with datasets/fetch.c
 * and, for the LRA release, the task's part extracted next to it. */
#define _POSIX_C_SOURCE 200809L
#include "fetch_cmd.h"

#include <string.h>
#include <unistd.h>

#include "../datasets/archive.h"
#include "../datasets/datadir.h"
#include "../datasets/fetch.h"

typedef struct {
    const char *task, *url, *file, *md5;
    const char *const *extract; /* members of the release this task needs; NULL: read in place */
} source;

static const char *const listops_part[] = {"/listops-1000/", NULL};
static const char *const pathfinder_part[] = {"/pathfinder32/curv_contour_length_14/", NULL};
static const char *const pathx_part[] = {"/pathfinder128/curv_contour_length_14/", NULL};
static const char *const retrieval_part[] = {"/tsv_data/new_aan_pairs.", NULL};
#define RELEASE "https://storage.googleapis.com/long-range-arena/lra_release.gz"

static const source sources[] = {
    {"listops", RELEASE, "lra_release.gz", NULL, listops_part},
    {"text", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz", "aclImdb_v1.tar.gz",
     "7c2ac02c03563afcf9b574c7e56c153a", NULL},
    {"retrieval", RELEASE, "lra_release.gz", NULL, retrieval_part},
    {"image", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz",
     "c32a1d4ab5d03f1284b67883e8d87530", NULL},
    {"pathfinder", RELEASE, "lra_release.gz", NULL, pathfinder_part},
    {"pathx", RELEASE, "lra_release.gz", NULL, pathx_part},
};
enum { NSOURCES = sizeof sources / sizeof *sources };

/* Downloads file s->file and extracts, in one pass over the archive, the parts of every selected
 * source that shares it (--all reads the 7.7 GB release once, not once per task). */
static int fetch_one(const source *s, const int *selected, const char *dir, const char *url, char *err) {
    char dest[4400], names[256] = "";
    snprintf(dest, sizeof dest, "%s/%s", dir, s->file);
    const char *want[NSOURCES + 1];
    int nw = 0;
    for (int i = 0; i < NSOURCES; i++) {
        if (!selected[i] || strcmp(sources[i].file, s->file) != 0) continue;
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", sources[i].task);
        if (sources[i].extract) want[nw++] = sources[i].extract[0];
    }
    want[nw] = NULL;
    lra_fetch_req r = {url ? url : s->url, dest, s->md5, NULL, isatty(2), 60};
    fprintf(stderr, "lra-bench fetch: %s: %s -> %s%s\n", names, r.url, dest,
            s->md5 ? " (checked against the published md5 when complete)" : " (no published checksum)");
    lra_status st = lra_fetch(&r, err);
    if (st == LRA_OK && s->md5) fprintf(stderr, "lra-bench fetch: %s: md5 %s verified\n", dest, s->md5);
    if (st == LRA_OK && nw) {
        long n = 0, dup = 0;
        fprintf(stderr, "lra-bench fetch: %s: extracting", names);
        for (int i = 0; i < nw; i++) fprintf(stderr, " %s*", want[i]);
        fprintf(stderr, " from %s\n", dest);
        st = lra_archive_extract(dest, dir, want, &n, &dup, err);
        if (st == LRA_OK && n == 0)
            st = lra_fail(err, LRA_ERR_FORMAT, "%s: no member matching '%s' (not the LRA release?)", dest, want[0]);
        if (st == LRA_OK) {
            fprintf(stderr, "lra-bench fetch: %s: %ld files into %s", names, n, dir);
            if (dup) fprintf(stderr, " (%ld duplicate copies in the archive's second folder skipped)", dup);
            fprintf(stderr, "\n");
        }
    }
    return st;
}

int lra_fetch_main(int argc, char **argv) {
    const char *task = NULL, *url = NULL, *data = NULL;
    int all = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--task=", 7) == 0) task = a + 7;
        else if (strncmp(a, "--url=", 6) == 0) url = a + 6;
        else if (strncmp(a, "--data-dir=", 11) == 0) data = a + 11;
        else if (strcmp(a, "--all") == 0) all = 1;
        else {
            fprintf(stderr, "lra-bench fetch: unknown option '%s' (fetch --task=NAME | --all [--url=U] [--data-dir=D])\n", a);
            return 2;
        }
    }
    if (!task == !all) {
        fprintf(stderr, "lra-bench fetch: give --task=NAME or --all\n");
        return 2;
    }
    if (all && url) {
        fprintf(stderr, "lra-bench fetch: --url names one source; use it with --task\n");
        return 2;
    }
    const source *one = NULL;
    for (int i = 0; task && i < NSOURCES; i++)
        if (strcmp(sources[i].task, task) == 0) one = &sources[i];
    if (task && !one) {
        fprintf(stderr, "lra-bench fetch: no download for task '%s' (known: listops, text, retrieval, image, pathfinder, pathx)\n", task);
        return 2;
    }
    char dir[4096], err[LRA_ERR_LEN];
    lra_status st = lra_data_dir(dir, sizeof dir, data, err);
    if (st == LRA_OK) st = lra_mkdirs(dir, err);
    int selected[NSOURCES], done[NSOURCES] = {0};
    for (int i = 0; i < NSOURCES; i++) selected[i] = all || &sources[i] == one;
    for (int i = 0; st == LRA_OK && i < NSOURCES; i++) {
        if (!selected[i] || done[i]) continue;
        st = fetch_one(&sources[i], selected, dir, url, err);
        for (int j = i; j < NSOURCES; j++) done[j] |= strcmp(sources[j].file, sources[i].file) == 0;
    }
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench fetch: %s\n", err);
        return st == LRA_ERR_USAGE ? 2 : 1;
    }
    return 0;
}
