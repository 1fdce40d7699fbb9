/* generate_cmd.h - `lra-bench generate`: writes a data set with lra-bench's offline generators. */
#ifndef LRA_GENERATE_CMD_H
#define LRA_GENERATE_CMD_H

/* argv: the arguments after "generate". Returns the exit status. */
int lra_generate_main(int argc, char **argv);

#endif
