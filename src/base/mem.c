/* Aborting allocators and secure wipe; see mem.h. */
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static void oom(size_t n)
{
  fprintf(stderr, "{\"level\":\"fatal\",\"event\":\"out_of_memory\",\"bytes\":%zu}\n", n);
  abort();
}

void *xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    oom(n);
  return p;
}

void *xcalloc(size_t count, size_t size)
{
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (p == NULL)
    oom(count * size);
  return p;
}

void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (q == NULL)
    oom(n);
  return q;
}

char *xstrndup(const char *s, size_t n)
{
  if (s == NULL)
    return NULL;
  char *d = xmalloc(n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *xstrdup(const char *s)
{
  return s ? xstrndup(s, strlen(s)) : NULL;
}

void *xmemdup(const void *p, size_t n)
{
  if (p == NULL)
    return NULL;
  char *d = xmalloc(n + 1);
  memcpy(d, p, n);
  d[n] = '\0';
  return d;
}

/* A volatile function pointer keeps the compiler from proving the memset dead. */
static void *(*volatile wipe_fn)(void *, int, size_t) = memset;

void mem_wipe(void *p, size_t n)
{
  if (p != NULL && n > 0)
    wipe_fn(p, 0, n);
}

void free_secret(char *s)
{
  if (s == NULL)
    return;
  mem_wipe(s, strlen(s));
  free(s);
}

static void *uv_calloc_(size_t c, size_t s)
{
  return xcalloc(c, s);
}
static void *uv_realloc_(void *p, size_t n)
{
  /* uv may call realloc(p, 0) meaning free. */
  if (n == 0) {
    free(p);
    return NULL;
  }
  return xrealloc(p, n);
}

int mem_install_uv(void)
{
  return uv_replace_allocator(xmalloc, uv_realloc_, uv_calloc_, free);
}
