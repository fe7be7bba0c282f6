/*
 * fuzz_lines.c - the streamed NDJSON line splitter (base/lines.h) that
 * POST /v1/connections:import reads its body with.
 *
 * Input: byte 0 sets max_line (1..64), byte 1 seeds the schedule, the rest
 * is the stream. The stream is fed in pieces of pseudo-random sizes, and
 * after each piece the consumer takes a pseudo-random number of events
 * (maybe none: back-pressure), then takes everything at the end.
 *
 * Properties, beyond not crashing:
 * - the events equal those of splitting the whole stream at once: one
 *   LINE per '\n'-ended segment of at most max_line bytes, with exactly its
 *   bytes, one TOO_LONG per longer segment, the same for a last segment
 *   without '\n' (when not empty), in order, whatever the piece sizes and
 *   consumer stalls;
 * - while the consumer keeps up (takes everything after each piece), the
 *   splitter never holds more than max_line bytes plus the last piece.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/lines.h"
#include "fuzz_support.h"

/* Events as "L<len>:<bytes>" or "T", appended to out. */
static void put_line(buf_t *out, const char *p, size_t n)
{
  buf_printf(out, "L%zu:", n);
  buf_append(out, p, n);
}

static void reference(const char *s, size_t n, size_t max_line, buf_t *out)
{
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(s + i, '\n', n - i);
    size_t len = nl != NULL ? (size_t)(nl - (s + i)) : n - i;
    if (len > max_line)
      buf_putc(out, 'T');
    else
      put_line(out, s + i, len);
    i += len + (nl != NULL);
  }
}

static uint32_t next_rand(uint32_t *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* Takes up to `max` events (SIZE_MAX = all). */
static void take(lines_t *l, bool end, size_t max, buf_t *out)
{
  const char *p;
  size_t n;
  for (size_t k = 0; k < max; k++) {
    lines_event_t e = lines_next(l, end, &p, &n);
    if (e == LINES_NONE)
      return;
    if (e == LINES_LINE) {
      fuzz_check(n <= l->max_line, "a line within the bound");
      fuzz_check(memchr(p, '\n', n) == NULL, "a line holds no newline");
      put_line(out, p, n);
    } else {
      buf_putc(out, 'T');
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  size_t max_line = (size_t)(data[0] % 64) + 1;
  uint32_t x = 0x9e3779b9u ^ (uint32_t)data[1] * 2654435761u;
  const char *s = (const char *)data + 2;
  size_t n = size - 2;
  bool keep_up = (data[1] & 1) != 0;

  buf_t want = BUF_INIT, got = BUF_INIT;
  reference(s, n, max_line, &want);

  lines_t l;
  lines_init(&l, max_line);
  size_t i = 0;
  while (i < n) {
    size_t piece = (size_t)(next_rand(&x) % 97) + 1;
    if (piece > n - i)
      piece = n - i;
    lines_feed(&l, s + i, piece);
    i += piece;
    if (keep_up) {
      take(&l, false, SIZE_MAX, &got);
      fuzz_check(lines_held(&l) <= max_line + piece, "held bytes bounded while keeping up");
    } else {
      take(&l, false, next_rand(&x) % 3, &got);
    }
  }
  take(&l, true, SIZE_MAX, &got);
  fuzz_check(lines_held(&l) == 0, "nothing held at the end");
  fuzz_check(got.len == want.len && (got.len == 0 || memcmp(got.data, want.data, got.len) == 0),
             "streamed events equal the one-shot split");
  lines_free(&l);
  buf_free(&want);
  buf_free(&got);
  return 0;
}
