/* config.c - profiles and command-line options, driven by one table so that parsing, --help
 * and the report's "config" object always agree. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../../attention/attention.h"
#include "../../tasks/task.h"
#include "../encoder/layers.h"
#include "../encoder/model.h"
#include "../encoder/optim.h"

typedef enum { OPT_INT, OPT_LONG, OPT_DOUBLE, OPT_FLOAT, OPT_STR, OPT_ENUM } opt_type;

typedef struct {
    const char *name;
    opt_type type;
    size_t off, size;
    double lo, hi;            /* numeric range */
    const char *const *enums; /* OPT_ENUM: NULL-terminated names, index stored as int */
    const char *help;
} opt_def;

static const char *const pool_names[] = {"cls", "mean", NULL};
static const char *const pos_names[] = {"sin", "learned", NULL};
static const char *const sched_names[] = {"rsqrt", "cosine", "constant", "onecycle", NULL};
static const char *const batching_names[] = {"random", "bucket", "full", NULL};
static const char *const onoff_names[] = {"off", "on", NULL}; /* a bare --name means on */
static const char *const pad_mask_names[] = {"official", "length", NULL};
static const char *const retrieval_head_names[] = {"official", "paper", "repro", NULL};
static const char *const init_names[] = {"flax", "torch", NULL};
static const char *const bias_names[] = {"off", "on", NULL}; /* like onoff_names, but always with a value */
static const char *const mean_len_names[] = {"max-len", "pow2", NULL};
static const char *const final_eval_names[] = {"all", "subset", NULL};
static const char *const precision_names[] = {"fp32", "bf16", NULL}; /* the order of lra_precision */

