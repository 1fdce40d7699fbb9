/* run.c - see run.h. One run: setup (paths, model, data, resume), the training loop, the final
 * evaluation and the report; evaluate.c, run_report.c and run_checkpoint.c hold those parts
 * (run_state.h). */
#define _POSIX_C_SOURCE 200809L
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "../../common/atomic_file.h"
#include "../../common/fs.h"
#include "../../common/json_file.h"
#include "../../common/sha256.h"
#include "../../common/test_hook.h"
#include "../../datasets/datadir.h"
#include "../../tasks/task.h"
#include "../encoder/dist.h"
#include "../encoder/train.h"
#include "run_state.h"
#include "sysinfo.h"

/* The progress lines' running sums since the last line, and the pace since this process began. */
typedef struct {
    double loss, acc, lr, t0, loop_t0;
    long tokens;
    int n, loop_first;
} progress_log;

static void fmt_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e8) { snprintf(buf, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

/* The task's view of the run's options and data directory. */
static lra_task_cfg task_cfg(const run_state *r) {
    const lra_config *c = r->c;
    return (lra_task_cfg){r->data_dir, c->max_len, 0, (uint64_t)c->data_seed, c->dataset, c->task_opts};
}

/* The data directory, and the task's data in it: found, or generated when the task can. */
static lra_status prepare_data(run_state *r, char *err) {
    lra_status st = lra_data_dir(r->data_dir, sizeof r->data_dir, r->c->data_dir, err);
    if (st != LRA_OK) return st;
    const lra_task_cfg tc = task_cfg(r);
    return r->task->prepare(&tc, r->source, sizeof r->source, err);
}

static lra_status load_data(run_state *r, char *err) {
    const lra_config *c = r->c;
    lra_status st = prepare_data(r, err);
    if (st != LRA_OK) return st;
    const lra_task_cfg tc = task_cfg(r);
    lra_sha256 h;
    lra_sha256_init(&h);
    for (int s = 0; s < 3; s++) {
        if (s == LRA_SPLIT_TEST && r->task->val_is_test)
            r->split[s] = r->split[LRA_SPLIT_VAL]; /* the same examples: shared, freed once (with val) */
        else if ((st = r->task->open(&r->split[s], &tc, s, err)) != LRA_OK)
            return st;
        r->split[s].mask_by_length = c->pad_mask == 1;
        lra_sha256_update(&h, r->split[s].sha256, 64);
    }
    lra_sha256_final_hex(&h, r->data_checksum);
    /* evaluation order */
    for (int s = 1; s < 3; s++) {
        size_t n = r->split[s].n;
        r->eval_order[s] = malloc(n * sizeof(uint32_t));
        if (!r->eval_order[s]) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) r->eval_order[s][i] = (uint32_t)i;
        if (c->batching != LRA_BATCH_FULL) {
            /* counting sort by length keeps ties in index order */
            int maxl = 0;
            for (size_t i = 0; i < n; i++) maxl = lra_split_len(&r->split[s], i) > maxl ? lra_split_len(&r->split[s], i) : maxl;
            size_t *cnt = calloc((size_t)maxl + 2, sizeof(size_t));
            if (!cnt) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
            for (size_t i = 0; i < n; i++) cnt[lra_split_len(&r->split[s], i) + 1]++;
            for (int l = 1; l <= maxl + 1; l++) cnt[l] += cnt[l - 1];
            for (size_t i = 0; i < n; i++) r->eval_order[s][cnt[lra_split_len(&r->split[s], i)]++] = (uint32_t)i;
            free(cnt);
        }
        /* the periodic subset: the same examples for every run and backend (a fixed seed, not the
         * run's), kept in evaluation order so its batches pad as little as the full pass */
        size_t want = c->eval_subset > 0 && (size_t)c->eval_subset < n ? (size_t)c->eval_subset : n;
        uint8_t *pick = calloc(n, 1);
        r->eval_sub[s] = malloc(want * sizeof(uint32_t));
        if (!pick || !r->eval_sub[s]) { free(pick); return lra_fail(err, LRA_ERR_NOMEM, "out of memory"); }
        if (want == n) memset(pick, 1, n);
        else {
            lra_rng g;
            lra_rng_seed(&g, 0x5eb5e7u + (uint64_t)s);
            for (size_t i = n - want; i < n; i++) { /* Floyd's sampling: want distinct indices */
                size_t j = (size_t)(lra_rng_u64(&g) % (i + 1));
                pick[pick[j] ? i : j] = 1;
            }
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (pick[r->eval_order[s][i]]) r->eval_sub[s][k++] = r->eval_order[s][i];
        r->n_sub[s] = k;
        free(pick);
    }
    return LRA_OK;
}

/* Names what went bad first: a parameter (poisoned, or an update that overflowed), else the first
 * gradient, else the loss itself. */
static void diverged(run_state *r, int step, float loss) {
    lra_model *m = &r->model;
    char name[96];
    size_t i = lra_model_first_nonfinite(m, m->params);
    const char *what = "parameter";
    const float *x = m->params;
    if (i == m->nparams) { i = lra_model_first_nonfinite(m, m->grads); what = "gradient of"; x = m->grads; }
    if (i < m->nparams) {
        lra_model_param_name(m, i, name, sizeof name);
        snprintf(r->diverged_at, sizeof r->diverged_at, "step %d: %s %s is %s (loss %g)", step, what, name,
                 isnan(x[i]) ? "NaN" : "Inf", (double)loss);
    } else {
        snprintf(r->diverged_at, sizeof r->diverged_at, "step %d: the loss is %s with finite parameters and gradients",
                 step, isnan(loss) ? "NaN" : "Inf");
    }
}

/* The POISON test hook (common/test_hook.h): parameter INDEX becomes NaN before step STEP. */
static void test_poison(run_state *r, int step) {
    const char *e = lra_test_hook("POISON");
    long at, index;
    if (e && sscanf(e, "%ld:%ld", &at, &index) == 2 && at == step && index >= 0 && (size_t)index < r->model.nparams)
        r->model.params[index] = NAN;
}

/* The STOP_AT test hook: SIGSTOP before step STEP, for a test to SIGKILL at a known point. */
static void test_stop(int step) {
    const char *e = lra_test_hook("STOP_AT");
    if (e && atoi(e) == step) raise(SIGSTOP);
}

/* The SIGNAL_AT and DIE_AT test hooks, for the MPI tests: before step STEP the last process
 * raises SIGINT (one process of the job signalled), or SIGKILL (one process dies). */
static void test_signal_or_die(int step) {
    const char *sig = lra_test_hook("SIGNAL_AT"), *die = lra_test_hook("DIE_AT");
    if (lra_dist_rank() != lra_dist_size() - 1) return;
    if (sig && atoi(sig) == step) { /* to the process, as kill(1) sends it; the watcher thread takes it */
        kill(getpid(), SIGINT);
        while (!lra_stop_requested()) sched_yield(); /* taken before this step, as a handler would have */
    }
    if (die && atoi(die) == step) raise(SIGKILL);
}

/* The DUMP_STEP=STEP:DIR hook (scripts/torch_crosscheck.py): training step STEP's batch, the
 * parameters before it and its gradients after it, with every tensor's flat offset, as
 * DIR/params.f32, DIR/grads.f32 and DIR/step.json. phase 0 before the step, 1 after. */
static void test_dump_step(run_state *r, int step, int L, int phase, float loss) {
    const char *e = lra_test_hook("DUMP_STEP");
    char dir[4096], path[4200], err[LRA_ERR_LEN];
    int at;
    if (!e || sscanf(e, "%d:%4095s", &at, dir) != 2 || at != step || lra_dist_rank() != 0) return;
    const lra_model *m = &r->model;
    snprintf(path, sizeof path, "%s/%s", dir, phase ? "grads.f32" : "params.f32");
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(phase ? m->grads : m->params, sizeof(float), m->nparams, f) != m->nparams) abort();
    fclose(f);
    if (!phase) return;
    const int rows = r->task->docs == 2 ? 2 : 1, B = r->c->batch;
    cJSON *j = cJSON_CreateObject(), *tensors = cJSON_AddObjectToObject(j, "tensors");
    cJSON_AddNumberToObject(j, "B", B);
    cJSON_AddNumberToObject(j, "L", L);
    cJSON_AddNumberToObject(j, "loss", loss);
    cJSON_AddItemToObject(j, "tokens", cJSON_CreateIntArray(r->tokens, B * rows * L));
    cJSON_AddItemToObject(j, "labels", cJSON_CreateIntArray(r->labels, B));
    cJSON *mask = cJSON_AddArrayToObject(j, "mask");
    for (int i = 0; i < B * rows * L; i++) cJSON_AddItemToArray(mask, cJSON_CreateNumber(r->mask[i]));
    char name[96], prev[96] = "";
    for (size_t i = 0; i < m->nparams; i++) { /* "blocks.1.fcw[37]" -> tensor blocks.1.fcw at its first index */
        lra_model_param_name(m, i, name, sizeof name);
        *strchr(name, '[') = '\0';
        if (strcmp(name, prev)) cJSON_AddNumberToObject(tensors, name, (double)i);
        snprintf(prev, sizeof prev, "%s", name);
    }
    snprintf(path, sizeof path, "%s/step.json", dir);
    if (lra_write_json_atomic(path, j, err) != LRA_OK) abort();
    cJSON_Delete(j);
}

/* The HOLD_ON_STOP test hook: after the first signal, wait for the second (which exits at once). */
static void test_hold_on_stop(void) {
    if (!lra_test_hook("HOLD_ON_STOP")) return;
    for (;;) pause();
}

void lra_run_default_report(const lra_config *c, char *path, size_t n) {
    cJSON *id = lra_config_identity_json(c);
    cJSON_DeleteItemFromObjectCaseSensitive(id, "seed"); /* in the name already */
    /* an option added later hashes only when given, so that earlier runs keep their names */
    if (!c->task_opts[0]) cJSON_DeleteItemFromObjectCaseSensitive(id, "task-opt");
    char *text = cJSON_PrintUnformatted(id), hex[65] = "00000000";
    cJSON_Delete(id);
    if (text) {
        lra_sha256 h;
        lra_sha256_init(&h);
        lra_sha256_update(&h, text, strlen(text));
        lra_sha256_final_hex(&h, hex);
        free(text);
    }
    snprintf(path, n, "results/%s/%s-%s-seed%ld-%.8s.json", c->task, c->backend, c->profile, c->seed, hex);
}

void lra_run_checkpoint_beside(const char *report, char *path, size_t n) {
    size_t len = strlen(report);
    int json = len > 5 && strcmp(report + len - 5, ".json") == 0;
    snprintf(path, n, "%.*s.ckpt", (int)(json ? len - 5 : len), report);
}

void lra_run_checkpoint_path(const lra_config *c, const char *report, char *path, size_t n) {
    if (c->checkpoint[0]) snprintf(path, n, "%s", c->checkpoint);
    else lra_run_checkpoint_beside(report, path, n);
}

/* the run's lock file: REPORT.lock */
static void lock_name(const char *report, char *path, size_t n) { snprintf(path, n, "%s.lock", report); }

int lra_run_in_use(const char *report) {
    char lock[4300];
    lock_name(report, lock, sizeof lock);
    int fd, e = lra_lock_take(lock, &fd);
    if (e == 0) lra_lock_drop(lock, fd); /* free: the run that held it, if any, is gone */
    return e == EBUSY;
}

/* ---- the report's and checkpoint's names: claimed at start, never another's replaced -------- */

/* "X exists": what the report there holds, and the ways on that work for it */
static lra_status refuse_existing(const char *path, int is_report, char *err) {
    char what[160] = "", how[600];
    int resumable = !is_report; /* a checkpoint continues; a report only where it says it is unfinished */
    if (is_report) {
        lra_status ignored;
        char e2[LRA_ERR_LEN];
        cJSON *j = lra_read_json(path, &ignored, e2);
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "results"), "train"), "steps");
        if (cJSON_IsString(status) && cJSON_IsNumber(steps))
            snprintf(what, sizeof what, " (a %s run, %.0f steps)", status->valuestring, steps->valuedouble);
        else if (cJSON_IsString(status)) /* a placeholder: another run claimed it and is setting up */
            snprintf(what, sizeof what, " (a run %s: claimed by another lra-bench)", status->valuestring);
        resumable = cJSON_IsString(status) && (!strcmp(status->valuestring, "interrupted") ||
                                               !strcmp(status->valuestring, "running"));
        cJSON_Delete(j);
    }
    if (resumable)
        snprintf(how, sizeof how, "`lra-bench resume %s` continues that run; --out=PATH writes this one elsewhere; "
                 "--overwrite replaces it", path);
    else
        snprintf(how, sizeof how, "--out=PATH writes this run elsewhere; --overwrite replaces it");
    return lra_fail(err, LRA_ERR_USAGE, "%s exists%s: %s", path, what, how);
}

