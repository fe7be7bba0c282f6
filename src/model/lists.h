/*
 * lists.h - the string lists of the data model: strlist_t (scopes, PKCE
 * and auth methods) and kvlist_t (extra request parameters), plus the
 * name-table lookup the model's enums share.
 *
 * A list owns its items: every string is a NUL-terminated heap copy, and
 * *_free() releases them and leaves the list empty ({NULL, 0}). A
 * zero-initialised list is a valid empty list. Allocation failure aborts.
 */
#ifndef GRANTD_MODEL_LISTS_H
#define GRANTD_MODEL_LISTS_H

#include <stddef.h>

typedef struct {
  char **items;
  size_t n;
} strlist_t;

typedef struct {
  char *key;
  char *value;
} kv_t;

typedef struct {
  kv_t *items;
  size_t n;
} kvlist_t;

/* Appends a copy of s (NUL-terminated). */
void strlist_push(strlist_t *l, const char *s);
/* Appends a copy of s[0..n) (need not be NUL-terminated). */
void strlist_push_n(strlist_t *l, const char *s, size_t n);
/* Deep copy; dst is overwritten, not freed first. */
void strlist_copy(strlist_t *dst, const strlist_t *src);
void strlist_free(strlist_t *l);

/* Appends copies of k and v. */
void kvlist_push(kvlist_t *l, const char *k, const char *v);
/* Value of the first item with key k, or NULL. Borrowed from l. */
const char *kvlist_get(const kvlist_t *l, const char *k);
/* Deep copy; dst is overwritten, not freed first. */
void kvlist_copy(kvlist_t *dst, const kvlist_t *src);
void kvlist_free(kvlist_t *l);

/* Index of s in names[0..n), or -1 (also for s == NULL): the parsers of
 * the model's enum names. */
int names_find(const char *const *names, size_t n, const char *s);

#endif
