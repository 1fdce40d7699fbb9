/* fetch_cmd.c - `lra-bench fetch --task=X | --all [--url=U] [--data-dir=D]`: each task's official
 * data (its lra_task_source, lra.md "Data release and layout"), downloaded with datasets/fetch.c
 * and, for the LRA release, the task's part extracted next to it. */
#define _POSIX_C_SOURCE 200809L
#include "fetch_cmd.h"

#include <string.h>
#include <unistd.h>

#include "../../datasets/archive.h"
#include "../../datasets/datadir.h"
#include "../../datasets/fetch.h"
#include "../../tasks/task.h"

/* Downloads file s->file and extracts, in one pass over the archive, the parts of every selected
 * source that shares it (--all reads the 7.7 GB release once, not once per task). */
static int fetch_one(const lra_task_source *s, const int *selected, const char *dir, const char *url, char *err) {
    char dest[4400], names[256] = "";
    snprintf(dest, sizeof dest, "%s/%s", dir, s->file);
    const char *want[LRA_MAX_TASKS + 1];
    int nw = 0;
    for (int i = 0; i < lra_task_count() && nw < LRA_MAX_TASKS; i++) {
        const lra_task_i *t = lra_task_at(i);
        if (!selected[i] || strcmp(t->source.file, s->file) != 0) continue;
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", t->name);
        if (t->source.extract) want[nw++] = t->source.extract[0];
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
    const lra_task_i *one = task ? lra_task_find(task) : NULL;
    if (task && one && !one->source.url) {
        fprintf(stderr, "lra-bench fetch: %s has nothing to download (its data is generated when a run needs it)\n", task);
        return 2;
    }
    if (task && !one) {
        char names[256];
        lra_task_names(names, sizeof names);
        fprintf(stderr, "lra-bench fetch: no download for task '%s' (known: %s)\n", task, names);
        return 2;
    }
    char dir[4096], err[LRA_ERR_LEN];
    lra_status st = lra_data_dir(dir, sizeof dir, data, err);
    if (st == LRA_OK) st = lra_mkdirs(dir, err);
    const int n = lra_task_count();
    int selected[LRA_MAX_TASKS] = {0}, done[LRA_MAX_TASKS] = {0};
    for (int i = 0; i < n && i < LRA_MAX_TASKS; i++)
        selected[i] = lra_task_at(i)->source.url && (all || lra_task_at(i) == one);
    for (int i = 0; st == LRA_OK && i < n && i < LRA_MAX_TASKS; i++) {
        if (!selected[i] || done[i]) continue;
        st = fetch_one(&lra_task_at(i)->source, selected, dir, url, err);
        for (int j = i; j < n && j < LRA_MAX_TASKS; j++)
            done[j] |= lra_task_at(j)->source.file && strcmp(lra_task_at(j)->source.file, lra_task_at(i)->source.file) == 0;
    }
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench fetch: %s\n", err);
        return st == LRA_ERR_USAGE ? 2 : 1;
    }
    return 0;
}
