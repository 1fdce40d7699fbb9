/* help.h - the command line's help texts, shared by main.c and the run command. */
#ifndef LRA_HELP_H
#define LRA_HELP_H

#include <stdio.h>

/* --help: the commands, the run options with the task's defaults for each profile, the backends
 * and tasks. */
void lra_usage(FILE *f, const char *task);
/* COMMAND --help and `lra-bench help COMMAND` for every command but run; 1 when it printed one. */
int lra_command_usage(const char *cmd);

#endif
