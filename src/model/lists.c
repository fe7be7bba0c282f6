/*
 * lists.c - string lists and name tables (lists.h).
 */
#include "model/lists.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

void strlist_push(strlist_t *l, const char *s)
{
  strlist_push_n(l, s, strlen(s));
}

void strlist_push_n(strlist_t *l, const char *s, size_t n)
{
  l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
  l->items[l->n++] = xstrndup(s, n);
}

void strlist_copy(strlist_t *dst, const strlist_t *src)
{
  dst->items = NULL;
  dst->n = 0;
  for (size_t i = 0; i < src->n; i++)
    strlist_push(dst, src->items[i]);
}

void strlist_free(strlist_t *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

void kvlist_push(kvlist_t *l, const char *k, const char *v)
{
  l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
  l->items[l->n].key = xstrdup(k);
  l->items[l->n].value = xstrdup(v);
  l->n++;
}

const char *kvlist_get(const kvlist_t *l, const char *k)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->items[i].key, k) == 0)
      return l->items[i].value;
  return NULL;
}

void kvlist_copy(kvlist_t *dst, const kvlist_t *src)
{
  dst->items = NULL;
  dst->n = 0;
  for (size_t i = 0; i < src->n; i++)
    kvlist_push(dst, src->items[i].key, src->items[i].value);
}

void kvlist_free(kvlist_t *l)
{
  for (size_t i = 0; i < l->n; i++) {
    free(l->items[i].key);
    free(l->items[i].value);
  }
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

int names_find(const char *const *names, size_t n, const char *s)
{
  if (s == NULL)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], s) == 0)
      return (int)i;
  return -1;
}
