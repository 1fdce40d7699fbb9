/* task.h - the task interface: raw data -> token ids, masks, labels.
 *
 * A task makes sure its data exists (prepare: find it, or generate it offline where a generator
 * exists) and loads one split into an lra_split: all examples in memory, truncated to max_len,
 * with the sha256 of the bytes they were read from. The harness pads batches itself. */
#ifndef LRA_TASK_H
#define LRA_TASK_H

#include "../common/lra.h"

enum { LRA_SPLIT_TRAIN = 0, LRA_SPLIT_VAL = 1, LRA_SPLIT_TEST = 2 };
extern const char *const lra_split_names[3]; /* "train", "val", "test" */

typedef struct {
    const char *data_dir; /* resolved by lra_data_dir() */
    int max_len;          /* tokens kept per example */
    int quiet;            /* no messages on stderr */
    uint64_t data_seed;   /* seed of offline generators */
    const char *dataset;  /* NULL or "": the task's official data; else a named alternative */
    const char *opts;     /* --task-opt: "key=value,...", "" for none (tasks with check_opts only) */
    int no_generate;      /* 1: missing data is an error, never generated (a resume of a run that
                             read files lra-bench did not make: generating would not give them) */
} lra_task_cfg;

typedef struct {
    size_t n;
    int docs;         /* sequences per example (0 is read as 1; Retrieval 2) */
    uint16_t *tokens; /* all sequences' ids, concatenated */
    uint8_t *pixels;  /* instead of tokens where every id is a byte (Image, Pathfinder, Path-X:
                         pixel 0 is a stored token): half the memory, 2.7 GB less for Path-X's
                         160,000 x 16384 training pixels. Exactly one of the two is set. */
    size_t *offset;   /* (n * docs + 1): sequence j is tokens or pixels [offset[j] .. offset[j+1]);
                         example i holds sequences i * docs .. i * docs + docs - 1 */
    int32_t *labels;  /* (n) */
    char path[4096];  /* the file it came from */
    char sha256[65];  /* of that file's bytes */
    size_t skipped;     /* examples left out as unreadable (Pathfinder's empty images) */
    int mask_by_length; /* 0: token 0 is padding wherever it is (the official code; masks black
                           pixels on Image); 1: only positions past the example's end */
} lra_split;

/* The task's row of lra.md's configuration table: the `official` profile. */
typedef struct {
    int layers, heads, emb, qkv, mlp, batch, max_len;
    double lr;
    int warmup, steps;
    double wd;
    const char *pool, *pos, *schedule; /* "cls" | "mean", "sin" | "learned", "rsqrt" | "cosine" */
    float dropout, attn_dropout;
    double clip;
} lra_task_official;

/* The reproduction recipe's values for the task (lra.md): the `repro` profile. It evaluates the
 * whole validation split every eval_every steps, coarser than the recipe's own frequency where
 * that would spend more than about 15% of a run here on evaluation. */
typedef struct { int max_len, batch, warmup, steps, recipe_eval_every, eval_every; } lra_task_repro;

/* The ci profile's model and run where the common one (1 layer, emb 32, 30 steps, length 256)
 * does not suit the task; a 0 field keeps the common value. */
typedef struct {
    int layers, emb, mlp, batch, max_len, steps, warmup;
    double lr;
    const char *dataset; /* the ci profile's --dataset (NULL: the official data) */
} lra_task_ci;

/* Where `lra-bench fetch` gets the task's official data: a file read in place (extract NULL), or
 * the members of an archive extracted beside it (NULL-terminated path fragments). */
typedef struct {
    const char *url, *file, *md5; /* md5 NULL: none published */
    const char *const *extract;
} lra_task_source;

/* `lra-bench generate`'s options, parsed by the command; a generator reads those its task lists in
 * generate_options. 0 (or NULL) means the generator's default. */
typedef struct {
    const char *out;     /* the directory it writes into (--out) */
    uint64_t seed;       /* --data-seed */
    long sizes[3];       /* --sizes=TRAIN,VAL,TEST */
    long images;         /* --images */
    int contour;         /* --contour */
    int lengths[2];      /* --lengths=MIN,MAX: ListOps keeps trees with MIN < length < MAX */
    const char *preview; /* --preview=FILE.png: a sheet of the first images instead of a set */
} lra_generate_opts;

/* The LRA release (lra.md): several tasks' official data in one 7.7 GB archive. */
#define LRA_RELEASE_URL "https://storage.googleapis.com/long-range-arena/lra_release.gz"

/* Everything the harness knows about a task comes from here: adding a task is one file and one
 * line in tasks/task.c (tasks/README.md walks through it). */
/* A data set a task reads besides its official data (--dataset=NAME): a labelled substitute,
 * which reports record and compare keeps in a column of its own, never pooled with LRA's. */
