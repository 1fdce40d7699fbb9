/* fuzz_archive.c - tar/gzip member handling (datasets/archive.c): any bytes as an archive, read
 * as the IMDB source (member names -> label and id, contents -> tokens) and extracted as the LRA
 * release is (member-name safety). Extraction goes three directories deep into the scratch tree;
 * anything that appears beside those directories escaped, and aborts. */
#include "fuzz.h" /* first: it sets the feature macros */

#include <dirent.h>

#include "../datasets/archive.h"
#include "../tasks/text.h"

static int entries(const char *dir) {
    DIR *d = opendir(dir);
    int k = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        k += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *path = fuzz_file("a/b/c/in.tar.gz", data, n);
    char archive[4096], out[4096], err[LRA_ERR_LEN];
    snprintf(archive, sizeof archive, "%s", path);
    lra_split s;
    if (lra_text_load(&s, archive, "train", 1000, err) == LRA_OK) lra_split_free(&s);
    snprintf(out, sizeof out, "%s/a/b/c/out", fuzz_dir());
    lra_rmtree(out, NULL);
    static const char *const want[] = {"listops-1000/", "tsv_data/", "pathfinder32/", NULL};
    long count = 0;
    lra_archive_extract(archive, out, want, &count, NULL, err);
    char level[4096];
    snprintf(level, sizeof level, "%s/a/b/c", fuzz_dir());
    int inside = entries(level); /* in.tar.gz and (maybe) out */
    snprintf(level, sizeof level, "%s/a/b", fuzz_dir());
    int b = entries(level);
    snprintf(level, sizeof level, "%s/a", fuzz_dir());
    int a = entries(level);
    if (inside > 2 || b != 1 || a != 1 || entries(fuzz_dir()) != 1) {
        fprintf(stderr, "an archive member escaped the extraction directory\n");
        abort();
    }
    lra_rmtree(out, NULL);
    return 0;
}
