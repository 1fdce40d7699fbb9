/* config.h - a run's resolved configuration: profile defaults, then command-line overrides. */
#ifndef LRA_CONFIG_H
#define LRA_CONFIG_H

#include <cjson/cJSON.h>

#include "../../common/lra.h"
#include "../encoder/batcher.h"
#include "../encoder/train.h"

typedef struct {
    char task[32], backend[32], attn_opts[256], profile[16];
    int layers, heads, emb, qkv, mlp, batch, max_len;
    int steps, warmup, eval_every, eval_subset, log_every, timing_skip;
    int final_eval_subset; /* 1: the final evaluation uses the periodic subset too (the ci profile) */
    double lr, wd, clip, adam_b1, adam_b2, adam_eps;
    float dropout, attn_dropout;
    int pool, pos_learned, schedule, batching, pad_mask, retrieval_head;
    int mean_len;  /* MEAN pooling's divisor: 0 max_len, 1 its next power of two (lra_config_pool_len) */
    int init, attn_bias;
    char dataset[32];
    char task_opts[256];
    int precision; /* lra_precision (common/lra.h) */
    long seed, data_seed;
    int threads;
    int grad_shards; /* the batch's fixed split into gradient shards (train.h): results never depend on P */
    int progress; /* -1 auto (only on a terminal), 0 never, 1 always */
    int checkpoint_every, resume, overwrite;
    int numerics_change; /* resume may continue a checkpoint of another LRA_NUMERICS (sysinfo.h) */
    char data_dir[4096], out[4096], checkpoint[4096];
} lra_config;

/* Fills c with the named profile's values for the task ("repro", "official", "ci").
 * LRA_ERR_USAGE names an unknown profile or task. */
lra_status lra_config_profile(lra_config *c, const char *task, const char *profile, char *err);

/* Parses argv (after the subcommand) into c: first finds --task and --profile, applies the
 * profile, then every other option. Unknown options and bad values are LRA_ERR_USAGE with a
 * message naming them. *help is set when --help was given. */
lra_status lra_config_parse(lra_config *c, int argc, char **argv, int *help, char *err);

/* The reproduction recipe's own evaluation frequency for the task (lra.md), 0 for an unknown task;
 * the repro profile's --eval-every may be coarser (config.c says why). */
int lra_config_recipe_eval_every(const char *task);

/* The optimizer settings of 0-based step s of a run with options c: its schedules applied. */
lra_step_hparams lra_step_hparams_at(const lra_config *c, long s);

/* MEAN pooling's fixed divisor: max_len, or with --mean-len=pow2 its next power of two. */
int lra_config_pool_len(const lra_config *c);

/* The option table as --help text, with every profile's defaults for the task. */
void lra_config_print_help(FILE *f, const char *task);

/* Every option and its resolved value, for reports; caller owns. */
cJSON *lra_config_to_json(const lra_config *c);

/* The options that determine a run's numbers: all but where input and output go, threads (results
 * do not depend on them), progress, logging and checkpointing. A checkpoint records them and a run
 * resumes from it only when they are equal. Caller owns. */
cJSON *lra_config_identity_json(const lra_config *c);

/* Lists in msg the options whose values differ between two identity objects, as
 * "--lr=0.05 in <saved_in>, 0.001 here; ..."; returns how many differ. */
int lra_config_diff(const cJSON *saved, const char *saved_in, const cJSON *now, char *msg, size_t n);

/* "--name=value" arguments rebuilding the options of a config object (a report's or a
 * checkpoint's), for `lra-bench resume`. Returns the count written into args (at most max), each a
 * malloc'd string the caller frees; -1 when j is not a config object. */
int lra_config_args_from_json(const cJSON *j, char **args, int max);

#endif
