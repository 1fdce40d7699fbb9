/* plot.h - the `lra-bench plot` command (see plot.c). */
#ifndef LRA_PLOT_H
#define LRA_PLOT_H

/* argv: the arguments after "plot". Returns the exit status. */
int lra_plot_main(int argc, char **argv);

#endif