#define F(field) offsetof(lra_config, field), sizeof(((lra_config *)0)->field)
static const opt_def opts[] = {
    {"task", OPT_STR, F(task), 0, 0, NULL, "task (list below); default listops"},
    {"backend", OPT_STR, F(backend), 0, 0, NULL, "attention backend, default full (list below)"},
    {"attn-opt", OPT_STR, F(attn_opts), 0, 0, NULL, "backend options, key=value[,key=value]; key=v1,v2: a grid"},
    {"profile", OPT_STR, F(profile), 0, 0, NULL, "repro (default) | official | ci: the columns here"},
    {"layers", OPT_INT, F(layers), 0, 64, NULL, "encoder blocks"},
    {"heads", OPT_INT, F(heads), 1, 256, NULL, "attention heads"},
    {"emb", OPT_INT, F(emb), 2, 65536, NULL, "embedding (model) width"},
    {"qkv", OPT_INT, F(qkv), 1, 65536, NULL, "width of q, k, v (heads x head size)"},
    {"mlp", OPT_INT, F(mlp), 1, 262144, NULL, "MLP hidden width (also the head's)"},
    {"batch", OPT_INT, F(batch), 1, 65536, NULL, "examples per step"},
    {"max-len", OPT_INT, F(max_len), 1, 1 << 20, NULL, "tokens kept per example"},
    {"steps", OPT_INT, F(steps), 0, 1e9, NULL, "training steps"},
    {"warmup", OPT_INT, F(warmup), 0, 1e9, NULL, "learning-rate warm-up steps"},
    {"lr", OPT_DOUBLE, F(lr), 0, 1e3, NULL, "base (onecycle: peak) learning rate"},
    {"schedule", OPT_ENUM, F(schedule), 0, 0, sched_names,
     "learning rate: rsqrt | cosine | constant | onecycle (PyTorch's OneCycleLR, linear, beta1 cycled)"},
    {"adam-b1", OPT_DOUBLE, F(adam_b1), 0, 0.999999, NULL, "Adam's beta1 (onecycle cycles it 0.95-0.85-0.95 instead)"},
    {"adam-b2", OPT_DOUBLE, F(adam_b2), 0, 0.999999, NULL, "Adam's beta2"},
    {"adam-eps", OPT_DOUBLE, F(adam_eps), 0, 1, NULL, "Adam's epsilon"},
    {"wd", OPT_DOUBLE, F(wd), 0, 1e3, NULL, "decoupled weight decay"},
    {"clip", OPT_DOUBLE, F(clip), 0, 1e9, NULL, "gradient global-norm clip (0 = off)"},
    {"dropout", OPT_FLOAT, F(dropout), 0, 0.99, NULL, "dropout rate"},
    {"attn-dropout", OPT_FLOAT, F(attn_dropout), 0, 0.99, NULL, "attention-probability dropout rate"},
    {"pool", OPT_ENUM, F(pool), 0, 0, pool_names, "pooling: cls | mean"},
    {"pos", OPT_ENUM, F(pos_learned), 0, 0, pos_names, "positions: sin | learned"},
    {"mean-len", OPT_ENUM, F(mean_len), 0, 0, mean_len_names,
     "MEAN pooling divides the sum over real tokens by max-len | pow2 (the next power of two)"},
    {"init", OPT_ENUM, F(init), 0, 0, init_names, "initialisation: flax (official) | torch (PyTorch defaults)"},
    {"attn-bias", OPT_ENUM, F(attn_bias), 0, 0, bias_names, "biases on the q, k, v and output projections: off | on"},
    {"batching", OPT_ENUM, F(batching), 0, 0, batching_names,
     "random (pad to the longest) | bucket (similar lengths) | full (pad to max-len)"},
    {"pad-mask", OPT_ENUM, F(pad_mask), 0, 0, pad_mask_names,
     "official: token 0 is padding (on Image it masks black pixels) | length: only past the end"},
    {"retrieval-head", OPT_ENUM, F(retrieval_head), 0, 0, retrieval_head_names,
     "retrieval: official [u, v] | paper [u, v, u*v, u-v] | repro (paper's, one hidden layer)"},
    {"dataset", OPT_STR, F(dataset), 0, 0, NULL, "an alternative data set, a labelled substitute (each task's, under tasks below); default: the official data"},
    {"task-opt", OPT_STR, F(task_opts), 0, 0, NULL, "task options, key=value[,key=value] (mqar: keys, values, pairs, train, eval)"},
    {"precision", OPT_ENUM, F(precision), 0, 0, precision_names,
     "fp32 | bf16: the encoder's and attention's products with bf16 operands; fp32 sums, weights, statistics"},
    {"seed", OPT_LONG, F(seed), 0, 9e18, NULL, "run seed: initialisation, shuffling, dropout"},
    {"data-seed", OPT_LONG, F(data_seed), 0, 9e18, NULL, "seed of the offline data generator"},
    {"threads", OPT_INT, F(threads), 0, 1024, NULL, "threads per process (0 = the cores, shared by mpirun's processes on a host)"},
    {"grad-shards", OPT_INT, F(grad_shards), 1, 65536, NULL,
     "the batch's split into gradient shards, summed in a fixed order: the same numbers at any process count "
     "(mpirun -np P, P <= shards)"},
    {"eval-every", OPT_INT, F(eval_every), 0, 1e9, NULL, "steps between val+test evaluations (0 = end only)"},
    {"eval-subset", OPT_INT, F(eval_subset), 0, 1e9, NULL,
     "examples of val and of test in periodic evaluations (fixed for all runs; 0 = all)"},
    {"final-eval", OPT_ENUM, F(final_eval_subset), 0, 0, final_eval_names,
     "the final evaluation: all (every example) | subset (the periodic one: smoke runs)"},
    {"log-every", OPT_INT, F(log_every), 1, 1e9, NULL, "steps between progress lines"},
    {"timing-skip", OPT_INT, F(timing_skip), 0, 1e9, NULL, "first steps left out of throughput"},
    {"progress", OPT_ENUM, F(progress), 0, 0, onoff_names, "progress lines on stderr, terminal or not (default on; =off silences them)"},
    {"data-dir", OPT_STR, F(data_dir), 0, 0, NULL,
     "data directory (else $LRA_DATA_DIR, else $XDG_CACHE_HOME/lra-bench, else ~/.cache/lra-bench)"},
    {"out", OPT_STR, F(out), 0, 0, NULL,
     "report path (default results/<task>/<backend>-<profile>-seed<N>-<hash of the options>.json)"},
    {"checkpoint-every", OPT_INT, F(checkpoint_every), 0, 1e9, NULL,
     "steps between checkpoints (0 = only when stopped by a signal)"},
    {"checkpoint", OPT_STR, F(checkpoint), 0, 0, NULL, "checkpoint path (default: the report's, .json -> .ckpt)"},
    {"resume", OPT_ENUM, F(resume), 0, 0, onoff_names,
     "continue from the checkpoint, exactly (the options must match it)"},
    {"overwrite", OPT_ENUM, F(overwrite), 0, 0, onoff_names,
     "replace an existing report and checkpoint at these paths (else refused)"},
    {"numerics-change", OPT_ENUM, F(numerics_change), 0, 0, onoff_names,
     "resume a checkpoint computed under another numerics version (recorded in the report; else refused)"},
};
/* options that do not change a run's numbers (see lra_config_identity_json) */
static const char *const not_identity[] = {"threads", "progress", "log-every", "timing-skip", "data-dir", "out",
                                           "checkpoint-every", "checkpoint", "resume", "overwrite",
                                           "numerics-change", NULL};
