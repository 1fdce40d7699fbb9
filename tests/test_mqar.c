/* test_mqar.c - the associative-recall task (tasks/mqar.c): every generated example checked
 * against the task's definition by an independent reader (pairs of distinct keys and values,
 * filler, one query among the keys, the label its value), determinism per seed, the options'
 * errors, and every backend end to end. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "../attention/attention.h"
#include "../tasks/task.h"
#include "tests.h"

/* the layout tasks/mqar.c documents: 0 pad, 1 filler, values 2..17, keys 18..273, joint pairs
 * 274 + key * 16 + value */
enum { FILLER = 1, FIRST_VALUE = 2, FIRST_KEY = 18, FIRST_JOINT = 274, MAXV = 16 };

static void open_split(lra_split *s, const char *opts, int max_len, uint64_t seed, int split) {
    const lra_task_i *t = lra_task_find("mqar");
    ck_assert_ptr_nonnull(t);
    lra_task_cfg cfg = {.data_dir = ".", .max_len = max_len, .quiet = 1, .data_seed = seed, .dataset = "", .opts = opts};
    char err[LRA_ERR_LEN];
    ck_assert_msg(t->open(s, &cfg, split, err) == LRA_OK, "%s", err);
}

/* Reads example x (L tokens) back into its pairs by the definition, checks it, and returns the
 * value bound to the query, -1 where none is */
static int read_example(const uint16_t *x, int L, int joint, int keys, int values, int pairs, int *first_pos) {
    int key[64], value[64], n = 0;
    for (int t = 0; t < L - 1; t++) {
        if (x[t] == FILLER) continue;
        if (joint) {
            const int j = x[t] - FIRST_JOINT;
            ck_assert_msg(j >= 0 && j / MAXV < keys && j % MAXV < values && n < 64, "position %d: token %d", t, x[t]);
            if (n == 0) *first_pos = t;
            key[n] = j / MAXV;
            value[n++] = j % MAXV;
        } else {
            ck_assert_msg(t < 2 * pairs, "pairs layout: token %d at %d, past the pairs", x[t], t);
            const int k = x[t] - FIRST_KEY, v = x[t + 1] - FIRST_VALUE;
            ck_assert_msg(t % 2 == 0 && k >= 0 && k < keys && v >= 0 && v < values, "position %d: %d %d", t, x[t], x[t + 1]);
            key[n] = k;
            value[n++] = v;
            t++;
        }
    }
    ck_assert_int_eq(n, pairs);
    for (int p = 0; p < n; p++)
        for (int q = 0; q < p; q++) ck_assert_msg(key[p] != key[q], "key %d twice", key[p]);
    for (int p = 0; p < n; p++)
        if (FIRST_KEY + key[p] == x[L - 1]) return value[p];
    return -1;
}

START_TEST(test_mqar_examples) {
    const int keys = 20, values = 7, pairs = 6, L = 40;
    for (int joint = 0; joint <= 1; joint++) {
        char opts[128];
        snprintf(opts, sizeof opts, "layout=%s,keys=20,values=7,pairs=6,train=500,eval=100", joint ? "joint" : "pairs");
        lra_split s;
        open_split(&s, opts, L, 3, LRA_SPLIT_TRAIN);
        ck_assert_int_eq((int)s.n, 500);
        int label_seen[7] = {0}, first_at_0 = 0;
        for (size_t i = 0; i < s.n; i++) {
            ck_assert_int_eq(lra_split_len(&s, i), L);
            int first = -1;
            const int bound = read_example(s.tokens + s.offset[i], L, joint, keys, values, pairs, &first);
            ck_assert_msg(bound >= 0, "example %zu: the query is none of its keys", i);
            ck_assert_int_eq(s.labels[i], bound);
            label_seen[bound]++;
            first_at_0 += first == 0;
        }
        for (int v = 0; v < values; v++) ck_assert_msg(label_seen[v] > 30, "value %d labels %d of 500", v, label_seen[v]);
        /* joint: scattered, so the first pair is at position 0 about 6/39 of the time, not always */
        if (joint) ck_assert_msg(first_at_0 > 30 && first_at_0 < 150, "first pair at 0 in %d of 500", first_at_0);
        /* the same seed gives the same split; another seed or split another */
        lra_split again, other, val;
        open_split(&again, opts, L, 3, LRA_SPLIT_TRAIN);
        open_split(&other, opts, L, 4, LRA_SPLIT_TRAIN);
        open_split(&val, opts, L, 3, LRA_SPLIT_VAL);
        ck_assert_int_eq((int)val.n, 100);
        ck_assert_str_eq(s.sha256, again.sha256);
        ck_assert(memcmp(s.tokens, again.tokens, s.offset[s.n] * sizeof(uint16_t)) == 0);
        ck_assert_str_ne(s.sha256, other.sha256);
        ck_assert(memcmp(s.tokens, val.tokens, val.offset[val.n] * sizeof(uint16_t)) != 0);
        lra_split_free(&s);
        lra_split_free(&again);
        lra_split_free(&other);
        lra_split_free(&val);
    }
}
END_TEST

