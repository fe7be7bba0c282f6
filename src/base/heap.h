/*
 * heap.h - an intrusive binary min-heap of pointers.
 *
 * Each element is a struct of the caller's holding a size_t slot (at
 * idx_off) where the heap keeps the element's position, so an element can
 * be removed from the middle in O(log n) without a search. The heap owns
 * only its pointer array; elements stay the caller's and must outlive
 * their membership. Order is less(a, b) ("a comes first"); it must be a
 * strict weak order, and elements that compare equal come out in no
 * particular order (add a sequence number to the key for FIFO ties).
 *
 *   typedef struct { int64_t at; uint64_t seq; size_t hidx; } item_t;
 *   heap_init(&h, item_less, offsetof(item_t, hidx));
 *   heap_push(&h, &it);   ... heap_top(&h) ... heap_remove(&h, &it);
 *
 * Allocation failure aborts. Not thread-safe.
 */
#ifndef GRANTD_BASE_HEAP_H
#define GRANTD_BASE_HEAP_H

#include <stdbool.h>
#include <stddef.h>

typedef bool (*heap_less_fn)(const void *a, const void *b);

typedef struct {
  void **items;
  size_t n, cap;
  heap_less_fn less;
  size_t idx_off;
} heap_t;

/* An empty heap; no allocation until the first push. */
void heap_init(heap_t *h, heap_less_fn less, size_t idx_off);
/* Makes room for `cap` elements in total (optional). */
void heap_reserve(heap_t *h, size_t cap);
/* Adds e (not already in h). */
void heap_push(heap_t *h, void *e);
/* Removes e (which must be in h). */
void heap_remove(heap_t *h, void *e);
/* The first element, or NULL when empty. */
static inline void *heap_top(const heap_t *h)
{
  return h->n ? h->items[0] : NULL;
}
/* Frees the pointer array (the elements are the caller's); h is empty. */
void heap_free(heap_t *h);

#endif
