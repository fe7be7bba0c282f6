/*
 * heap.c - intrusive binary min-heap (heap.h).
 */
#include "base/heap.h"

#include <stdlib.h>

#include "base/mem.h"

static void set(heap_t *h, size_t i, void *e)
{
  h->items[i] = e;
  *(size_t *)((char *)e + h->idx_off) = i;
}

static size_t idx(const heap_t *h, const void *e)
{
  return *(const size_t *)((const char *)e + h->idx_off);
}

static void up(heap_t *h, size_t i)
{
  void *e = h->items[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!h->less(e, h->items[p]))
      break;
    set(h, i, h->items[p]);
    i = p;
  }
  set(h, i, e);
}

static void down(heap_t *h, size_t i)
{
  void *e = h->items[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n)
      break;
    if (c + 1 < h->n && h->less(h->items[c + 1], h->items[c]))
      c++;
    if (!h->less(h->items[c], e))
      break;
    set(h, i, h->items[c]);
    i = c;
  }
  set(h, i, e);
}

void heap_init(heap_t *h, heap_less_fn less, size_t idx_off)
{
  h->items = NULL;
  h->n = h->cap = 0;
  h->less = less;
  h->idx_off = idx_off;
}

void heap_reserve(heap_t *h, size_t cap)
{
  if (cap <= h->cap)
    return;
  h->items = xrealloc(h->items, cap * sizeof *h->items);
  h->cap = cap;
}

void heap_push(heap_t *h, void *e)
{
  if (h->n == h->cap)
    heap_reserve(h, h->cap ? h->cap * 2 : 16);
  set(h, h->n++, e);
  up(h, h->n - 1);
}

void heap_remove(heap_t *h, void *e)
{
  size_t i = idx(h, e);
  h->n--;
  if (i == h->n)
    return;
  /* The last element fills the hole and moves whichever way it must. */
  set(h, i, h->items[h->n]);
  down(h, i);
  up(h, i);
}

void heap_free(heap_t *h)
{
  free(h->items);
  h->items = NULL;
  h->n = h->cap = 0;
}
