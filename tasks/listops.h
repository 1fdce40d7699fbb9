/* listops.h - ListOps loader entry points used by tests and tools. */
#ifndef LRA_LISTOPS_H
#define LRA_LISTOPS_H

#include "task.h"

/* Id of one token after the official replacements (']' already turned into 'X'). */
int lra_listops_token_id(const char *tok, size_t n);
/* Loads one official-format TSV file, truncating to max_len tokens. */
lra_status lra_listops_load_file(lra_split *s, const char *path, int max_len, char *err);

#endif
