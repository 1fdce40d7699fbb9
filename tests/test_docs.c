/* test_docs.c - the documentation's links: every relative link of every Markdown file in the
 * repository names a file or folder inside it, and no file points outside the repository (no
 * absolute path, nothing above its root, nothing into the developers' shared folder). The same
 * checker run on a folder with planted bad links must count each of them. */
#define _GNU_SOURCE /* nftw's FTW_ACTIONRETVAL, to skip build folders */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests.h"

static char root_dir[PATH_MAX]; /* nftw's callback has no user pointer */
static char *problems;          /* one line per bad link */
static size_t problems_n, problems_used;
static int bad_links, md_files;

static void problem(const char *fmt, const char *file, const char *what) {
    if (problems_used < problems_n)
        problems_used += (size_t)snprintf(problems + problems_used, problems_n - problems_used, fmt, file, what);
    bad_links++;
}

/* the target of one link `](target)`: local, inside the root, existing */
static void check_target(const char *file, const char *target) {
    if (!strncmp(target, "http://", 7) || !strncmp(target, "https://", 8) || !strncmp(target, "mailto:", 7) ||
        target[0] == '#')
        return;
    char path[PATH_MAX], dir[PATH_MAX], resolved[PATH_MAX];
    snprintf(path, sizeof path, "%s", target);
    path[strcspn(path, "# ")] = '\0'; /* a fragment or a title */
    if (path[0] == '/') { problem("%s: absolute link %s\n", file, target); return; }
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    char joined[2 * PATH_MAX + 2];
    snprintf(joined, sizeof joined, "%s/%s", dir, path);
    if (!realpath(joined, resolved)) { problem("%s: broken link %s\n", file, target); return; }
    const size_t rl = strlen(root_dir);
    if (strncmp(resolved, root_dir, rl) != 0 || (resolved[rl] != '/' && resolved[rl] != '\0'))
        problem("%s: link outside the repository %s\n", file, target);
}

static void check_file(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) { problem("%s: %s\n", file, "cannot be read"); return; }
    char line[8192];
    int in_code = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "```", 3)) in_code = !in_code; /* code blocks hold shell, not links */
        if (in_code) continue;
        for (char *at = strstr(line, "]("); at; at = strstr(at + 2, "](")) {
            char target[PATH_MAX];
            size_t n = strcspn(at + 2, ")");
            if (n == 0 || n >= sizeof target || at[2 + n] != ')') continue;
            memcpy(target, at + 2, n);
            target[n] = '\0';
            check_target(file, target);
        }
    }
    fclose(f);
}

/* Markdown files, and every text file for references to the developers' shared folder, which
 * users do not have; build outputs and run results are not the repository's */
static int visit(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb;
    const char *base = path + ftw->base;
    if (type == FTW_D && ftw->level > 0 &&
        (!strncmp(base, "build", 5) || !strcmp(base, ".git") || !strncmp(base, "lra-tests", 9)))
        return FTW_SKIP_SUBTREE;
    if (type == FTW_D && ftw->level == 2 && !strncmp(path + strlen(root_dir), "/results/", 9))
        return FTW_SKIP_SUBTREE; /* results/<task>/: reports of runs */
    if (type != FTW_F) return 0;
    const char *dot = strrchr(base, '.');
    if (!dot) return 0;
    if (!strcmp(dot, ".md")) { check_file(path); md_files++; }
    if (strcmp(dot, ".md") && strcmp(dot, ".c") && strcmp(dot, ".h") && strcmp(dot, ".sh") && strcmp(dot, ".txt"))
        return 0;
    FILE *f = fopen(path, "r");
    char line[8192];
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "../" "shared")) { problem("%s: points at the developers' folder: %s", path, line); break; }
    if (f) fclose(f);
    return 0;
}

/* The number of bad links and references under root, each described in report. */
static int check_tree(const char *root, char *report, size_t n, int *files) {
    if (!realpath(root, root_dir)) return -1;
    problems = report;
    problems_n = n;
    problems_used = 0;
    report[0] = '\0';
    bad_links = md_files = 0;
    nftw(root_dir, visit, 16, FTW_PHYS | FTW_ACTIONRETVAL);
    *files = md_files;
    return bad_links;
}

START_TEST(test_repository_links) {
    char report[16384];
    int files;
    t_at_repo_root();
    int bad = check_tree(".", report, sizeof report, &files);
    ck_assert_msg(bad == 0, "%d bad links or references:\n%s", bad, report);
    ck_assert_msg(files >= 8, "only %d Markdown files found", files);
}
END_TEST

/* the planted faults: one good link and four bad ones, each counted once */
START_TEST(test_link_checker_catches) {
    const char *dir = t_tmpdir();
    char path[PATH_MAX], report[4096];
    snprintf(path, sizeof path, "%s/docs", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/docs/real.md", dir);
    t_write_file(path, "# real\n", 7);
    snprintf(path, sizeof path, "%s/README.md", dir);
    const char *md = "[good](docs/real.md#part) [web](https://example.org) [missing](docs/nope.md)\n"
                     "[above](../outside.md) [absolute](/etc/passwd)\n```\n[in code](not/checked.md)\n```\n"
                     "see ../" "shared/spec for the spec\n";
    t_write_file(path, md, strlen(md));
    int files, bad = check_tree(dir, report, sizeof report, &files);
    ck_assert_msg(bad == 4 && strstr(report, "broken link docs/nope.md") && strstr(report, "absolute link /etc/passwd") &&
                  strstr(report, "developers' folder"), "%d: %s", bad, report);
    ck_assert_int_eq(files, 2);
}
END_TEST

Suite *docs_suite(void) {
    Suite *s = suite_create("docs");
    TCase *tc = tcase_create("links");
    tcase_add_test(tc, test_repository_links);
    tcase_add_test(tc, test_link_checker_catches);
    suite_add_tcase(s, tc);
    return s;
}