#undef F
enum { NOPTS = sizeof opts / sizeof *opts };

/* The index of name in a NULL-terminated name table (the task files spell pooling, positions and
 * schedules as the options do), 0 when absent. */
static int name_index(const char *const *names, const char *name) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name)) return i;
    return 0;
}

int lra_config_recipe_eval_every(const char *task) {
    const lra_task_i *t = lra_task_find(task);
    return t ? t->repro.recipe_eval_every : 0;
}

lra_status lra_config_profile(lra_config *c, const char *task, const char *profile, char *err) {
    const lra_task_i *t = lra_task_find(task);
    if (!t) {
        char names[256];
        lra_task_names(names, sizeof names);
        return lra_fail(err, LRA_ERR_USAGE, "unknown task '%s' (known: %s)", task, names);
    }
    const lra_task_official *row = &t->official;
    lra_config d = {0};
    snprintf(d.task, sizeof d.task, "%s", task);
    snprintf(d.backend, sizeof d.backend, "full");
    snprintf(d.profile, sizeof d.profile, "%s", profile);
    d.seed = 0; d.data_seed = 1; d.threads = 0; d.grad_shards = 1; d.progress = -1; d.log_every = 50;
    d.adam_b1 = 0.9; d.adam_b2 = 0.98; d.adam_eps = 1e-9; /* flax's Adam as the official code sets it */
    /* every profile keeps the task's official sequence length, pooling, positions, schedule and
     * regularisation; small and ci shrink the model and the run */
    d.max_len = row->max_len; d.pool = name_index(pool_names, row->pool); d.pos_learned = name_index(pos_names, row->pos);
    d.schedule = name_index(sched_names, row->schedule);
    d.lr = row->lr; d.wd = row->wd; d.clip = row->clip; d.dropout = row->dropout; d.attn_dropout = row->attn_dropout;
    if (strcmp(profile, "official") == 0) {
        d.layers = row->layers; d.heads = row->heads; d.emb = row->emb; d.qkv = row->qkv; d.mlp = row->mlp;
        d.batch = row->batch; d.warmup = row->warmup; d.steps = row->steps;
        d.batching = LRA_BATCH_RANDOM; d.eval_every = 1000; d.timing_skip = 5; d.checkpoint_every = 1000;
    } else if (strcmp(profile, "repro") == 0) {
        /* lra.md's reproduction recipe: a 2-layer, emb-64 pre-LN Transformer with learned
         * positions and MEAN pooling over the power-of-two padded length, AdamW under OneCycleLR */
        const lra_task_repro *rr = &t->repro;
        d.layers = 2; d.heads = 2; d.emb = 64; d.qkv = 64; d.mlp = 128;
        d.max_len = rr->max_len; d.batch = rr->batch; d.warmup = rr->warmup; d.steps = rr->steps;
        d.pool = LRA_POOL_MEAN; d.pos_learned = 1; d.mean_len = 1; d.init = LRA_INIT_TORCH; d.attn_bias = 1;
        d.schedule = LRA_SCHED_ONECYCLE; d.lr = 1e-4; d.wd = 0; d.clip = 0;
        d.adam_b1 = 0.9; d.adam_b2 = 0.999; d.adam_eps = 1e-6;
        d.dropout = 0.1f; d.attn_dropout = 0.1f; d.retrieval_head = 2;
        /* their batches are random draws padded to a fixed length; ours random draws padded to the
         * batch's longest, which the masks and the fixed MEAN length make the same computation */
        d.batching = LRA_BATCH_RANDOM; d.eval_every = rr->eval_every; d.eval_subset = 0; d.timing_skip = 5;
        d.checkpoint_every = rr->eval_every;
    } else if (strcmp(profile, "ci") == 0) {
        /* a smoke run that finishes in seconds on every task: tiny model, sequences cut to 256
         * tokens, evaluation on a fixed 1000 examples of each split (the report says how many) */
        d.layers = 1; d.heads = 2; d.emb = 32; d.qkv = 32; d.mlp = 64; d.batch = 16;
        d.warmup = 10; d.steps = 30; d.max_len = row->max_len < 256 ? row->max_len : 256;
        d.batching = LRA_BATCH_BUCKET; d.eval_every = 0; d.timing_skip = 2; d.log_every = 10;
        d.eval_subset = 1000; d.final_eval_subset = 1;
        const lra_task_ci *ci = &t->ci; /* a task whose ci size is its own (tasks/README.md) */
        if (ci->layers) d.layers = ci->layers;
        if (ci->emb) d.emb = d.qkv = ci->emb;
        if (ci->mlp) d.mlp = ci->mlp;
        if (ci->batch) d.batch = ci->batch;
        if (ci->max_len) d.max_len = ci->max_len;
        if (ci->steps) { d.steps = ci->steps; d.log_every = ci->steps / 10 > 10 ? ci->steps / 10 : 10; }
        if (ci->warmup) d.warmup = ci->warmup;
        if (ci->lr > 0) d.lr = ci->lr;
        if (ci->dataset) snprintf(d.dataset, sizeof d.dataset, "%s", ci->dataset);
    } else {
        return lra_fail(err, LRA_ERR_USAGE, "unknown profile '%s' (known: repro, official, ci)%s", profile,
                        strcmp(profile, "small") == 0 ? "; small, which did not learn Text, is gone: repro replaces it" : "");
    }
    *c = d;
    return LRA_OK;
}

