/* mqar.c - associative recall: the multi-query associative recall (MQAR) of Zoology (Arora et
 * al., 2023), adapted to the encoder's classification head. Not an LRA task (outside the LRA
 * average); the cheapest task that tells attention that retrieves single tokens from attention
 * that compresses them.
 *
 * An example of length L (--max-len) holds P key-value pairs, filler, then one query key; the
 * label is the value bound to that key. The P keys are distinct draws from K key tokens, each value
 * a draw from V, the query one of the P keys, all uniform. Two layouts (--task-opt=layout=):
 *
 *   joint (default)  _ _ kv1 _ kv2 _ _ ... kvP _  q    one token per pair (key and value in one id),
 *                                                       each at a random position before the query
 *   pairs            k1 v1 k2 v2 ... kP vP  _ ... _  q    Zoology's: a key token, then its value
 *
 * In pairs the model must first bind each value to the key before it (an attention hop to the
 * previous token), then retrieve; at the CI scale neither this encoder nor a PyTorch replica left
 * the plateau of guessing among the P values present within 5000 steps (docs/ci.md), while joint,
 * which leaves only the retrieval of one token among L, is solved in under 1000. Zoology's other
 * difference: its sequences carry several queries, each predicted at its own position by a
 * language-model head; a classifier reads one answer per sequence, so each example here has one
 * query (the last token), and "multi-query" lives across examples.
 *
 * Tokens: 0 padding, 1 filler, values 2..17 (label = value), keys 18..273 (the pairs layout's key
 * tokens and every query), joint pairs 274 + key * 16 + value. Generated in memory,
 * deterministically from --data-seed, the split and the example's index (splitmix64): no files.
 * Options (--task-opt): layout=joint|pairs, keys=K (default 16, at most 256), values=V (default
 * 8, at most 16: the classes), pairs=P (default 4; P <= K; the layout's P or 2P tokens and the
 * query fit in L), train=N (default 20000) and eval=N (validation and test, default 2000). */
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/sha256.h"
#include "task.h"

enum { MAX_KEYS = 256, MAX_VALUES = 16, FILLER = 1, FIRST_VALUE = 2, FIRST_KEY = FIRST_VALUE + MAX_VALUES,
       FIRST_JOINT = FIRST_KEY + MAX_KEYS, VOCAB = FIRST_JOINT + MAX_KEYS * MAX_VALUES };

typedef struct { int keys, values, pairs, joint; long train, eval; } mqar_opts;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* uniform in [0, n): the top bits of a 64-bit draw times n (bias below 2^-32 for n < 2^32) */
static int below(uint64_t *s, int n) { return (int)(((splitmix64(s) >> 32) * (uint64_t)n) >> 32); }

static lra_status parse_opts(const char *text, int max_len, mqar_opts *o, char *err) {
    *o = (mqar_opts){.keys = 16, .values = 8, .pairs = 4, .joint = 1, .train = 20000, .eval = 2000};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text ? text : "");
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '='), *end;
        if (!eq) return lra_fail(err, LRA_ERR_USAGE, "--task-opt: '%s' is no key=value (mqar: layout, keys, values, pairs, train, eval)", kv);
        *eq = '\0';
        if (!strcmp(kv, "layout")) {
            if (strcmp(eq + 1, "joint") && strcmp(eq + 1, "pairs"))
                return lra_fail(err, LRA_ERR_USAGE, "--task-opt: layout=%s must be joint or pairs", eq + 1);
            o->joint = !strcmp(eq + 1, "joint");
            continue;
        }
        const long v = strtol(eq + 1, &end, 10);
        if (end == eq + 1 || *end) return lra_fail(err, LRA_ERR_USAGE, "--task-opt: %s='%s' is not an integer", kv, eq + 1);
        if (!strcmp(kv, "keys")) o->keys = (int)(v < 2 || v > MAX_KEYS ? -1 : v);
        else if (!strcmp(kv, "values")) o->values = (int)(v < 2 || v > MAX_VALUES ? -1 : v);
        else if (!strcmp(kv, "pairs")) o->pairs = (int)(v < 1 || v > 1 << 20 ? -1 : v);
        else if (!strcmp(kv, "train")) o->train = v < 1 || v > 10000000 ? -1 : v;
        else if (!strcmp(kv, "eval")) o->eval = v < 1 || v > 10000000 ? -1 : v;
        else return lra_fail(err, LRA_ERR_USAGE, "--task-opt: unknown option '%s' (mqar: layout, keys, values, pairs, train, eval)", kv);
        if (o->keys < 0 || o->values < 0 || o->pairs < 0 || o->train < 0 || o->eval < 0)
            return lra_fail(err, LRA_ERR_USAGE, "--task-opt: %s=%ld out of range (keys 2-%d, values 2-%d, pairs >= 1, "
                            "train and eval 1-10000000)", kv, v, MAX_KEYS, MAX_VALUES);
    }
    if (o->pairs > o->keys)
        return lra_fail(err, LRA_ERR_USAGE, "--task-opt: pairs=%d needs as many distinct keys (keys=%d)", o->pairs, o->keys);
    const int need = (o->joint ? 1 : 2) * o->pairs + 1;
    if (need > max_len)
        return lra_fail(err, LRA_ERR_USAGE, "--task-opt: pairs=%d and the query need %d tokens; --max-len=%d", o->pairs,
                        need, max_len);
    return LRA_OK;
}

