/*
 * mem.h - allocation policy.
 *
 * grantd is a sidecar: on allocation failure it logs one line and aborts
 * (as h2o and Redis do), so callers never check x*() results. Inputs are
 * bounded before anything is allocated for them. libuv is routed through the
 * same allocator by mem_install_uv(). Secrets are wiped with mem_wipe()
 * before their memory is released.
 */
#ifndef GRANTD_BASE_MEM_H
#define GRANTD_BASE_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Copies of a string / of n bytes (NUL-terminated). NULL in gives NULL out. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);

/* Overwrites n bytes with zeros in a way the compiler cannot elide. */
void mem_wipe(void *p, size_t n);
/* Wipes a NUL-terminated secret string and frees it. NULL is ignored. */
void free_secret(char *s);

/* Makes libuv allocate through x*() (uv_replace_allocator). Call before the
 * first loop is created. Returns 0 or a libuv error. */
int mem_install_uv(void);

/* Gets the struct that embeds `ptr` as member `member`. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