int lra_config_pool_len(const lra_config *c) {
    if (!c->mean_len) return c->max_len;
    int n = 1;
    while (n < c->max_len) n *= 2;
    return n;
}

static const opt_def *find_opt(const char *name, size_t n) {
    for (int i = 0; i < NOPTS; i++)
        if (strlen(opts[i].name) == n && strncmp(opts[i].name, name, n) == 0) return &opts[i];
    return NULL;
}

static lra_status set_opt(lra_config *c, const opt_def *o, const char *val, char *err) {
    char *p = (char *)c + o->off, *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_STR:
        if (strlen(val) >= o->size) return lra_fail(err, LRA_ERR_USAGE, "--%s: value too long", o->name);
        strcpy(p, val);
        return LRA_OK;
    case OPT_ENUM:
        for (int i = 0; o->enums[i]; i++)
            if (strcmp(val, o->enums[i]) == 0) { *(int *)p = i; return LRA_OK; }
        return lra_fail(err, LRA_ERR_USAGE, "--%s: unknown value '%s'", o->name, val);
    default: break;
    }
    double x = strtod(val, &end);
    if (!*val || *end || errno || !isfinite(x))
        return lra_fail(err, LRA_ERR_USAGE, "--%s: '%s' is not a number", o->name, val);
    if (x < o->lo || x > o->hi)
        return lra_fail(err, LRA_ERR_USAGE, "--%s=%s is out of range [%.15g, %.15g]", o->name, val, o->lo, o->hi);
    if ((o->type == OPT_INT || o->type == OPT_LONG) && x != floor(x))
        return lra_fail(err, LRA_ERR_USAGE, "--%s: '%s' is not an integer", o->name, val);
    switch (o->type) {
    case OPT_INT: *(int *)p = (int)x; break;
    case OPT_LONG: *(long *)p = strtol(val, NULL, 10); break;
    case OPT_DOUBLE: *(double *)p = x; break;
    case OPT_FLOAT: *(float *)p = (float)x; break;
    default: break;
    }
    return LRA_OK;
}