/* The run's lock (report + ".lock"), held from before the claim to the last write: a second
 * process on the same report, a fresh run, a resume or a batch, is refused while this one lives,
 * and finds the lock free the moment it dies, which is how `batch` tells a killed run from one
 * that is going. The file holds the holder's pid, for the message. */
static lra_status take_lock(run_state *r, char *err) {
    lock_name(r->report_path, r->lock_path, sizeof r->lock_path);
    char dir[4096], why[LRA_ERR_LEN];
    lra_status st = lra_mkdirs_parent(r->lock_path, dir, sizeof dir, why);
    if (st != LRA_OK) return lra_fail(err, st, "cannot write the report %s (%s): nothing was run", r->report_path, why);
    int e = lra_lock_take(r->lock_path, &r->lock_fd);
    if (e == EBUSY) {
        char pid[32] = "?";
        FILE *f = fopen(r->lock_path, "r");
        if (f) {
            if (!fgets(pid, sizeof pid, f)) snprintf(pid, sizeof pid, "?");
            pid[strcspn(pid, "\n")] = '\0';
            fclose(f);
        }
        return lra_fail(err, LRA_ERR_USAGE, "%s is in use: another lra-bench (pid %s) is running that run now; "
                        "--out=PATH writes this one elsewhere", r->report_path, pid);
    }
    if (e)
        return lra_fail(err, LRA_ERR_IO, "cannot write the report %s (its lock %s: %s): nothing was run", r->report_path,
                        r->lock_path, strerror(e));
    if (ftruncate(r->lock_fd, 0) == 0) dprintf(r->lock_fd, "%ld\n", (long)getpid());
    return LRA_OK;
}

