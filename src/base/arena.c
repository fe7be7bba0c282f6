/*
 * Per-request bump arena; see arena.h.
 *
 * Chunks carry their size and how much of them was handed out, so reset and
 * free wipe only the bytes that were used (requests are small; wiping the
 * whole 4 KiB each time would cost more than the allocations). The first
 * chunk survives arena_reset(), so a keep-alive connection serving many
 * requests allocates nothing in the steady state.
 */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

struct arena_chunk {
  arena_chunk_t *next; /* in a->extra */
  size_t size;         /* usable bytes in data */
  size_t used;         /* bytes handed out (valid once the chunk is left) */
  size_t pad_;         /* keeps data at a 16-byte offset */
  _Alignas(ARENA_ALIGN) unsigned char data[];
};

static arena_chunk_t *chunk_new(size_t size)
{
  arena_chunk_t *c = xmalloc(sizeof *c + size);
  c->next = NULL;
  c->size = size;
  c->used = 0;
  return c;
}

static void chunk_release(arena_chunk_t *c)
{
  mem_wipe(c->data, c->used);
  free(c);
}

void arena_init(arena_t *a)
{
  memset(a, 0, sizeof *a);
}

void *arena_alloc(arena_t *a, size_t n)
{
  if (n > SIZE_MAX - 2 * ARENA_ALIGN)
    abort(); /* cannot be satisfied; same policy as OOM */
  n = n ? (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1) : ARENA_ALIGN;
  if (a->first == NULL) {
    a->first = a->cur = chunk_new(ARENA_CHUNK);
    a->pos = 0;
  }
  a->total += n;
  if (n > ARENA_CHUNK / 4) {
    /* A big block gets its own chunk; the current one keeps filling. */
    arena_chunk_t *c = chunk_new(n);
    c->used = n;
    c->next = a->extra;
    a->extra = c;
    return c->data;
  }
  if (a->pos + n > a->cur->size) {
    arena_chunk_t *c = chunk_new(ARENA_CHUNK);
    a->cur->used = a->pos;
    c->next = a->extra;
    a->extra = c;
    a->cur = c;
    a->pos = 0;
  }
  void *p = a->cur->data + a->pos;
  a->pos += n;
  return p;
}

void *arena_calloc(arena_t *a, size_t n)
{
  void *p = arena_alloc(a, n);
  memset(p, 0, n);
  return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
  if (s == NULL)
    return NULL;
  char *d = arena_alloc(a, n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *arena_strdup(arena_t *a, const char *s)
{
  return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

void *arena_memdup(arena_t *a, const void *p, size_t n)
{
  if (p == NULL)
    return NULL;
  void *d = arena_alloc(a, n);
  memcpy(d, p, n);
  return d;
}

void arena_reset(arena_t *a)
{
  if (a->first == NULL)
    return;
  a->cur->used = a->pos;
  while (a->extra != NULL) {
    arena_chunk_t *c = a->extra;
    a->extra = c->next;
    chunk_release(c);
  }
  mem_wipe(a->first->data, a->first->used);
  a->first->used = 0;
  a->cur = a->first;
  a->pos = 0;
  a->total = 0;
}

void arena_free(arena_t *a)
{
  arena_reset(a);
  free(a->first);
  memset(a, 0, sizeof *a);
}

size_t arena_used(const arena_t *a)
{
  return a->total;
}