lra_status lra_config_parse(lra_config *c, int argc, char **argv, int *help, char *err) {
    const char *task = "listops", *profile = "repro";
    *help = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--task=", 7) == 0) task = argv[i] + 7;
        else if (strncmp(argv[i], "--profile=", 10) == 0) profile = argv[i] + 10;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) *help = 1;
    }
    if (*help) return LRA_OK;
    lra_status st = lra_config_profile(c, task, profile, err);
    if (st != LRA_OK) return st;
    const int profile_head = c->retrieval_head; /* resume passes it back: that value is no mistake */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return lra_fail(err, LRA_ERR_USAGE, "unexpected argument '%s' (options are --name=value)", a);
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const opt_def *o = find_opt(a + 2, n);
        if (!o) return lra_fail(err, LRA_ERR_USAGE, "unknown option '%.*s' (see --help)", (int)n + 2, a);
        if (!eq) {
            if (o->enums == onoff_names) { *(int *)((char *)c + o->off) = 1; continue; }
            return lra_fail(err, LRA_ERR_USAGE, "option --%s needs a value: --%s=...", o->name, o->name);
        }
        if ((st = set_opt(c, o, eq + 1, err)) != LRA_OK) return st;
    }
    if (!lra_attn_known(c->backend)) {
        char names[256];
        lra_attn_names(names, sizeof names);
        return lra_fail(err, LRA_ERR_USAGE, "unknown attention backend '%s' (known: %s)", c->backend, names);
    }
    /* an option the task never reads is a mistake, not a no-op (resume passes every option back
     * at its resolved value, the profile's default: that one is fine) */
    const lra_task_i *t = lra_task_find(c->task);
    if (t->docs != 2 && c->retrieval_head != profile_head)
        return lra_fail(err, LRA_ERR_USAGE, "--retrieval-head: %s has no dual encoder (only document-pair tasks do)", c->task);
    if (c->task_opts[0] && !t->check_opts)
        return lra_fail(err, LRA_ERR_USAGE, "--task-opt=%s: %s takes no task options", c->task_opts, c->task);
    if (t->check_opts && (st = t->check_opts(c->task_opts, c->max_len, err)) != LRA_OK) return st;
    if (c->dataset[0] && !lra_task_dataset_find(t, c->dataset)) {
        char names[200];
        lra_task_dataset_names(t, names, sizeof names);
        if (!names[0]) return lra_fail(err, LRA_ERR_USAGE, "--dataset=%s: %s has no alternative datasets", c->dataset, c->task);
        return lra_fail(err, LRA_ERR_USAGE, "--dataset=%s: %s's alternative datasets are %s (and its official data: "
                        "--dataset=)", c->dataset, c->task, names);
    }
    if (c->qkv % c->heads)
        return lra_fail(err, LRA_ERR_USAGE, "--qkv=%d must be a multiple of --heads=%d", c->qkv, c->heads);
    if (c->emb % 2 && !c->pos_learned)
        return lra_fail(err, LRA_ERR_USAGE, "--emb=%d must be even with sinusoidal positions", c->emb);
    return LRA_OK;
}