static void drop_lock(run_state *r) {
    lra_lock_drop(r->lock_path, r->lock_fd);
    r->lock_fd = -1;
}

/* A new run's report name is claimed before anything long starts: a placeholder report (status
 * "starting") is linked in under exactly that name, which fails where the name exists, even when
 * another run created it a moment ago, so of two runs started together with one --out, one
 * refuses (exit 2) and the other runs. The placeholder's write also shows that the report can be
 * written (directory, permissions, space). An existing checkpoint is refused too, and so is a
 * checkpoint path equal to the report's. --overwrite claims nothing: it adopts the files there,
 * which stay until this run's own replace them, so a run that cannot write loses nothing.
 * A resumed run adopts its own files. */
static lra_status claim_names(run_state *r, char *err) {
    const lra_config *c = r->c;
    if (!strcmp(r->report_path, r->ckpt_path))
        return lra_fail(err, LRA_ERR_USAGE, "--checkpoint=%s is the report's path too: the two would overwrite each other",
                        r->ckpt_path);
    const int adopt = c->resume || c->overwrite;
    lra_owned_init(&r->report_name, r->report_path, adopt);
    lra_owned_init(&r->ckpt_name, r->ckpt_path, adopt);
    if (lra_dist_rank() != 0) return LRA_OK; /* one writer (dist.h) */
    if (!adopt && lra_file_exists(r->report_path)) return refuse_existing(r->report_path, 1, err);
    if (!adopt && lra_file_exists(r->ckpt_path)) return refuse_existing(r->ckpt_path, 0, err);
    if (c->resume) return LRA_OK;
    if (lra_test_hook("STOP_BEFORE_CLAIM")) raise(SIGSTOP);

    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "schema_version", LRA_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(j, "kind", "run");
    cJSON_AddStringToObject(j, "status", "starting");
    cJSON_AddNumberToObject(j, "pid", (double)getpid());
    cJSON_AddItemToObject(j, "config", lra_config_to_json(c));
    lra_atomic_file a;
    char why[LRA_ERR_LEN];
    lra_status st = lra_write_json_tmp(&a, r->report_path, j, why);
    cJSON_Delete(j);
    if (st != LRA_OK) return lra_fail(err, st, "cannot write the report %s (%s): nothing was run", r->report_path, why);
    if (c->overwrite) { /* written, so writable; the old report stays */
        lra_atomic_discard(&a);
        return LRA_OK;
    }
    int e = lra_atomic_claim(&a, &r->report_name, LRA_ATOMIC_SYNC);
    if (e == EEXIST) {
        lra_atomic_discard(&a);
        return refuse_existing(r->report_path, 1, err);
    }
    if (e)
        return lra_fail(err, LRA_ERR_IO, "cannot write the report %s (%s): nothing was run", r->report_path, strerror(e));
    r->claimed = 1;
    return LRA_OK;
}

