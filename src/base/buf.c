/* Growable buffers; see buf.h. */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

#define BUF_MALLOC_OVERHEAD 24

void buf_reserve(buf_t *b, size_t extra)
{
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return;
  /* Capacities are a malloc header short of a power of two (40, 104, 232,
   * 488, 1000, 2024, ...): glibc then hands out chunks of 2^k - 16 bytes,
   * and a 1000-byte buffer stays a small-bin request. A plain 1024 is a
   * 1040-byte chunk, "large" for glibc, and each such malloc first
   * consolidates the fast bins (it showed in the refresh profile). */
  size_t cap = b->cap ? b->cap : 40;
  while (cap < need)
    cap = (cap + BUF_MALLOC_OVERHEAD) * 2 - BUF_MALLOC_OVERHEAD;
  b->data = xrealloc(b->data, cap);
  b->cap = cap;
  b->data[b->len] = '\0';
}

void buf_append(buf_t *b, const void *p, size_t n)
{
  buf_reserve(b, n);
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void buf_puts(buf_t *b, const char *s)
{
  buf_append(b, s, strlen(s));
}

void buf_putc(buf_t *b, char c)
{
  buf_append(b, &c, 1);
}

void buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
  va_list cp;
  va_copy(cp, ap);
  buf_reserve(b, 64);
  int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, cp);
  va_end(cp);
  if (n < 0)
    return;
  if ((size_t)n >= b->cap - b->len) {
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
  }
  b->len += (size_t)n;
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(b, fmt, ap);
  va_end(ap);
}

const char *buf_cstr(buf_t *b)
{
  if (b->data == NULL)
    return "";
  return b->data;
}

void buf_reset(buf_t *b)
{
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

void buf_free(buf_t *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void buf_wipe_free(buf_t *b)
{
  mem_wipe(b->data, b->cap);
  buf_free(b);
}

char *buf_steal(buf_t *b)
{
  char *p = b->data ? b->data : xstrdup("");
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
