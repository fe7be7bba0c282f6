/*
 * buf.h - growable byte buffers and borrowed slices.
 *
 * A buf_t owns its bytes; it grows through xrealloc (aborts on OOM). The
 * data is kept NUL-terminated past `len` once anything was written, so
 * buf_cstr() never allocates after the first write. A zeroed buf_t
 * (BUF_INIT) is empty and valid.
 */
#ifndef GRANTD_BASE_BUF_H
#define GRANTD_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
  char *data;
  size_t len;
  size_t cap;
} buf_t;

// clang-format off
#define BUF_INIT {NULL, 0, 0}
// clang-format on

/* A borrowed run of bytes (not NUL-terminated); lifetime is the owner's. */
typedef struct {
  const char *p;
  size_t n;
} slice_t;

/* Ensures room for `extra` more bytes plus the terminating NUL. */
void buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_putc(buf_t *b, char c);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* The contents as a C string ("" for an empty buffer); owned by b. */
const char *buf_cstr(buf_t *b);
/* Empties the buffer, keeping its memory. */
void buf_reset(buf_t *b);
/* Releases the memory; b is BUF_INIT afterwards. */
void buf_free(buf_t *b);
/* Wipes the whole capacity (it held secrets), then releases it. */
void buf_wipe_free(buf_t *b);
/* Hands the NUL-terminated contents to the caller (free() them); b is empty
 * afterwards. Never NULL. */
char *buf_steal(buf_t *b);

#endif
