/* resume_cmd.h - the `lra-bench resume` command (a run's checkpoints themselves: run_checkpoint.c). */
#ifndef LRA_RESUME_CMD_H
#define LRA_RESUME_CMD_H

/* argv: the arguments after "resume": the checkpoint or report first, then options that override
 * only what does not change the numbers. Rebuilds the run's options from the file and runs it
 * again with --resume through lra_run_main. Returns the exit status. */
int lra_resume_main(int argc, char **argv);

#endif