typedef struct {
    const char *name;       /* the --dataset value */
    const char *substitute; /* the report's data.substitute: what it is, and that it is not LRA's */
    int longest;            /* tokens of its longest example (0: the task's max_len): a --max-len below cuts */
} lra_task_dataset;

typedef struct lra_task_i {
    const char *name;
    const char *title;           /* for tables and charts: "ListOps" */
    const char *help;            /* --help's lines about its data (continuation lines indented by 11) */
    double published;            /* the LRA paper's Transformer test accuracy, %; NAN: FAIL */
    int in_average;              /* counted in the LRA average (every task but Path-X) */
    int not_lra;                 /* not one of LRA's six (MQAR): a table column only where a report has it */
    const lra_task_dataset *datasets; /* --dataset alternatives, ended by one with no name; NULL: none */
    lra_task_official official;
    lra_task_repro repro;
    lra_task_ci ci;              /* optional: zero keeps the common ci profile */
    lra_task_source source;
    int vocab, classes, max_len; /* max_len: the official sequence length */
    /* Optional: lra-bench's offline generator (prepare calls it when no data is found; data_seed
     * applies), `lra-bench generate`'s options it takes ("sizes", "images,contour,preview"), and
     * the generator itself, which writes a set under o->out and refuses to replace one. */
    const char *generate_options;
    lra_status (*generate)(const lra_generate_opts *o, char *err);
    int val_is_test;             /* 1 when the official validation split is the test split (Text) */
    int docs;                    /* sequences per example: 1, or 2 for Retrieval's document pairs */
    /* Optional: checks --task-opt (NULL: the task takes none, and any is refused) against the
     * sequence length, naming the bad option. */
    lra_status (*check_opts)(const char *opts, int max_len, char *err);
    /* Makes sure the data exists under cfg->data_dir; writes a one-line description of where it
     * came from into source (e.g. "generated, seed 1, in DIR"). */
    lra_status (*prepare)(const lra_task_cfg *cfg, char *source, size_t n, char *err);
    /* Loads split LRA_SPLIT_*; on success the caller frees it with lra_split_free. */
    lra_status (*open)(lra_split *out, const lra_task_cfg *cfg, int split, char *err);
} lra_task_i;

enum { LRA_MAX_TASKS = 32 }; /* a bound for callers' per-task arrays */

/* The registry, in LRA's order: lra_task_at(0 .. lra_task_count() - 1); lookup by name (NULL if
 * unknown); "listops, text, ..." into buf for messages. */
int lra_task_count(void);
const lra_task_i *lra_task_at(int i);
const lra_task_i *lra_task_find(const char *name);
/* 1 when name is one of list's comma-separated entries (generate_options); NULL list: 0 */
int lra_in_list(const char *list, const char *name);
/* t's alternative data set called name; NULL for none (the official data: "") */
const lra_task_dataset *lra_task_dataset_find(const lra_task_i *t, const char *name);
/* buf = t's alternatives' names, comma-separated ("" when it has none) */
void lra_task_dataset_names(const lra_task_i *t, char *buf, size_t n);
void lra_task_names(char *buf, size_t n);

void lra_split_free(lra_split *s);
static inline int lra_split_docs(const lra_split *s) { return s->docs > 1 ? s->docs : 1; }
/* The id at position at of the concatenated sequences. */
static inline int lra_split_token(const lra_split *s, size_t at) { return s->pixels ? s->pixels[at] : s->tokens[at]; }
/* The length of example i: its longest sequence. */
static inline int lra_split_len(const lra_split *s, size_t i) {
    const int d = lra_split_docs(s);
    int most = 0;
    for (int k = 0; k < d; k++) {
        const int n = (int)(s->offset[i * d + k + 1] - s->offset[i * d + k]);
        most = n > most ? n : most;
    }
    return most;
}
/* Writes example i padded to L >= its length: tokens (docs, L), mask (docs, L) = position inside
 * the sequence and (unless mask_by_length) token != 0, label. */
void lra_split_example(const lra_split *s, size_t i, int L, int32_t *tokens, uint8_t *mask, int32_t *label);

/* Loaders that read a split line by line grow its arrays by doubling: capacities in elements. */
typedef struct { size_t tokens, offsets, labels; } lra_split_caps;
/* Makes *p (of *cap elements of elem bytes) hold at least need elements; 0 when out of memory. */
int lra_grow(void **p, size_t *cap, size_t need, size_t elem);

/* For splits of fixed-length examples (images): keeps the first max_len tokens of each of the
 * n examples of len tokens, in place; nothing when max_len >= len. */
void lra_split_keep_first(lra_split *s, int len, int max_len);

#endif
