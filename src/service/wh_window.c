/*
 * wh_window.c - the webhook delivery window and the pure delivery rules
 * (wh_window.h).
 */
#include "service/wh_window.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "store/outbox.h"

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

void wh_win_init(wh_window_t *w, uint64_t cursor)
{
  memset(w, 0, sizeof *w);
  w->cursor = w->scan = cursor;
}

static void item_free(wh_item_t *it)
{
  free(it->conn);
  free(it->body);
  free(it);
}

void wh_win_free(wh_window_t *w)
{
  for (size_t i = w->head; i < w->n; i++)
    item_free(w->items[i]);
  free(w->items);
  memset(w, 0, sizeof *w);
}

static bool same_conn(const wh_item_t *a, uint64_t h, const char *conn)
{
  return a->chash == h && strcmp(a->conn, conn) == 0;
}

wh_item_t *wh_win_add(wh_window_t *w, uint64_t seq, const char *conn, char *body, size_t body_len,
                      int64_t ts_ms)
{
  if (w->head > 0 && w->head * 2 >= w->n) {
    memmove(w->items, w->items + w->head, (w->n - w->head) * sizeof *w->items);
    w->n -= w->head;
    w->head = 0;
  }
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 64;
    w->items = xrealloc(w->items, w->cap * sizeof *w->items);
  }
  wh_item_t *it = xcalloc(1, sizeof *it);
  it->seq = seq;
  it->conn = xstrdup(conn);
  it->chash = hash_str(conn);
  it->body = body;
  it->body_len = body_len;
  it->ts_ms = ts_ms;
  it->state = WH_IT_READY;
  for (size_t i = w->n; i > w->head; i--) {
    const wh_item_t *o = w->items[i - 1];
    if (o->state != WH_IT_DONE && same_conn(o, it->chash, conn)) {
      it->state = WH_IT_BLOCKED;
      break;
    }
  }
  w->items[w->n++] = it;
  w->scan = seq;
  w->pending++;
  return it;
}

void wh_win_skip(wh_window_t *w, uint64_t seq)
{
  w->scan = seq;
  if (w->head == w->n)
    w->cursor = seq;
}

void wh_win_jump(wh_window_t *w, uint64_t seq)
{
  while (w->head < w->n && w->items[w->head]->seq <= seq) {
    wh_item_t *it = w->items[w->head++];
    if (it->state != WH_IT_DONE)
      w->pending--;
    item_free(it);
  }
  if (w->scan < seq)
    w->scan = seq;
  if (w->cursor < seq)
    w->cursor = seq;
  if (w->head == w->n)
    w->cursor = w->scan;
}

bool wh_win_finish(wh_window_t *w, wh_item_t *it, bool ok)
{
  it->state = WH_IT_DONE;
  it->ok = ok;
  w->pending--;
  /* The next live item of the same connection may go now. */
  size_t i = w->head;
  while (i < w->n && w->items[i] != it)
    i++;
  for (i++; i < w->n; i++) {
    wh_item_t *o = w->items[i];
    if (o->state != WH_IT_DONE && same_conn(o, it->chash, it->conn)) {
      if (o->state == WH_IT_BLOCKED)
        o->state = WH_IT_READY;
      break;
    }
  }
  uint64_t before = w->cursor;
  while (w->head < w->n && w->items[w->head]->state == WH_IT_DONE) {
    wh_item_t *d = w->items[w->head++];
    w->cursor = d->seq;
    item_free(d);
  }
  if (w->head < w->n)
    w->cursor = w->items[w->head]->seq - 1;
  else
    w->cursor = w->scan;
  return w->cursor != before;
}

/* ---- pure rules ---- */

static bool name_ok(const char *name, const char *p, size_t n)
{
  if (strcmp(name, p) == 0)
    return true;
  return n >= 2 && p[n - 1] == '*' && p[n - 2] == '.' && strncmp(name, p, n - 1) == 0;
}

bool wh_pattern_ok(const char *p)
{
  size_t n = strlen(p);
  if (name_ok("webhook.test", p, n))
    return true;
  for (int t = 1; t < OUTBOX_TYPE_COUNT; t++)
    if (name_ok(outbox_type_name((outbox_type_t)t), p, n))
      return true;
  return false;
}

bool wh_patterns_match(const strlist_t *patterns, const char *t)
{
  for (size_t i = 0; i < patterns->n; i++)
    if (name_ok(t, patterns->items[i], strlen(patterns->items[i])))
      return true;
  return false;
}

int64_t wh_backoff_ms(uint32_t attempts, int64_t base_ms, uint64_t r)
{
  int64_t d = base_ms > 0 ? base_ms : WH_BACKOFF_BASE_MS;
  for (uint32_t i = 1; i < attempts && d < WH_BACKOFF_CAP_MS; i++)
    d *= 2;
  if (d > WH_BACKOFF_CAP_MS)
    d = WH_BACKOFF_CAP_MS;
  int64_t half = d / 2;
  return half + (int64_t)(r % (uint64_t)(d - half + 1));
}

bool wh_give_up(int64_t first_ms, int64_t next_ms, int64_t total_ms)
{
  return next_ms - first_ms > total_ms;
}