/* Before the first step: room for the checkpoint, shown by allocating its size (twice over: the
 * new one is written beside the last) in a temporary file next to it, then removed. */
static lra_status check_checkpoint_room(run_state *r, char *err) {
    if (lra_dist_rank() != 0) return LRA_OK;
    const size_t np = r->model.nparams * sizeof(float);
    /* the sections (run_checkpoint.c: params, two moments, best params, the order) and the header */
    const off_t need = (off_t)(4 * np + 2 * r->bat.split->n * sizeof(uint32_t) + (64 << 10));
    lra_atomic_file a;
    char why[LRA_ERR_LEN];
    lra_status st = lra_atomic_open(&a, r->ckpt_path, why);
    if (st != LRA_OK)
        return lra_fail(err, LRA_ERR_IO, "cannot write the checkpoint %s (%s): nothing was run", r->ckpt_path, why);
    int e = posix_fallocate(fileno(a.f), 0, 2 * need); /* returns the error, errno untouched */
    if (e) errno = e;
    e = lra_atomic_finish(&a, e == 0, 0);
    lra_atomic_discard(&a);
    if (e)
        return lra_fail(err, LRA_ERR_IO, "%s: cannot write the checkpoint here (%s; it needs %.1f MB): nothing was run",
                        r->ckpt_path, strerror(e), 2 * need / 1e6);
    return LRA_OK;
}

