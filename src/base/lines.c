/*
 * lines.c - the '\n' line splitter with a line-length bound (lines.h).
 *
 * Input is appended to one buffer; taken bytes are only skipped (pos), and
 * the buffer is compacted (the unfinished tail moved to the front) when
 * more input is fed, so each byte is copied about twice at most.
 */
#include <string.h>

#include "base/lines.h"
#include "base/mem.h"

void lines_init(lines_t *l, size_t max_line)
{
  memset(l, 0, sizeof *l);
  l->max_line = max_line > 0 ? max_line : 1;
}

void lines_feed(lines_t *l, const char *data, size_t n)
{
  if (n == 0)
    return;
  if (l->skipping) {
    /* Dropping a too-long line: keep only what follows its '\n'. */
    const char *nl = memchr(data, '\n', n);
    if (nl == NULL)
      return;
    l->skipping = false;
    n -= (size_t)(nl + 1 - data);
    data = nl + 1;
  }
  if (l->pos > 0) {
    size_t rest = l->buf.len - l->pos;
    memmove(l->buf.data, l->buf.data + l->pos, rest);
    mem_wipe(l->buf.data + rest, l->pos);
    l->buf.len = rest;
    l->pos = 0;
  }
  buf_append(&l->buf, data, n);
}

lines_event_t lines_next(lines_t *l, bool end, const char **p, size_t *n)
{
  for (;;) {
    size_t avail = l->buf.len - l->pos;
    if (avail == 0)
      return LINES_NONE;
    const char *start = l->buf.data + l->pos;
    const char *nl = memchr(start, '\n', avail);
    if (l->skipping) {
      if (nl == NULL) {
        l->pos = l->buf.len;
        return LINES_NONE;
      }
      l->skipping = false;
      l->pos += (size_t)(nl + 1 - start);
      continue;
    }
    size_t len = nl != NULL ? (size_t)(nl - start) : avail;
    if (len > l->max_line) {
      /* Known too long, ended or not: report it once, drop its bytes. */
      if (nl != NULL) {
        l->pos += len + 1;
      } else {
        l->pos = l->buf.len;
        l->skipping = !end;
      }
      return LINES_TOO_LONG;
    }
    if (nl == NULL && !end)
      return LINES_NONE; /* unfinished, still within the bound */
    *p = start;
    *n = len;
    l->pos += nl != NULL ? len + 1 : len;
    return LINES_LINE;
  }
}

size_t lines_held(const lines_t *l)
{
  return l->buf.len - l->pos;
}

void lines_free(lines_t *l)
{
  buf_wipe_free(&l->buf);
  l->pos = 0;
  l->skipping = false;
}