/* options: each mistake named; other tasks take none */
START_TEST(test_mqar_options) {
    const char *data = t_listops_data();
    static const struct { const char *args, *want; } bad[] = {
        {"--task=mqar --task-opt=layout=pairs,keys=64,pairs=40 --max-len=64", "pairs=40 and the query need 81 tokens; --max-len=64"},
        {"--task=mqar --task-opt=keys=100,pairs=64 --max-len=64", "pairs=64 and the query need 65 tokens; --max-len=64"},
        {"--task=mqar --task-opt=layout=rows", "layout=rows must be joint or pairs"},
        {"--task=mqar --task-opt=keys=4,pairs=5", "pairs=5 needs as many distinct keys (keys=4)"},
        {"--task=mqar --task-opt=values=17", "values=17 out of range"},
        {"--task=mqar --task-opt=colour=3", "unknown option 'colour'"},
        {"--task=mqar --task-opt=pairs=x", "pairs='x' is not an integer"},
        {"--task=listops --task-opt=pairs=2", "listops takes no task options"},
    };
    char msg[4096];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = t_run(msg, sizeof msg, "%s %s --profile=ci --data-dir=%s", t_bench(), bad[i].args, data);
        ck_assert_msg(rc == 2 && strstr(msg, bad[i].want), "%s: exit %d: %s", bad[i].args, rc, msg);
    }
}
END_TEST

/* every backend trains and evaluates on it; the report records the options and the generation */
START_TEST(test_mqar_every_backend) {
    const char *dir = t_tmpdir();
    char msg[8192], path[600];
    for (int b = 0; b < lra_attn_count(); b++) {
        const char *backend = lra_attn_name_at(b);
        snprintf(path, sizeof path, "%s/%s.json", dir, backend);
        int rc = t_run(msg, sizeof msg, "%s --task=mqar --profile=ci --backend=%s --steps=4 --max-len=160 --task-opt=pairs=4,train=64,eval=32 "
                       "--out=%s --progress=off", t_bench(), backend, path);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", backend, rc, msg);
        cJSON *j = t_load_json(path);
        ck_assert_str_eq(t_str(j, "status"), "completed");
        ck_assert_str_eq(t_str(j, "config.task-opt"), "pairs=4,train=64,eval=32");
        ck_assert_msg(strstr(t_str(j, "data.source"), "generated in memory (seed 1): layout=joint keys=16 values=8 pairs=4"), "%s",
                      t_str(j, "data.source"));
        cJSON_Delete(j);
    }
}
END_TEST

Suite *mqar_suite(void) {
    Suite *s = suite_create("mqar");
    TCase *tc = tcase_create("mqar");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_mqar_examples);
    tcase_add_test(tc, test_mqar_options);
    tcase_add_test(tc, test_mqar_every_backend);
    suite_add_tcase(s, tc);
    return s;
}
