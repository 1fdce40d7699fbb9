/* resume_cmd.c - `lra-bench resume FILE`: a run's options rebuilt from its checkpoint or report,
 * then the run continued through `lra-bench run --resume` (run_cmd.c, run_checkpoint.c). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/fs.h"
#include "../../common/json_file.h"
#include "checkpoint.h"
#include "config.h"
#include "resume_cmd.h"
#include "run.h"

/* the directory holding p exists */
static int parent_exists(const char *p) {
    char dir[4096];
    if (!lra_dirname(p, dir, sizeof dir)) return 0;
    struct stat sb;
    return stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A run records its report and checkpoint paths as it was given them, relative to its working
 * directory. Resumed from another directory, such a path is taken beside the file the user
 * named (where a run puts its checkpoint by default) when it does not resolve from here:
 * must_exist says whether it must name an existing file (the checkpoint) or only an existing
 * directory (the report, which a killed run may not have written). */
static void beside(char *out, size_t n, const char *recorded, const char *named, int must_exist) {
    snprintf(out, n, "%s", recorded);
    if (!recorded[0] || recorded[0] == '/') return;
    if (must_exist ? lra_file_exists(recorded) : parent_exists(recorded)) return;
    const char *slash = strrchr(named, '/'), *base = strrchr(recorded, '/');
    snprintf(out, n, "%.*s%s", slash ? (int)(slash - named + 1) : 0, named, base ? base + 1 : recorded);
}

/* `lra-bench resume FILE [options]`: rebuilds the run's options from a checkpoint's header (or from a report,
 * which names its checkpoint) and runs again with --resume; options given after FILE come last,
 * so they win, and lra_run refuses the ones that would change the numbers. */
int lra_resume_main(int argc, char **argv) {
    if (argc < 1 || strncmp(argv[0], "--", 2) == 0) {
        fprintf(stderr, "lra-bench resume: name a checkpoint (.ckpt) or a report (.json) first\n");
        return 2;
    }
    const char *file = argv[0];
    char err[LRA_ERR_LEN], ckpt[4096], report[4096];
    lra_status st;
    cJSON *src = NULL; /* owned */
    const cJSON *config = NULL;
    const size_t len = strlen(file);
    /* by its magic, or by its name: a damaged checkpoint is named as one, not as bad JSON */
    if (lra_checkpoint_sniff(file) || (len > 5 && strcmp(file + len - 5, ".ckpt") == 0)) {
        lra_checkpoint ck;
        if ((st = lra_checkpoint_read(file, &ck, err)) != LRA_OK) {
            fprintf(stderr, "lra-bench resume: %s\n", err);
            return st == LRA_ERR_USAGE ? 2 : 1;
        }
        src = ck.header;
        ck.header = NULL;
        lra_checkpoint_free(&ck);
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(src, "report");
        snprintf(ckpt, sizeof ckpt, "%s", file);
        beside(report, sizeof report, cJSON_IsString(rp) ? rp->valuestring : "", file, 0);
    } else {
        if (!(src = lra_read_json(file, &st, err))) {
            fprintf(stderr, "lra-bench resume: %s\n", err);
            return st == LRA_ERR_USAGE ? 2 : 1;
        }
        const cJSON *ck = cJSON_GetObjectItemCaseSensitive(src, "checkpoint");
        const cJSON *cp = cJSON_GetObjectItemCaseSensitive(ck, "path");
        char guess[4096];
        lra_run_checkpoint_beside(file, guess, sizeof guess);
        /* a report written before the run's first checkpoint names none: the one beside it */
        const char *named = cJSON_IsString(cp) ? cp->valuestring : lra_file_exists(guess) ? guess : NULL;
        if (!named) {
            fprintf(stderr, "lra-bench resume: %s names no checkpoint (the run wrote none: see --checkpoint-every)\n", file);
            cJSON_Delete(src);
            return 1;
        }
        beside(ckpt, sizeof ckpt, named, file, 1);
        snprintf(report, sizeof report, "%s", file);
    }
    config = cJSON_GetObjectItemCaseSensitive(src, "config");
    enum { MAXA = 128 };
    char *args[MAXA + 4];
    int n = lra_config_args_from_json(config, args, MAXA - argc);
    cJSON_Delete(src);
    if (n < 0) {
        fprintf(stderr, "lra-bench resume: %s holds no run configuration\n", file);
        return 1;
    }
    char copt[4200], ropt[4200];
    snprintf(copt, sizeof copt, "--checkpoint=%s", ckpt);
    snprintf(ropt, sizeof ropt, "--out=%s", report);
    int total = n;
    if (report[0]) args[total++] = ropt;
    args[total++] = copt;
    for (int i = 1; i < argc && total < MAXA + 2; i++) args[total++] = argv[i];
    args[total++] = "--resume";
    int rc = lra_run_main(total, args);
    for (int i = 0; i < n; i++) free(args[i]);
    return rc;
}

