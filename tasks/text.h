/* text.h - the Text task (IMDB reviews as bytes): entry points used by tests and tools. */
#ifndef LRA_TEXT_H
#define LRA_TEXT_H

#include "task.h"

/* Where Text data is found under a data directory, in this order: an extracted aclImdb/ tree,
 * the official archive aclImdb_v1.tar.gz, or aclImdb-reviews.tar.gz (the same layout without
 * the unlabelled reviews). Writes the path into out; 0 when none exists. */
int lra_text_find(const char *data_dir, char *out, size_t n);

/* Loads the labelled reviews of one IMDB split ("train" or "test") from an aclImdb/ directory
 * or a tar archive of one: tokens = bytes + 1, at most max_len per review; labels neg 0, pos 1;
 * examples in (label, review id) order whatever the source's order. */
lra_status lra_text_load(lra_split *s, const char *source, const char *imdb_split, int max_len, char *err);

#endif
