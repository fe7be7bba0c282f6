/*
 * arena.h - per-request bump allocator.
 *
 * Allocations are 16-byte aligned and freed all at once by arena_reset()
 * (which keeps the first chunk for the next request) or arena_free(). The
 * first chunk (ARENA_CHUNK bytes) is allocated lazily on the first
 * allocation; later chunks are as large; a request larger than a quarter of
 * a chunk gets a chunk of its own, so one big body does not waste the rest
 * of the current chunk. Used bytes are wiped on reset and free, because
 * request bodies and responses hold secrets. Aborts on OOM like xmalloc.
 */
#ifndef GRANTD_BASE_ARENA_H
#define GRANTD_BASE_ARENA_H

#include <stddef.h>

#define ARENA_CHUNK 4096
#define ARENA_ALIGN 16

typedef struct arena_chunk arena_chunk_t;

typedef struct {
  arena_chunk_t *first; /* kept across arena_reset(); NULL until used */
  arena_chunk_t *cur;   /* chunk being bumped */
  arena_chunk_t *extra; /* chunks after the first (list), freed on reset */
  size_t pos;           /* next free offset in cur */
  size_t total;         /* bytes handed out since the last reset */
} arena_t;

// clang-format off
#define ARENA_INIT {NULL, NULL, NULL, 0, 0}
// clang-format on

/* Makes an empty arena (no allocation). Same as ARENA_INIT. */
void arena_init(arena_t *a);
/* Returns n bytes (n == 0 gives a valid unique pointer), 16-byte aligned,
 * valid until the next arena_reset()/arena_free(). */
void *arena_alloc(arena_t *a, size_t n);
/* arena_alloc() then zero-fill. */
void *arena_calloc(arena_t *a, size_t n);
/* NUL-terminated copies in the arena. NULL in gives NULL out. */
char *arena_strndup(arena_t *a, const char *s, size_t n);
char *arena_strdup(arena_t *a, const char *s);
void *arena_memdup(arena_t *a, const void *p, size_t n);
/* Wipes what was used, frees all chunks but the first, and rewinds. */
void arena_reset(arena_t *a);
/* Wipes and frees everything; a is ARENA_INIT afterwards. */
void arena_free(arena_t *a);
/* Bytes handed out since the last reset (for metrics and tests). */
size_t arena_used(const arena_t *a);

#endif