/* The model's arenas against this machine's memory before any is allocated: a size that cannot
 * fit is refused with what it needs and what lowers it, instead of growing until the kernel kills
 * it (an allocation that fails later says the same). */
static lra_status check_memory(const lra_model_cfg *mc, char *err) {
    lra_model_sizes z;
    lra_status st = lra_model_plan(&z, mc, err);
    if (st != LRA_OK) return st;
    const double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    if ((double)z.total_bytes <= 0.9 * have) return LRA_OK;
    return lra_fail(err, LRA_ERR_USAGE, "the model needs %.2f GB (parameters, gradients and Adam %.2f GB, activations "
                    "%.2f GB, attention workspaces %.2f GB), more than 90%% of this machine's %.2f GB: lower --batch or "
                    "--max-len (activations and workspaces grow with both), or --layers, --emb, --mlp, --heads",
                    z.total_bytes / 1e9, 4.0 * z.params * sizeof(float) / 1e9, z.activation_bytes / 1e9,
                    z.attention_workspace_bytes / 1e9, have / 1e9);
}

/* After a set-up failure: the placeholder goes, so that a retry is not refused. */
static void unclaim(run_state *r) {
    if (r->claimed) lra_owned_remove(&r->report_name);
    r->claimed = 0;
    drop_lock(r);
}

/* ---- the run: setup, the training loop, the end ------------------------------------------ */

/* Paths (report, checkpoint beside it), the model (first: a bad backend option fails before any
 * data work), the data, the buffers of one batch and the batcher; then the checkpoint when
 * resuming. */
