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
};
enum { NSOURCES = sizeof sources / sizeof *sources };

static int fetch_one(const source *s, const char *dir, const char *url, char *err) {
    char dest[4400];
    snprintf(dest, sizeof dest, "%s/%s", dir, s->file);
    lra_fetch_req r = {url ? url : s->url, dest, s->md5, NULL, isatty(2), 60};
    fprintf(stderr, "lra-bench fetch: %s: %s -> %s%s\n", s->task, r.url, dest,
            s->md5 ? " (md5 verified)" : " (no published checksum)");
    lra_status st = lra_fetch(&r, err);
    if (st == LRA_OK && s->extract) {
        long n = 0;
        fprintf(stderr, "lra-bench fetch: %s: extracting %s* from %s\n", s->task, s->extract[0], dest);
        st = lra_archive_extract(dest, dir, s->extract, &n, err);
        if (st == LRA_OK && n == 0)
            st = lra_fail(err, LRA_ERR_FORMAT, "%s: no member matching '%s' (not the LRA release?)", dest, s->extract[0]);
        if (st == LRA_OK) fprintf(stderr, "lra-bench fetch: %s: %ld files into %s\n", s->task, n, dir);
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
        fprintf(stderr, "lra-bench fetch: no download for task '%s' (known: listops, text, retrieval, image, pathfinder)\n", task);
        return 2;
    }
    char dir[4096], err[LRA_ERR_LEN];
    lra_status st = lra_data_dir(dir, sizeof dir, data, err);
    if (st == LRA_OK) st = lra_mkdirs(dir, err);
    for (int i = 0; st == LRA_OK && i < NSOURCES; i++)
        if (all ? 1 : &sources[i] == one) st = fetch_one(&sources[i], dir, url, err);
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench fetch: %s\n", err);
        return st == LRA_ERR_USAGE ? 2 : 1;
    }
    return 0;
}
