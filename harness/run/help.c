/* help.c - see help.h: what --help, `lra-bench help COMMAND` and COMMAND --help print. */
#define _POSIX_C_SOURCE 200809L
#include "help.h"

#include <string.h>

#include "../../attention/attention.h"
#include "../../tasks/task.h"
#include "batch_cmd.h"
#include "config.h"

void lra_usage(FILE *f, const char *task) {
    fprintf(f,
            "usage: lra-bench [run] --task=NAME --backend=NAME [--profile=repro|official|ci] [--seeds=1,2,3] [options]\n"
            "       lra-bench generate --task=listops --out=DIR [--sizes=TRAIN,VAL,TEST] [--lengths=500,2000] [--data-seed=N]\n"
            "       lra-bench generate --task=pathfinder|pathx --out=DIR [--images=200000] [--contour=14] [--data-seed=N]\n"
            "                          [--preview=FILE.png]  (a 4x4 sheet of the first 16 images instead)\n"
            "       lra-bench resume CHECKPOINT|REPORT [options]   (continues a stopped run exactly)\n"
            "       lra-bench batch FILE [--threads=N]   (runs a file of runs to the end, resuming what stopped)\n"
            "       lra-bench fetch --task=NAME | --all [--url=URL] [--data-dir=DIR]   (downloads, resumable)\n"
            "       lra-bench compare [--format=markdown|csv] [--select=best|last|both] [--target=ACC|TASK=ACC,...]\n"
            "                         [--baseline-backend=NAME] [--baseline=FILE,... --max-regression=P ...] FILES...\n"
            "       lra-bench speed [--backend=full,mita] [--lengths=1024,...,16384] [--batch=1] [--heads=4] [--hs=64]\n"
            "                       [--layers=2] [--warmup=1] [--repeats=5] [--mem-limit=24G] [--encoder=0|1] [--out=F]\n"
            "       mpirun -np P lra-bench [run|resume|speed] ... --grad-shards=S   (data-parallel, P <= S; docs/manual.md)\n"
            "       lra-bench plot [--out=results/plots] FILES...   (SVG charts from speed and run reports)\n"
            "       lra-bench --help | --version | --list-backends | help [COMMAND] | COMMAND --help\n\n"
            "Trains the LRA encoder with the chosen attention backend on a task, evaluates it on the\n"
            "validation and test splits (every example; the ci profile a fixed 1000) at the last step and with\n"
            "the parameters of the best periodic validation accuracy (the reported figure), and writes a JSON\n"
            "report. Options are --name=value;\n"
            "a profile sets the defaults (columns below) and every option overrides it. --seeds=1,2,3 runs\n"
            "the configuration once per seed, one report each (compare aggregates them); an --attn-opt that\n"
            "lists values (m=16,64,k=64,256) runs every point of their product, times the seeds.\n\n"
            "Checkpoints (parameters, optimizer, step, data order, RNG) are written every --checkpoint-every\n"
            "steps and on SIGINT/SIGTERM, beside the report as .ckpt. `lra-bench resume FILE` (the checkpoint\n"
            "or the report) continues with the options it was started with, ending with the same numbers, to\n"
            "the bit, as a run never stopped; given options override only --threads, --progress, --log-every,\n"
            "--checkpoint-every and where files go, and any other that differs is refused by name.\n\n"
            "Under `mpirun -np P` (or srun) one model trains data-parallel over P processes, each with its own\n"
            "threads: every batch is cut into --grad-shards=S shards (P <= S), summed in shard order, so the\n"
            "numbers depend on S and never on P - a plain run with the same S gives the same bits, and a run\n"
            "resumes on any P. Rank 0 writes the report and checkpoints; a signal to any process stops all of\n"
            "them at the same step. docs/manual.md, \"Running on a cluster\".\n\n");
    lra_config_print_help(f, task);
    fprintf(f, "\nattention backends:\n");
    for (int i = 0; i < lra_attn_count(); i++) fprintf(f, "  %-8s %s\n", lra_attn_name_at(i), lra_attn_summary_at(i));
    fprintf(f,
            "\ntasks:\n");
    for (int i = 0; i < lra_task_count(); i++) fprintf(f, "  %-8s %s\n", lra_task_at(i)->name, lra_task_at(i)->help);
    fprintf(f,
            "\n"
            "environment: LRA_DATA_DIR (data directory), OPENBLAS_CORETYPE (recorded in reports)\n"
            "\ncompare: tables from reports (test accuracy per backend x task at the best-validation step, or\n"
            "--select=last|both, mean and 95%% CI over seeds, differences to full paired by seed, option grids,\n"
            "the LRA average over the tasks every row has and the published Transformer row;\n"
            "throughput, memory, the 10%% parameter rule; --target=0.36: wall time to that validation accuracy).\n"
            "With --baseline, a gate: exit status 3 when a baseline group's test accuracy fell more than\n"
            "--max-regression, its tokens/s more than --max-slowdown or its peak RSS grew more than\n"
            "--max-memory-growth percent, or it has no completed current report (unless --allow-missing).\n\n"
            "speed: per length and backend, the attention layer alone (forward, forward+backward) and an\n"
            "encoder training step (emb = heads x hs, mlp = 2 emb), medians and IQR over the repeats after the\n"
            "warm-up; a configuration planned above --mem-limit (default: physical memory) is marked OOM.\n"
            "Prints the LRA paper's Table 2 shape and writes results/speed/speed-<time>.json (or --out, never\n"
            "over an existing report unless --overwrite).\n\n"
            "exit status: 0 success, 1 failure (I/O, bad data, divergence), 2 usage error\n");
}