static void value_str(const lra_config *c, const opt_def *o, char *buf, size_t n) {
    const char *p = (const char *)c + o->off;
    switch (o->type) {
    case OPT_STR: snprintf(buf, n, "%s", *p ? p : "(none)"); break;
    case OPT_ENUM: { /* --progress is -1 (auto: on a terminal) until given */
        const int e = *(const int *)p;
        snprintf(buf, n, "%s", e >= 0 ? o->enums[e] : "auto");
        break;
    }
    case OPT_INT: snprintf(buf, n, "%d", *(const int *)p); break;
    case OPT_LONG: snprintf(buf, n, "%ld", *(const long *)p); break;
    case OPT_DOUBLE: snprintf(buf, n, "%g", *(const double *)p); break;
    case OPT_FLOAT: snprintf(buf, n, "%g", (double)*(const float *)p); break;
    }
}

void lra_config_print_help(FILE *f, const char *task) {
    static const char *const profiles[] = {"repro", "official", "ci"};
    lra_config pc[3];
    if (!lra_task_find(task)) task = "listops";
    for (int i = 0; i < 3; i++) lra_config_profile(&pc[i], task, profiles[i], NULL);
    fprintf(f, "defaults for --task=%s (--task=NAME --help shows another task's):\n", task);
    fprintf(f, "  %-17s %9s %9s %9s\n", "option", "repro", "official", "ci");
    for (int i = 0; i < NOPTS; i++) {
        const opt_def *o = &opts[i];
        char v[3][64];
        for (int k = 0; k < 3; k++) value_str(&pc[k], o, v[k], sizeof v[k]);
        if (o->type == OPT_STR) {
            fprintf(f, "  --%-15s %29s  %s\n", o->name, "", o->help);
            continue;
        }
        if (o->enums == onoff_names) {
            char bare[32];
            snprintf(bare, sizeof bare, "%s[=on]", o->name);
            fprintf(f, "  --%-15s %29s  %s\n", bare, "", o->help);
            continue;
        }
        fprintf(f, "  --%-15s %9s %9s %9s  %s\n", o->name, v[0], v[1], v[2], o->help);
    }
}

/* The shortest decimal that reads back as x, as a double: 0.1, not 0.10000000149011612 */
static double float_decimal(float x) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        if ((float)strtod(buf, NULL) == x) break;
    }
    return strtod(buf, NULL);
}

cJSON *lra_config_to_json(const lra_config *c) {
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < NOPTS; i++) {
        const opt_def *o = &opts[i];
        const char *p = (const char *)c + o->off;
        switch (o->type) {
        case OPT_STR: cJSON_AddStringToObject(j, o->name, p); break;
        case OPT_ENUM:
            if (strcmp(o->name, "progress") == 0) break;
            cJSON_AddStringToObject(j, o->name, o->enums[*(const int *)p]);
            break;
        case OPT_INT: cJSON_AddNumberToObject(j, o->name, *(const int *)p); break;
        case OPT_LONG: cJSON_AddNumberToObject(j, o->name, (double)*(const long *)p); break;
        case OPT_DOUBLE: cJSON_AddNumberToObject(j, o->name, *(const double *)p); break;
        case OPT_FLOAT: cJSON_AddNumberToObject(j, o->name, float_decimal(*(const float *)p)); break;
        }
    }
    return j;
}

static int in_list(const char *name, const char *const *list) {
    for (; *list; list++)
        if (strcmp(name, *list) == 0) return 1;
    return 0;
}

cJSON *lra_config_identity_json(const lra_config *c) {
    cJSON *j = lra_config_to_json(c);
    for (int i = 0; i < NOPTS; i++)
        if (in_list(opts[i].name, not_identity)) cJSON_DeleteItemFromObjectCaseSensitive(j, opts[i].name);
    return j;
}

/* the shortest of %.15g and %.17g that reads back as x: 0.05, not 0.050000000000000003 */
static void shortest(double x, char *buf, size_t n) {
    snprintf(buf, n, "%.15g", x);
    if (strtod(buf, NULL) != x) snprintf(buf, n, "%.17g", x);
}

static void item_str(const cJSON *x, char *buf, size_t n) {
    if (!x) snprintf(buf, n, "(absent)");
    else if (cJSON_IsString(x)) snprintf(buf, n, "%s", *x->valuestring ? x->valuestring : "(none)");
    else if (cJSON_IsNumber(x)) shortest(x->valuedouble, buf, n);
    else snprintf(buf, n, "(?)");
}

