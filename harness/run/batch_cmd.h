/* batch.h - the `lra-bench batch` command: a file of runs, run to the end unattended; killed and
 * started again at any moment, it goes on where it was (batch.c says how). */
#ifndef LRA_BATCH_CMD_H
#define LRA_BATCH_CMD_H

/* argv: the arguments after "batch". Returns the exit status: 0 every run done, 1 some not, 2 a
 * mistake in the file or the options (nothing run). */
int lra_batch_main(int argc, char **argv);
/* its --help */
extern const char lra_batch_help[];

#endif