/* `lra-bench CMD --help` and `lra-bench help CMD`: each command's options, as its parser reads them */
static const struct { const char *cmd, *text; } command_help[] = {
    {"resume", "usage: lra-bench resume CHECKPOINT|REPORT [options]\n\n"
               "Continues a stopped run from its checkpoint (or the report, which names it) with the options it was\n"
               "started with, ending with the same numbers, to the bit, as the run never stopped. Options after the\n"
               "file may change only what does not change the numbers: --threads, --progress, --log-every,\n"
               "--checkpoint-every, --out, --checkpoint, --data-dir (the data's sha256 must still match).\n"},
    {"generate", "usage: lra-bench generate --task=listops --out=DIR [--sizes=TRAIN,VAL,TEST] [--lengths=500,2000]\n"
                 "                          [--data-seed=N]\n"
                 "       lra-bench generate --task=pathfinder|pathx --out=DIR [--images=200000] [--contour=14]\n"
                 "                          [--data-seed=N] [--preview=FILE.png]\n\n"
                 "Writes a data set in the official layout with lra-bench's generators: ListOps' official splits\n"
                 "(96000,2000,2000 by default) as DIR/basic_{train,val,test}.tsv, of trees with MIN < length < MAX\n"
                 "(--lengths; the official 500,2000; other lengths are recorded in the set and in every run's report,\n"
                 "and CI's ListOps cell uses 20,256); Pathfinder (32 px) or Path-X (128 px) images and metadata\n"
                 "under DIR/pathfinder<size>/curv_contour_length_<contour>. --preview writes a 4x4 sheet of the first\n"
                 "16 images instead. An existing set is never replaced; Ctrl-C keeps nothing.\n"},
    {"fetch", "usage: lra-bench fetch --task=NAME | --all [--url=URL] [--data-dir=DIR]\n\n"
              "Downloads a task's official data into the data directory (resumable, checksummed where a checksum is\n"
              "published): text (aclImdb_v1.tar.gz), image (cifar-10-binary.tar.gz), listops, retrieval, pathfinder,\n"
              "pathx (the LRA release, of which only the task's files are extracted). --url names a mirror or a\n"
              "file:// copy. A --data-dir you name must exist.\n"},
    {"compare", "usage: lra-bench compare [--format=markdown|csv] [--select=best|last|both] [--target=ACC|TASK=ACC,...]\n"
                "                         [--baseline-backend=NAME|none] [--baseline=FILE,... [--max-regression=P]\n"
                "                         [--max-slowdown=P] [--max-memory-growth=P] [--allow-missing]] FILES...\n\n"
                "Tables from run reports: test accuracy per backend x task (--select=best, the default: at each run's\n"
                "best-validation step; last; both) as the mean and its 95% confidence interval over seeds (Student's\n"
                "t; n in every cell, marked where under 3), the average over the LRA tasks that every row has, and the\n"
                "published Transformer row; each row's difference to --baseline-backend (default full, where there is\n"
                "one), paired by seed where two or more seeds match, else Welch's, in bold where its interval excludes 0;\n"
                "rows that differ only in --attn-opt as one grid table (long, and rows x columns where two options\n"
                "vary); throughput, memory and the 10% parameter rule; --target=0.36 adds the wall time until\n"
                "validation accuracy first reached 36%, or per task (chance differs): --target=listops=0.36,text=0.65\n"
                "(a bare value is every other task's). Other reports (speed, unfinished, untimed) are named and left\n"
                "out.\n\n"
                "The gate: --baseline=FILE,... (an item may be a pattern, 'base/*.json', which compare expands) with\n"
                "one or more limits, in percent of the baseline: --max-regression\n"
                "(test accuracy), --max-slowdown (training tokens/s), --max-memory-growth (peak RSS). Every\n"
                "baseline group must have a completed current report (--allow-missing: a note instead), and a gate\n"
                "that checked no group fails. Exit status: 0 passed (or no gate), 1 a report that cannot be read (the\n"
                "file named) or none completed, 2 a usage error, 3 the gate failed (each failure on its own line).\n"},
    {"speed", "usage: lra-bench speed [--backend=full,mita] [--lengths=1024,...,16384] [--batch=1] [--heads=4] [--hs=64]\n"
              "                       [--layers=2] [--warmup=1] [--repeats=5] [--threads=N] [--attn-opt=K=V,...]\n"
              "                       [--mem-limit=24G] [--encoder=0|1] [--precision=fp32|bf16] [--grad-shards=S]\n"
              "                       [--out=FILE [--overwrite]]\n\n"
              "Per length and backend: the attention layer alone (forward, forward+backward) and, with --encoder=1,\n"
              "a whole encoder training step (emb = heads x hs, mlp = 2 emb), medians and IQR over the repeats after\n"
              "the warm-up calls. --precision=bf16 runs the encoder's and the backends' products in bf16 (the\n"
              "backends' only on AVX512-BF16 CPUs; the report says which: attention_precision). A configuration\n"
              "planned above --mem-limit (default: physical memory) is marked OOM.\n"
              "--attn-opt goes with one --backend. Writes results/speed/speed-<time>.json (or --out); an existing\n"
              "--out is refused before measuring unless --overwrite, and a name taken meanwhile gets -2, -3, ...\n"
              "Under mpirun -np P the encoder step is the data-parallel one, in --grad-shards shards (default P),\n"
              "with its communication time and bytes per step in the report; the attention layer alone then runs\n"
              "on every process at once.\n"},
    {"plot", "usage: lra-bench plot [--out=results/plots] FILES...\n\n"
             "SVG charts: from speed reports, attention tokens/s and planned memory against length; from run\n"
             "reports, test accuracy per task, and per task validation accuracy against training examples and\n"
             "against wall seconds, and (routing backends) the keys in no expert per layer over training.\n"},
};

int lra_command_usage(const char *cmd) {
    if (!strcmp(cmd, "batch")) {
        fputs(lra_batch_help, stdout);
        return 1;
    }
    for (size_t i = 0; i < sizeof command_help / sizeof *command_help; i++)
        if (!strcmp(cmd, command_help[i].cmd)) {
            fputs(command_help[i].text, stdout);
            return 1;
        }
    return 0;
}
