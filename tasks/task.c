/* task.c - the task table (the list itself is tasks.def) and the split helpers. */
#include <string.h>

#include "task.h"

const char *const lra_split_names[3] = {"train", "val", "test"};

#define TASK(name) extern const lra_task_i lra_task_##name;
#include "tasks.def"
#undef TASK

static const lra_task_i *const tasks[] = {
#define TASK(name) &lra_task_##name,
#include "tasks.def"
#undef TASK
    NULL,
};

int lra_task_count(void) { return (int)(sizeof tasks / sizeof *tasks) - 1; }
const lra_task_i *lra_task_at(int i) { return i >= 0 && i < lra_task_count() ? tasks[i] : NULL; }

const lra_task_i *lra_task_find(const char *name) {
    for (const lra_task_i *const *t = tasks; *t; t++)
        if (strcmp((*t)->name, name) == 0) return *t;
    return NULL;
}

int lra_in_list(const char *list, const char *name) {
    const size_t n = strlen(name);
    for (const char *p = list; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 1 : 0))
        if (strcspn(p, ",") == n && !strncmp(p, name, n)) return 1;
    return 0;
}

const lra_task_dataset *lra_task_dataset_find(const lra_task_i *t, const char *name) {
    for (const lra_task_dataset *d = t->datasets; d && d->name; d++)
        if (name[0] && strcmp(d->name, name) == 0) return d;
    return NULL;
}

void lra_task_dataset_names(const lra_task_i *t, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (const lra_task_dataset *d = t->datasets; d && d->name && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", d == t->datasets ? "" : ", ", d->name);
}

void lra_task_names(char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (const lra_task_i *const *t = tasks; *t && used < n; t++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", t == tasks ? "" : ", ", (*t)->name);
}

void lra_split_free(lra_split *s) {
    free(s->tokens);
    free(s->pixels);
    free(s->offset);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

int lra_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

void lra_split_keep_first(lra_split *s, int len, int max_len) {
    if (max_len >= len) return;
    for (size_t i = 0; i < s->n; i++) {
        if (s->pixels) memmove(s->pixels + i * max_len, s->pixels + i * (size_t)len, (size_t)max_len);
        else memmove(s->tokens + i * max_len, s->tokens + i * (size_t)len, (size_t)max_len * sizeof *s->tokens);
    }
    for (size_t i = 0; i <= s->n; i++) s->offset[i] = i * (size_t)max_len;
}

void lra_split_example(const lra_split *s, size_t i, int L, int32_t *tokens, uint8_t *mask, int32_t *label) {
    const int docs = lra_split_docs(s);
    for (int d = 0; d < docs; d++, tokens += L, mask += L) {
        const size_t j = i * docs + d;
        const int n = (int)(s->offset[j + 1] - s->offset[j]);
        LRA_ASSERT(n <= L);
        if (s->pixels)
            for (int t = 0; t < n; t++) tokens[t] = s->pixels[s->offset[j] + t];
        else
            for (int t = 0; t < n; t++) tokens[t] = s->tokens[s->offset[j] + t];
        for (int t = n; t < L; t++) tokens[t] = 0;
        for (int t = 0; t < L; t++) mask[t] = t < n && (s->mask_by_length || tokens[t] != 0);
    }
    *label = s->labels[i];
}
