/* speed.h - the `lra-bench speed` command (see speed.c). */
#ifndef LRA_SPEED_H
#define LRA_SPEED_H

/* argv: the arguments after "speed". Returns the exit status. */
int lra_speed_main(int argc, char **argv);

#endif
