/* run_state.h - the state of one training run, shared by the files that make it up (internal to
 * harness/run/): run.c drives it, evaluate.c evaluates and selects, run_report.c writes its
 * report, run_checkpoint.c checkpoints and resumes it. Nothing else includes this. */
#ifndef LRA_RUN_STATE_H
#define LRA_RUN_STATE_H

#include <cjson/cJSON.h>

#include "../../common/atomic_file.h"

#include "../../tasks/task.h"
#include "../encoder/batcher.h"
#include "../encoder/model.h"
#include "../encoder/train.h"
#include "config.h"

enum { WINDOW = 100 }; /* steps averaged for the reported training loss and accuracy */

typedef struct { double loss, acc, seconds; long n, tokens; } eval_result;

typedef struct {
    const lra_config *c;
    const lra_task_i *task;
    lra_model model;
    lra_trainer trainer; /* the model's step and evaluation, by gradient shards (train.h) */
    lra_split split[3];
    char source[4200], data_dir[4096], data_checksum[65];
    uint32_t *eval_order[3];
    uint32_t *eval_sub[3]; /* the periodic evaluations' fixed subset, in length order */
    size_t n_sub[3];
    uint32_t *idx;
    int32_t *tokens, *labels;
    uint8_t *mask;
    cJSON *curve, *attn_diag;
    int progress; /* progress lines on stderr (rank 0 only) */
    long started;
    double t0;
    /* training statistics */
    int steps_done;
    double train_time;
    long timed_steps, timed_real_tokens, timed_padded_tokens;
    float win_loss[WINDOW], win_acc[WINDOW];
    eval_result final[3];
    int have_final;
    /* model selection: the parameters of the periodic evaluation with the best validation
     * accuracy (the first of equals), kept as the run goes and saved beside the checkpoint */
    float *best_params;   /* (nparams) */
    int best_step;        /* -1 before the first evaluation */
    double best_val_acc, best_val_loss;
    eval_result best[3];  /* val and test of the best parameters, evaluated at the end */
    int have_best;
    const char *status;
    char diverged_at[256];
    /* where it goes: the paths, and the files this run holds there (atomic_file.h), which it alone
     * replaces; a name taken by another run meanwhile sends the next write to a free -2, -3 name */
    char report_path[4200], ckpt_path[4200];
    lra_owned_name report_name, ckpt_name;
    int claimed; /* the report name holds this run's placeholder, removed if set-up fails */
    char lock_path[4210]; /* report_path + ".lock": held while this process runs the run (fs.h) */
    int lock_fd;          /* -1 where none is held */
    lra_batcher bat; /* the training order: part of the checkpoint */
    int ckpt_step; /* the step of the last checkpoint this process wrote or resumed from, -1 none */
    cJSON *resumed_at; /* steps at which this run was resumed */
    cJSON *numerics_changed_at; /* steps at which it was resumed under other numerics (--numerics-change) */
} run_state;

/* evaluate.c */
/* Every eval_every steps: validation for the curve and for model selection (best_params). */
void lra_run_periodic_evaluation(run_state *r, int step);
/* After the last step: val and test of the last parameters, then of the best-validation ones. */
void lra_run_final_evaluation(run_state *r);

/* run_report.c: the run report (results/README.md describes every field) */
void lra_run_window_means(const run_state *r, double *loss, double *acc, int *n);
lra_status lra_run_write_report(run_state *r, char *err);

/* run_checkpoint.c: the checkpoint holds everything a later step depends on */
lra_status lra_run_save_checkpoint(run_state *r, char *err);
/* Restores the state a checkpoint holds, after refusing one of another run, other data or size. */
lra_status lra_run_resume_from(run_state *r, char *err);

#endif
