/*
 * lines.h - splits a byte stream that arrives in pieces into '\n'-ended
 * lines, with a bound on the length of one line (the NDJSON import reads
 * its body this way).
 *
 * The caller feeds pieces (lines_feed) and takes events (lines_next) in any
 * interleaving: it may stop taking events (back-pressure) and feed more
 * later. A line is the bytes before a '\n' (the '\n' itself is not part of
 * it; nothing else is trimmed); at the end of input the bytes after the
 * last '\n', if any, are one more line. A line longer than max_line bytes
 * is reported once as LINES_TOO_LONG, as soon as more than max_line of its
 * bytes are known, and its bytes are dropped up to its '\n'. So the
 * splitter holds at most max_line bytes of an unfinished line plus what
 * was fed and not yet taken.
 *
 * Memory: owned by the lines_t; lines_free() wipes it (bodies hold
 * secrets). Never fails (allocation failure aborts, see mem.h).
 */
#ifndef GRANTD_BASE_LINES_H
#define GRANTD_BASE_LINES_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

typedef enum {
  LINES_NONE,     /* nothing more until more input is fed (or: the end) */
  LINES_LINE,     /* *p, *n: one line, valid until the next call on l */
  LINES_TOO_LONG, /* one line longer than max_line (its bytes are dropped) */
} lines_event_t;

typedef struct {
  buf_t buf; /* input not yet taken: [pos, buf.len) */
  size_t pos;
  size_t max_line; /* >= 1 */
  bool skipping;   /* inside a line already reported too long */
} lines_t;

/* An empty splitter; max_line 0 is taken as 1. */
void lines_init(lines_t *l, size_t max_line);
/* Appends n bytes (copied). */
void lines_feed(lines_t *l, const char *data, size_t n);
/* The next event. `end`: no more input will be fed, so the bytes after the
 * last '\n' form the last line (one LINES_LINE, or LINES_TOO_LONG). */
lines_event_t lines_next(lines_t *l, bool end, const char **p, size_t *n);
/* Bytes held (fed and not yet taken). */
size_t lines_held(const lines_t *l);
/* Wipes and frees what is held; l is empty afterwards (reusable after
 * lines_init). */
void lines_free(lines_t *l);

#endif
