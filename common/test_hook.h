/* test_hook.h - the one door through which tests steer a running lra-bench. Each hook is an
 * environment variable LRA_TEST_<NAME>, read only through lra_test_hook(); unset in normal use,
 * so production paths pay one getenv at the points below and nothing else.
 *
 *   STOP_AT=STEP             run.c: SIGSTOP before training step STEP (a test then SIGKILLs it)
 *   STOP_BEFORE_CLAIM=1      run.c: SIGSTOP after the report name was found free, before it is
 *                            claimed (a test starts a second run into that window)
 *   STOP_IN_CHECKPOINT=K     checkpoint.c: SIGSTOP halfway through writing the K-th checkpoint
 *   STOP_IN_GENERATE=K       listops_gen.c: SIGSTOP once K ListOps splits (4: and the mark) are staged
 *   POISON=STEP:INDEX        run.c: parameter INDEX becomes NaN before step STEP (divergence)
 *   HOLD_ON_STOP=1           run.c: after the first SIGINT/SIGTERM, wait for a second one (so a
 *                            test of the second Ctrl-C never races the end of the step)
 *   SIGNAL_AT=STEP           run.c: the last MPI process raises SIGINT in step STEP (a signal to
 *                            one process of a job)
 *   DIE_AT=STEP              run.c: the last MPI process raises SIGKILL in step STEP (one dies)
 *   DUMP_STEP=STEP:DIR       run.c: step STEP's batch, parameters and gradients into DIR (for
 *                            scripts/torch_crosscheck.py)
 *   NUMERICS=N               run_checkpoint.c: checkpoints record numerics version N (resume's guard) */
#ifndef LRA_TEST_HOOK_H
#define LRA_TEST_HOOK_H

/* The value of hook NAME ("STOP_AT"...), or NULL when it is not set. */
const char *lra_test_hook(const char *name);

#endif
