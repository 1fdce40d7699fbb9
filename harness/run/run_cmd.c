/* run_cmd.c - the `run` command (run.h): --seeds and --attn-opt lists expanded into runs
 * (runlist.h), every run's options checked before the first starts, then each run in turn. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "../encoder/dist.h"
#include "help.h"
#include "run.h"
#include "runlist.h"

static int exit_code(lra_status st) { return st == LRA_OK ? 0 : st == LRA_ERR_USAGE ? 2 : 1; }

/* after a run of several stopped: which were not run, and how to run them */
static void not_run(const lra_run_list *runs, int first) {
    int grid = 0;
    for (int k = 0; k < runs->run[first].argc; k++) grid |= !strncmp(runs->run[first].argv[k], "--attn-opt=", 11);
    if (grid) {
        fprintf(stderr, "lra-bench: not run: %d more runs of this command (in a `lra-bench batch` file it runs to the "
                "end, resuming what stopped)\n", runs->n - first);
        return;
    }
    char seeds[1024] = "";
    size_t used = 0;
    for (int r = first; r < runs->n; r++)
        for (int k = 0; k < runs->run[r].argc; k++)
            if (!strncmp(runs->run[r].argv[k], "--seed=", 7) && used < sizeof seeds)
                used += (size_t)snprintf(seeds + used, sizeof seeds - used, "%s%s", r > first ? "," : "",
                                         runs->run[r].argv[k] + 7);
    fprintf(stderr, "lra-bench: not run: seed%s %s (run them with the same options and --seeds=%s, or put the command "
            "in a `lra-bench batch` file, which resumes what stopped)\n", runs->n - first > 1 ? "s" : "", seeds, seeds);
}

/* run [options]: argv holds the options only (resume_cmd.h); --seeds and --attn-opt lists name
 * several runs (runlist.h), run one after another, one report each */
int lra_run_main(int argc, char **argv) {
    char err[LRA_ERR_LEN];
    lra_config c;
    int help = 0;
    for (int i = 0; i < argc; i++) help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    if (help) {
        const char *task = "listops";
        for (int i = 0; i < argc; i++)
            if (strncmp(argv[i], "--task=", 7) == 0) task = argv[i] + 7;
        lra_usage(stdout, task);
        return 0;
    }
    lra_run_list runs;
    lra_status st = lra_run_list_expand(&runs, argc, argv, err);
    for (int i = 0; st == LRA_OK && i < runs.n; i++) /* every run's options are checked before the first starts */
        st = lra_config_parse(&c, runs.run[i].argc, runs.run[i].argv, &help, err);
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench: %s\n", err);
        lra_run_list_free(&runs);
        return exit_code(st);
    }
    for (int i = 0; i < runs.n; i++) {
        char report[4096];
        lra_config_parse(&c, runs.run[i].argc, runs.run[i].argv, &help, err);
        st = lra_run(&c, report, sizeof report, err);
        if (st != LRA_OK && lra_dist_rank() != 0) break; /* rank 0 says it */
        if (report[0] && lra_dist_rank() == 0) printf("%s\n", report); /* stdout: the report, whenever one was written (partial too) */
        fflush(stdout);
        if (st != LRA_OK) {
            if (runs.n > 1) fprintf(stderr, "lra-bench: seed %ld%s%s: %s\n", c.seed, c.attn_opts[0] ? ", " : "", c.attn_opts, err);
            else fprintf(stderr, "lra-bench: %s\n", err);
            if (i + 1 < runs.n) not_run(&runs, i + 1);
            break;
        }
    }
    lra_run_list_free(&runs);
    return exit_code(st);
}