/* Options added after checkpoints existed, and the value their absence meant: a checkpoint
 * written before the option resumes when the option has that value. */
static const struct { const char *name, *absent_means; } added_later[] = {
    {"final-eval", "all"}, {"grad-shards", "1"}, {"task-opt", ""}, {"precision", "fp32"}};


static int absent_means(const char *name, const cJSON *now) {
    char v[64];
    item_str(now, v, sizeof v);
    for (size_t i = 0; i < sizeof added_later / sizeof *added_later; i++)
        if (!strcmp(name, added_later[i].name)) /* item_str spells an empty string "(none)" */
            return now && !strcmp(v, *added_later[i].absent_means ? added_later[i].absent_means : "(none)");
    return 0;
}

int lra_config_diff(const cJSON *saved, const char *saved_in, const cJSON *now, char *msg, size_t n) {
    int count = 0;
    size_t used = 0;
    msg[0] = '\0';
    for (int pass = 0; pass < 2; pass++) { /* keys of now, then keys only saved has */
        const cJSON *x, *list = pass ? saved : now;
        cJSON_ArrayForEach(x, list) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(saved, x->string);
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(now, x->string);
            if (pass && b) continue;
            /* float options compare as floats: checkpoints before float_decimal wrote 0.10000000149011612 */
            const opt_def *o = find_opt(x->string, strlen(x->string));
            const int as_float = o && o->type == OPT_FLOAT;
            int same = a && b && ((cJSON_IsString(a) && cJSON_IsString(b) && strcmp(a->valuestring, b->valuestring) == 0) ||
                                  (cJSON_IsNumber(a) && cJSON_IsNumber(b) &&
                                   (a->valuedouble == b->valuedouble ||
                                    (as_float && (float)a->valuedouble == (float)b->valuedouble))));
            if (same || (!a && absent_means(x->string, b))) continue;
            char va[128], vb[128];
            item_str(a, va, sizeof va);
            item_str(b, vb, sizeof vb);
            if (used < n)
                used += (size_t)snprintf(msg + used, n - used, "%s--%s=%s in %s, %s here", count ? "; " : "",
                                         x->string, va, saved_in, vb);
            count++;
        }
    }
    return count;
}

int lra_config_args_from_json(const cJSON *j, char **args, int max) {
    if (!cJSON_IsObject(j)) return -1;
    int k = 0;
    for (int i = 0; i < NOPTS && k < max; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, opts[i].name);
        if (opts[i].enums == onoff_names) continue;
        char val[4200];
        if (!x) { /* an option newer than the file: its value then, not today's default */
            const char *then = NULL;
            for (size_t a = 0; a < sizeof added_later / sizeof *added_later; a++)
                if (!strcmp(opts[i].name, added_later[a].name)) then = added_later[a].absent_means;
            if (!then) continue;
            snprintf(val, sizeof val, "%s", then);
        } else if (cJSON_IsString(x)) snprintf(val, sizeof val, "%s", x->valuestring);
        else if (cJSON_IsNumber(x) && (opts[i].type == OPT_INT || opts[i].type == OPT_LONG))
            snprintf(val, sizeof val, "%.0f", x->valuedouble);
        else if (cJSON_IsNumber(x)) shortest(x->valuedouble, val, sizeof val);
        else continue;
        size_t len = strlen(opts[i].name) + strlen(val) + 4;
        if (!(args[k] = malloc(len))) break;
        snprintf(args[k], len, "--%s=%s", opts[i].name, val);
        k++;
    }
    return k;
}

lra_step_hparams lra_step_hparams_at(const lra_config *c, long s) {
    lra_step_hparams hp = {lra_lr_at(c->schedule, c->lr, s, c->warmup, c->steps),
                           lra_beta1_at(c->schedule, c->adam_b1, s, c->warmup, c->steps),
                           c->adam_b2, c->adam_eps, c->wd, c->clip, s + 1};
    return hp;
}