static lra_status setup(run_state *r, int threads, char *err) {
    const lra_config *c = r->c;
    lra_status st;
    const int say = lra_dist_rank() == 0; /* notes once per job */
    if (say && c->max_len > r->task->max_len)
        fprintf(stderr, "lra-bench: note: --max-len=%d exceeds the official %d for %s\n", c->max_len, r->task->max_len, c->task);
    else if (say && c->max_len < r->task->max_len) /* the ci profile's 256: Pathfinder then sees its top eight rows */
        fprintf(stderr, "lra-bench: note: inputs cut to %d of %s's %d tokens (--max-len)\n", c->max_len, c->task,
                r->task->max_len);
    /* OpenMPI's mpirun answers Ctrl-C with SIGTERM, then SIGKILL 1 s later: too soon for a step;
     * raising odls_base_sigkill_timeout delays the SIGTERM as well (measured by a reviewer: mpirun
     * waits the timeout, twice). A SIGINT to the processes themselves stops them all cleanly. */
    if (say && lra_dist_size() > 1 && getenv("OMPI_COMM_WORLD_SIZE"))
        fprintf(stderr, "lra-bench: note: to stop with a checkpoint, send SIGINT to the processes, not to mpirun: "
                "`pkill -INT lra-bench` (Slurm: `scancel --signal=INT JOB`); Ctrl-C on mpirun kills them 1 s after "
                "asking them to stop, before a step ends\n");
    lra_run_checkpoint_path(c, r->report_path, r->ckpt_path, sizeof r->ckpt_path);
    /* a mistyped --data-dir is named before anything about the report */
    if ((st = lra_data_dir(r->data_dir, sizeof r->data_dir, c->data_dir, err)) != LRA_OK) return st;
    if (lra_dist_rank() == 0) {
        if ((st = take_lock(r, err)) != LRA_OK) return st;
        /* a killed run's half-written report or checkpoint: never read, only in the way (and,
         * the lock held, no live run's) */
        lra_atomic_sweep(r->report_path);
        lra_atomic_sweep(r->ckpt_path);
    }
    if ((st = claim_names(r, err)) != LRA_OK) return st;
    if (say) /* before the data, whose first preparation can take minutes */
        fprintf(stderr, "lra-bench: %s %s on %s, profile %s, seed %ld: data in %s, report %s\n",
                c->resume ? "resuming" : "starting", c->backend, c->task, c->profile, c->seed, r->data_dir,
                r->report_path);

    lra_model_cfg mc = {
        .vocab = r->task->vocab, .classes = r->task->classes, .max_len = c->max_len, .batch = c->batch,
        .layers = c->layers, .heads = c->heads, .emb = c->emb, .qkv = c->qkv, .mlp = c->mlp,
        .cls = c->pool == LRA_POOL_CLS, .pool = c->pool, .learned_pos = c->pos_learned,
        .dropout = c->dropout, .attn_dropout = c->attn_dropout, .backend = c->backend,
        .attn_opts = c->attn_opts, .nthreads = threads, .docs = r->task->docs,
        .dual_head = c->retrieval_head != 0, .dual_one_hidden = c->retrieval_head == 2,
        .attn_bias = c->attn_bias, .init = c->init, .pool_len = lra_config_pool_len(c)};
    if ((st = check_memory(&mc, err)) != LRA_OK) return st;
    if ((st = lra_model_create(&r->model, &mc, err)) != LRA_OK) return st;
    if ((st = lra_trainer_create(&r->trainer, &r->model, c->grad_shards, err)) != LRA_OK) return st;
    if ((st = load_data(r, err)) != LRA_OK) return st;
    lra_model_init(&r->model, (uint64_t)c->seed);
    r->best_step = -1;
    r->best_params = malloc(r->model.nparams * sizeof(float));
    if (!r->best_params) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    memcpy(r->best_params, r->model.params, r->model.nparams * sizeof(float));

    const size_t BL = (size_t)c->batch * c->max_len * (r->task->docs == 2 ? 2 : 1);
    r->idx = malloc(sizeof(uint32_t) * c->batch);
    r->tokens = lra_alloc_touched(sizeof(int32_t) * BL);
    r->labels = malloc(sizeof(int32_t) * c->batch);
    r->mask = lra_alloc_touched(BL);
    r->curve = cJSON_CreateArray();
    r->resumed_at = cJSON_CreateArray();
    r->numerics_changed_at = cJSON_CreateArray();
    if (!r->idx || !r->tokens || !r->labels || !r->mask || !r->curve || !r->resumed_at || !r->numerics_changed_at)
        return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    if ((st = lra_batcher_init(&r->bat, &r->split[LRA_SPLIT_TRAIN], c->batch, c->batching, c->max_len,
                               lra_stream((uint64_t)c->seed, 0x5AFF1E, 0), err)) != LRA_OK)
        return st;
    if (c->resume && (st = lra_run_resume_from(r, err)) != LRA_OK) return st;
    if ((st = check_checkpoint_room(r, err)) != LRA_OK) return st;
    if (say) { /* terminal or not: a log shows what runs before the first progress line */
        char procs[64] = "";
        if (lra_dist_size() > 1) snprintf(procs, sizeof procs, "%d processes x ", lra_dist_size());
        fprintf(stderr, "lra-bench: %s on %s, profile %s: %zu parameters, %d steps of %d (%d gradient shard%s), %s%d threads%s%s\n",
                c->backend, c->task, c->profile, r->model.nparams, c->steps, c->batch, c->grad_shards,
                c->grad_shards == 1 ? "" : "s", procs, threads, c->resume ? "; resuming from " : "",
                c->resume ? r->ckpt_path : "");
    }
    return LRA_OK;
}

/* Under MPI, rank 0 first makes sure the data exists (generating it where the task can) while
 * the others wait; then every process sets up at once, reading the data itself. Every process
 * ends with the same status, the first failing one's message in err. */
static lra_status setup_everywhere(run_state *r, int threads, char *err) {
    if (lra_dist_size() == 1) return setup(r, threads, err);
    lra_status st = lra_dist_agree(lra_dist_rank() == 0 ? prepare_data(r, err) : LRA_OK, err);
    if (st != LRA_OK) return st;
    return lra_dist_agree(setup(r, threads, err), err);
}

/* Training step `step` on the next batch: the loss window, accuracy and timings the report and
 * the progress lines use. LRA_ERR_DIVERGED names what went bad. */
