/* main.c - the lra-bench command line. Exit status: 0 success, 1 failure, 2 usage error. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "../attention/attention.h"
#include "../datasets/datadir.h"
#include "../datasets/listops_gen.h"
#include "../tasks/task.h"
#include "compare.h"
#include "config.h"
#include "plot.h"
#include "run.h"
#include "speed.h"
#include "sysinfo.h"

static void usage(FILE *f, const char *task) {
    fprintf(f,
            "usage: lra-bench [run] --task=NAME --backend=NAME [--profile=small|official|ci] [--seeds=1,2,3] [options]\n"
            "       lra-bench generate --task=listops --out=DIR [--sizes=TRAIN,VAL,TEST] [--data-seed=N]\n"
            "       lra-bench compare [--format=markdown|csv] [--baseline=FILE,... --max-regression=P] FILES...\n"
            "       lra-bench speed [--backend=full,mita] [--lengths=1024,...,16384] [--batch=1] [--heads=4] [--hs=64]\n"
            "                       [--layers=2] [--warmup=1] [--repeats=5] [--mem-limit=24G] [--encoder=0|1] [--out=F]\n"
            "       lra-bench plot [--out=results/plots] FILES...   (SVG charts from speed and run reports)\n"
            "       lra-bench --help | --version | --list-backends\n\n"
            "Trains the LRA encoder with the chosen attention backend on a task, evaluates it on every\n"
            "example of the validation and test splits and writes a JSON report. Options are --name=value;\n"
            "a profile sets the defaults (columns below) and every option overrides it. --seeds=1,2,3 runs\n"
            "the configuration once per seed, one report each (compare aggregates them).\n\n");
    lra_config_print_help(f, task);
    fprintf(f, "\nattention backends:\n");
    for (const lra_attn_i *const *b = lra_attn_registry(); *b; b++)
        fprintf(f, "  %-8s %s\n", (*b)->name, (*b)->summary);
    fprintf(f,
            "\ntasks:\n"
            "  listops  official TSVs basic_{train,val,test}.tsv under the data directory (also in\n"
            "           listops-1000/ or the release's lra_release/lra_release/listops-1000/); when none\n"
            "           are found, the official generator writes 96000/2000/2000 examples there first\n"
            "  text     IMDB reviews as bytes (+1), 2 classes; train = IMDB train, val = test = IMDB test;\n"
            "           reads aclImdb_v1.tar.gz, aclImdb-reviews.tar.gz or an extracted aclImdb/ in the data\n"
            "           directory (download the archive from https://ai.stanford.edu/~amaas/data/sentiment/)\n\n"
            "environment: LRA_DATA_DIR (data directory), OPENBLAS_CORETYPE (recorded in reports)\n"
            "\ncompare: tables from reports (test accuracy per backend x task with mean +- sd over seeds, the\n"
            "LRA average and the published Transformer row; throughput, memory and the 10%% parameter rule).\n"
            "With --baseline, exit status 3 when test accuracy or training tokens/s fell more than P%%.\n\n"
            "speed: per length and backend, the attention layer alone (forward, forward+backward) and an\n"
            "encoder training step (emb = heads x hs, mlp = 2 emb), medians and IQR over the repeats after the\n"
            "warm-up; a configuration planned above --mem-limit (default: physical memory) is marked OOM.\n"
            "Prints the LRA paper's Table 2 shape and writes results/speed/speed-<time>.json (or --out).\n\n"
            "exit status: 0 success, 1 failure (I/O, bad data, divergence), 2 usage error\n");
}

static int exit_code(lra_status st) { return st == LRA_OK ? 0 : st == LRA_ERR_USAGE ? 2 : 1; }

static int cmd_generate(int argc, char **argv) {
    char err[LRA_ERR_LEN];
    const char *out = NULL, *task = "listops";
    lra_listops_gen_cfg g;
    lra_listops_gen_defaults(&g);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--out=", 6) == 0) out = a + 6;
        else if (strncmp(a, "--task=", 7) == 0) task = a + 7;
        else if (strncmp(a, "--data-seed=", 12) == 0) g.seed = strtoull(a + 12, NULL, 10);
        else if (strncmp(a, "--sizes=", 8) == 0) {
            if (sscanf(a + 8, "%ld,%ld,%ld", &g.n_train, &g.n_val, &g.n_test) != 3 || g.n_train < 1 ||
                g.n_val < 1 || g.n_test < 1) {
                fprintf(stderr, "lra-bench generate: --sizes='%s' must be three positive counts TRAIN,VAL,TEST\n", a + 8);
                return 2;
            }
        } else {
            fprintf(stderr, "lra-bench generate: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (strcmp(task, "listops") != 0) {
        fprintf(stderr, "lra-bench generate: no offline generator for task '%s' (available: listops)\n", task);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "lra-bench generate: --out=DIR is required\n");
        return 2;
    }
    lra_status st = lra_mkdirs(out, err);
    if (st == LRA_OK) st = lra_listops_generate(out, &g, err);
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench generate: %s\n", err);
        return exit_code(st);
    }
    fprintf(stderr, "lra-bench: wrote %s/basic_{train,val,test}.tsv (%ld/%ld/%ld examples, seed %llu)\n", out,
            g.n_train, g.n_val, g.n_test, (unsigned long long)g.seed);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "--list-backends") == 0) { /* one name a line, for scripts */
        for (const lra_attn_i *const *b = lra_attn_registry(); *b; b++) printf("%s\n", (*b)->name);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("lra-bench (git %s)\n", lra_git_commit());
        return 0;
    }
    int first = 1;
    if (argc >= 2 && strcmp(argv[1], "generate") == 0) return cmd_generate(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "compare") == 0) return lra_compare_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "speed") == 0) return lra_speed_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "plot") == 0) return lra_plot_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "run") == 0) first = 2;
    else if (argc >= 2 && strncmp(argv[1], "-", 1) != 0) {
        fprintf(stderr, "lra-bench: unknown command '%s' (commands: run, generate, compare, speed, plot; see --help)\n", argv[1]);
        return 2;
    }
    /* --seeds=1,2,3: the same configuration once per seed, one report each */
    long seeds[64];
    int nseeds = 0, nargs = 0;
    char **args = calloc((size_t)argc + 1, sizeof(char *));
    for (int i = first; i < argc; i++) {
        if (strncmp(argv[i], "--seeds=", 8) != 0) { args[nargs++] = argv[i]; continue; }
        char *p = argv[i] + 8, *end;
        while (*p) {
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || (*end && *end != ',') || nseeds == 64) {
                fprintf(stderr, "lra-bench: --seeds='%s' must be up to 64 comma-separated seeds >= 0\n", argv[i] + 8);
                free(args);
                return 2;
            }
            seeds[nseeds++] = v;
            p = *end ? end + 1 : end;
        }
    }
    lra_config c;
    int help = 0;
    char err[LRA_ERR_LEN];
    lra_status st = lra_config_parse(&c, nargs, args, &help, err);
    free(args);
    if (help) {
        const char *task = "listops";
        for (int i = first; i < argc; i++)
            if (strncmp(argv[i], "--task=", 7) == 0) task = argv[i] + 7;
        usage(stdout, task);
        return 0;
    }
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench: %s\n", err);
        return exit_code(st);
    }
    if (nseeds > 1 && c.out[0]) {
        fprintf(stderr, "lra-bench: --out names one report; with --seeds leave it out (reports go to "
                        "results/<task>/<backend>-<profile>-seed<N>.json)\n");
        return 2;
    }
    if (nseeds == 0) seeds[nseeds++] = c.seed;
    for (int i = 0; i < nseeds; i++) {
        char report[4096];
        c.seed = seeds[i];
        st = lra_run(&c, report, sizeof report, err);
        if (st != LRA_OK) {
            fprintf(stderr, "lra-bench: seed %ld: %s\n", c.seed, err);
            return exit_code(st);
        }
        printf("%s\n", report);
        fflush(stdout);
    }
    return 0;
}