static lra_status mqar_check(const char *opts, int max_len, char *err) {
    mqar_opts o;
    return parse_opts(opts, max_len, &o, err);
}

static lra_status mqar_prepare(const lra_task_cfg *cfg, char *source, size_t n, char *err) {
    mqar_opts o;
    lra_status st = parse_opts(cfg->opts, cfg->max_len, &o, err);
    if (st != LRA_OK) return st;
    snprintf(source, n, "generated in memory (seed %llu): layout=%s keys=%d values=%d pairs=%d length %d, %ld/%ld/%ld examples",
             (unsigned long long)cfg->data_seed, o.joint ? "joint" : "pairs", o.keys, o.values, o.pairs, cfg->max_len,
             o.train, o.eval, o.eval);
    return LRA_OK;
}

/* example i of split: tokens (L) and its label */
static int32_t example(const mqar_opts *o, uint64_t seed, int split, size_t i, int L, uint16_t *tok) {
    uint64_t s = seed * 0x2545f4914f6cdd1dULL ^ ((uint64_t)(split + 1) << 56) ^ (uint64_t)i;
    splitmix64(&s);
    int key[MAX_KEYS];
    for (int k = 0; k < o->keys; k++) key[k] = k;
    for (int p = 0; p < o->pairs; p++) { /* the first P of a partial Fisher-Yates shuffle: distinct keys */
        const int j = p + below(&s, o->keys - p), t = key[p];
        key[p] = key[j];
        key[j] = t;
    }
    int32_t value[MAX_KEYS];
    for (int t = 0; t < L - 1; t++) tok[t] = FILLER;
    for (int p = 0; p < o->pairs; p++) {
        value[p] = below(&s, o->values);
        if (o->joint) { /* at a free position drawn uniformly before the query: no block holds them all */
            int at;
            do at = below(&s, L - 1); while (tok[at] != FILLER);
            tok[at] = (uint16_t)(FIRST_JOINT + key[p] * MAX_VALUES + value[p]);
        } else {
            tok[2 * p] = (uint16_t)(FIRST_KEY + key[p]);
            tok[2 * p + 1] = (uint16_t)(FIRST_VALUE + value[p]);
        }
    }
    const int q = below(&s, o->pairs);
    tok[L - 1] = (uint16_t)(FIRST_KEY + key[q]);
    return value[q];
}

static lra_status mqar_open(lra_split *out, const lra_task_cfg *cfg, int split, char *err) {
    mqar_opts o;
    lra_status st = parse_opts(cfg->opts, cfg->max_len, &o, err);
    if (st != LRA_OK) return st;
    memset(out, 0, sizeof *out);
    const int L = cfg->max_len;
    const size_t n = (size_t)(split == LRA_SPLIT_TRAIN ? o.train : o.eval);
    out->tokens = malloc(n * (size_t)L * sizeof(uint16_t));
    out->offset = malloc((n + 1) * sizeof(size_t));
    out->labels = malloc(n * sizeof(int32_t));
    if (!out->tokens || !out->offset || !out->labels) {
        lra_split_free(out);
        return lra_fail(err, LRA_ERR_NOMEM, "mqar: out of memory for %zu examples of %d tokens", n, L);
    }
    lra_sha256 h;
    lra_sha256_init(&h);
    for (size_t i = 0; i < n; i++) {
        out->offset[i] = i * (size_t)L;
        out->labels[i] = example(&o, cfg->data_seed, split, i, L, out->tokens + i * (size_t)L);
        lra_sha256_update(&h, out->tokens + i * (size_t)L, (size_t)L * sizeof(uint16_t));
        lra_sha256_update(&h, &out->labels[i], sizeof(int32_t));
    }
    out->offset[n] = n * (size_t)L;
    out->n = n;
    lra_sha256_final_hex(&h, out->sha256);
    snprintf(out->path, sizeof out->path, "mqar %s split (generated in memory, seed %llu)", lra_split_names[split],
             (unsigned long long)cfg->data_seed);
    return LRA_OK;
}

const lra_task_i lra_task_mqar = {
    .name = "mqar",
    .title = "MQAR",
    .help = "associative recall (Zoology's MQAR, one query per example: its value is the class);\n"
            "           generated in memory from --data-seed, no files; --task-opt=layout=joint,keys=16,\n"
            "           values=8,pairs=4,train=20000,eval=2000 (the defaults; layout=pairs: Zoology's\n"
            "           key-then-value tokens), the length is --max-len",
    .published = NAN,
    .in_average = 0,
    .not_lra = 1,
    /* no official LRA row: Zoology's scale (2 layers, width 128) at length 256, and its own recipe */
    .official = {2, 2, 128, 128, 256, 64, 256, 1e-3, 100, 3000, 0.1, "cls", "sin", "constant", 0.0f, 0.0f, 0},
    .repro = {256, 64, 300, 3000, 300, 300},
    /* the CI size (docs/ci.md): full solves it within the budget; the defaults of agent (128 agents),
     * moe (2 of 3 blocks of 64) and mita (64 experts of 64 keys) compress at 129 positions */
    .ci = {.layers = 2, .emb = 64, .mlp = 128, .batch = 32, .max_len = 128, .steps = 3000, .warmup = 100, .lr = 3e-3},
    .source = {NULL, NULL, NULL, NULL},
    .vocab = VOCAB,
    .classes = MAX_VALUES,
    .max_len = 256,
    .check_opts = mqar_check,
    .prepare = mqar_prepare,
    .open = mqar_open,
};
