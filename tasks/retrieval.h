/* retrieval.h - the Retrieval task (AAN document pairs): entry points used by tests and tools. */
#ifndef LRA_RETRIEVAL_H
#define LRA_RETRIEVAL_H

#include "task.h"

/* Loads one official AAN TSV (five columns, no header, float labels) as pairs: docs = 2, each
 * document its bytes + 1, cut to the first min(10000, max_len) bytes. */
lra_status lra_retrieval_load_file(lra_split *s, const char *path, int max_len, char *err);

#endif