static lra_status train_one(run_state *r, int step, progress_log *log, char *err) {
    const lra_config *c = r->c;
    test_stop(step);
    test_signal_or_die(step);
    double ts = lra_now();
    lra_batcher_next(&r->bat, r->idx);
    test_poison(r, step);
    long real;
    int L = lra_batch_fill(&r->split[LRA_SPLIT_TRAIN], r->idx, c->batch, c->batching, c->max_len, r->tokens, r->mask,
                           r->labels, &real);
    const lra_step_hparams hp = lra_step_hparams_at(c, step);
    double norm;
    test_dump_step(r, step, L, 0, 0.0f);
    float loss = lra_train_step(&r->trainer, r->tokens, r->mask, r->labels, c->batch, L,
                                lra_stream((uint64_t)c->seed, 0xD50, (uint64_t)step), &hp, &norm);
    test_dump_step(r, step, L, 1, loss);
    if (!isfinite(loss) || !isfinite(norm)) {
        diverged(r, step, loss);
        r->status = "diverged";
        return lra_fail(err, LRA_ERR_DIVERGED, "training diverged at %s", r->diverged_at);
    }
    int correct = 0;
    for (int b = 0; b < c->batch; b++) correct += r->trainer.predicted[b] == r->labels[b];
    double dt = lra_now() - ts;
    r->steps_done = step + 1;
    r->win_loss[step % WINDOW] = loss;
    r->win_acc[step % WINDOW] = (float)correct / c->batch;
    if (step >= c->timing_skip) {
        r->train_time += dt;
        r->timed_steps++;
        r->timed_real_tokens += real;
        r->timed_padded_tokens += (long)c->batch * L * (r->task->docs == 2 ? 2 : 1);
    }
    log->loss += loss; log->acc += (double)correct / c->batch; log->tokens += real; log->n++;
    log->lr = hp.lr;
    return LRA_OK;
}

/* Every --log-every steps: the averages since the last line, rates and the ETA at this process's
 * pace, periodic evaluations and checkpoints included (a resumed run may have another thread
 * count than the steps before it). */
static void log_progress(run_state *r, int step, progress_log *log) {
    const lra_config *c = r->c;
    /* also after the first timed step of this process: the pace and an ETA within a few steps */
    const int first_timed = step == (log->loop_first > c->timing_skip ? log->loop_first : c->timing_skip);
    if (!r->progress || ((step + 1) % c->log_every != 0 && step + 1 != c->steps && !first_timed)) return;
    double now = lra_now(), span = now - log->t0, per_step = (now - log->loop_t0) / (step + 1 - log->loop_first);
    char eta[32];
    fmt_duration(per_step * (c->steps - step - 1), eta, sizeof eta);
    fprintf(stderr, "step %6d/%d | loss %.4f | acc %.3f | lr %.2e | %.2f steps/s | %.0f tok/s | ETA %s\n", step + 1,
            c->steps, log->loss / log->n, log->acc / log->n, log->lr, log->n / span, log->tokens / span, eta);
    log->loss = log->acc = 0;
    log->tokens = 0;
    log->n = 0;
    log->t0 = lra_now();
}

/* The first SIGINT/SIGTERM: a checkpoint (unless this step has one) and the message that says how
 * to go on; the caller writes the partial report. */
static lra_status interrupted(run_state *r, int step, int signo, char *err) {
    test_hold_on_stop();
    const char *sig = signo == SIGINT ? "SIGINT" : "SIGTERM";
    char cerr[LRA_ERR_LEN];
    r->status = "interrupted";
    if (r->ckpt_step != step && lra_run_save_checkpoint(r, cerr) != LRA_OK)
        return lra_fail(err, LRA_ERR_INTERRUPTED, "interrupted (%s) after %d of %d steps; the partial report is written, "
                        "but not the checkpoint: %s", sig, step, r->c->steps, cerr);
    return lra_fail(err, LRA_ERR_INTERRUPTED, "interrupted (%s) after %d of %d steps; checkpoint %s - `lra-bench resume %s` "
                    "continues the run", sig, step, r->c->steps, r->ckpt_path, r->ckpt_path);
}

/* The training loop: a step, its progress line, then the periodic evaluation (with a report, so a
 * stopped run keeps its curve) and checkpoint when they are due. */
static lra_status train(run_state *r, char *err) {
    const lra_config *c = r->c;
    progress_log log = {.t0 = lra_now(), .loop_first = r->steps_done};
    log.loop_t0 = log.t0;
    for (int step = r->steps_done; step < c->steps; step++) {
        /* a signal to any process stops every one of them before the same step */
        const int signo = lra_dist_max_int(lra_stop_requested());
        if (signo) return interrupted(r, step, signo, err);
        lra_status st = train_one(r, step, &log, err);
        if (st != LRA_OK) return st;
        log_progress(r, step, &log);
        if (c->eval_every > 0 && (step + 1) % c->eval_every == 0 && step + 1 < c->steps) {
            double te = lra_now();
            lra_run_periodic_evaluation(r, step + 1);
            char werr[LRA_ERR_LEN];
            if (lra_run_write_report(r, werr) != LRA_OK) fprintf(stderr, "lra-bench: warning: %s\n", werr);
            log.t0 += lra_now() - te; /* the progress line's rates leave evaluation out */
        }
        if (c->checkpoint_every > 0 && ((step + 1) % c->checkpoint_every == 0 || step + 1 == c->steps)) {
            char cerr[LRA_ERR_LEN]; /* a run that cannot checkpoint goes on: losing it is worse */
            if (lra_run_save_checkpoint(r, cerr) != LRA_OK) fprintf(stderr, "lra-bench: warning: %s\n", cerr);
        }
    }
    return LRA_OK;
}

