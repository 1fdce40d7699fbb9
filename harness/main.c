/* main.c - the lra-bench command line. Exit status: 0 success, 1 failure, 2 usage error. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "../attention/attention.h"
#include "encoder/dist.h"
#include "report/compare.h"
#include "report/plot.h"
#include "report/speed.h"
#include "run/batch_cmd.h"
#include "run/fetch_cmd.h"
#include "run/generate_cmd.h"
#include "run/help.h"
#include "run/resume_cmd.h"
#include "run/run.h"
#include "run/sysinfo.h"

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

static int command(int argc, char **argv);

/* Under mpirun every process runs the command (dist.h); MPI ends after it, whatever it returned. */
int main(int argc, char **argv) {
    lra_stop_init(); /* before MPI and OpenMP start threads: they inherit its signal mask (lra.h) */
    if (lra_dist_init(&argc, &argv)) return 1;
    const int rc = command(argc, argv);
    lra_dist_finalize();
    return rc;
}

static int command(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "--list-backends") == 0) { /* one name a line, for scripts */
        for (int i = 0; i < lra_attn_count(); i++) printf("%s\n", lra_attn_name_at(i));
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("lra-bench (git %s)\n", lra_git_commit());
        return 0;
    }
    int first = 1;
    if (argc < 2) { /* a bare command starts no hours-long run */
        fprintf(stderr, "usage: lra-bench [run] --task=NAME --backend=NAME [options]   (a training run)\n"
                        "       lra-bench resume|batch|generate|fetch|compare|speed|plot ...\n"
                        "       lra-bench --help   (every option and each profile's defaults)\n");
        return 2;
    }
    if (!strcmp(argv[1], "help")) { /* lra-bench help [COMMAND] */
        if (argc >= 3 && strcmp(argv[2], "run") != 0 && !lra_command_usage(argv[2])) {
            fprintf(stderr, "lra-bench help: unknown command '%s' (commands: run, resume, fetch, generate, compare, "
                            "speed, plot, batch)\n", argv[2]);
            return 2;
        }
        if (argc < 3 || !strcmp(argv[2], "run")) lra_usage(stdout, "listops");
        return 0;
    }
    if (strcmp(argv[1], "run") != 0 && wants_help(argc - 2, argv + 2) && lra_command_usage(argv[1])) return 0;
    if (argc >= 2 && strcmp(argv[1], "resume") == 0) return lra_resume_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "generate") == 0) return lra_generate_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "fetch") == 0) return lra_fetch_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "compare") == 0) return lra_compare_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "speed") == 0) return lra_speed_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "plot") == 0) return lra_plot_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "batch") == 0) return lra_batch_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "run") == 0) first = 2;
    else if (argc >= 2 && strncmp(argv[1], "-", 1) != 0) {
        fprintf(stderr, "lra-bench: unknown command '%s' (commands: run, batch, resume, fetch, generate, compare, speed, plot; see --help)\n", argv[1]);
        return 2;
    }
    return lra_run_main(argc - first, argv + first);
}
