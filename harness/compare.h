/* compare.h - the `lra-bench compare` command (see compare.c). */
#ifndef LRA_COMPARE_H
#define LRA_COMPARE_H

/* argv: the arguments after "compare". Returns the exit status. */
int lra_compare_main(int argc, char **argv);

#endif
