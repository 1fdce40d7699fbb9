/* fetch_cmd.h - `lra-bench fetch`: downloads a task's official data into the data directory. */
#ifndef LRA_FETCH_CMD_H
#define LRA_FETCH_CMD_H

int lra_fetch_main(int argc, char **argv);

#endif