static void run_free(run_state *r) {
    lra_batcher_free(&r->bat);
    lra_trainer_free(&r->trainer);
    lra_model_free(&r->model); /* safe on a model whose creation failed (zeroed) */
    for (int s = 0; s < 3; s++) {
        if (!(s == LRA_SPLIT_TEST && r->task && r->task->val_is_test)) lra_split_free(&r->split[s]);
        free(r->eval_order[s]);
        free(r->eval_sub[s]);
    }
    free(r->idx); free(r->tokens); free(r->labels); free(r->mask); free(r->best_params);
    cJSON_Delete(r->curve);
    cJSON_Delete(r->resumed_at);
    cJSON_Delete(r->numerics_changed_at);
    cJSON_Delete(r->attn_diag);
    free(r);
}

lra_status lra_run(const lra_config *c, char *report_path, size_t pathn, char *err) {
    run_state *r = calloc(1, sizeof *r);
    if (!r) return lra_fail(err, LRA_ERR_NOMEM, "out of memory");
    *r = (run_state){.c = c, .t0 = lra_now(), .started = (long)time(NULL), .status = "running", .ckpt_step = -1, .lock_fd = -1,
                     .task = lra_task_find(c->task),
                     .progress = lra_dist_rank() != 0 ? 0 : c->progress != 0}; /* on unless --progress=off */
    if (c->out[0]) snprintf(r->report_path, sizeof r->report_path, "%s", c->out);
    else lra_run_default_report(c, r->report_path, sizeof r->report_path);
    snprintf(report_path, pathn, "%s", r->report_path);
    const int threads = c->threads > 0 ? c->threads : lra_dist_default_threads();
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    /* SIGINT/SIGTERM: the first stops data generation, or training after the current step with
     * a checkpoint and a partial report; a second exits at once (the report on disk stays intact) */
    lra_stop_install();
    lra_status st = r->task ? LRA_OK : lra_fail(err, LRA_ERR_USAGE, "unknown task '%s'", c->task);
    if (st == LRA_OK && lra_dist_size() > c->grad_shards) /* every process knows: they all stop here */
        st = lra_fail(err, LRA_ERR_USAGE, "%d processes and --grad-shards=%d: each process computes whole shards of the "
                      "batch, so give --grad-shards=N with N >= %d (the numbers depend on N, never on the process count: "
                      "a run with the same N on any number of processes, one included, gives the same bits)",
                      lra_dist_size(), c->grad_shards, lra_dist_size());
    if (st == LRA_OK) st = setup_everywhere(r, threads, err);
    const int started = st == LRA_OK;
    if (!started) unclaim(r);
    if (started) st = train(r, err);
    if (started && st == LRA_OK) {
        lra_run_final_evaluation(r);
        r->status = "completed";
    }
    if (started) { /* completed, interrupted or diverged: the report says which */
        char werr[LRA_ERR_LEN];
        lra_status wst = lra_run_write_report(r, werr);
        if (wst != LRA_OK && st == LRA_OK) { st = wst; snprintf(err, LRA_ERR_LEN, "%s", werr); }
        drop_lock(r);
    }
    if (st == LRA_OK && lra_dist_rank() == 0) /* one line for logs and CI, terminal or not */
        fprintf(stderr, "lra-bench: %s/%s/%s seed %ld: test %.2f%% at the best-validation step %d (val %.2f%%), "
                "%.2f%% at the last; %.0f training tokens/s; %s\n", c->task, c->backend, c->profile, c->seed,
                100 * r->best[LRA_SPLIT_TEST].acc, r->best_step, 100 * r->best[LRA_SPLIT_VAL].acc,
                100 * r->final[LRA_SPLIT_TEST].acc, r->train_time > 0 ? r->timed_real_tokens / r->train_time : 0.0,
                r->report_path);
    /* the report's name (moved, if another run took it meanwhile); empty where none was written */
    snprintf(report_path, pathn, "%s", started ? r->report_path : "");
    lra_stop_restore();
    run_free(r);
    return st;
}
