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
  free(w->tails);
  memset(w, 0, sizeof *w);
}

static bool same_conn(const wh_item_t *a, uint64_t h, const char *conn)
{
  return a->chash == h && strcmp(a->conn, conn) == 0;
}

static wh_item_t **bucket(wh_window_t *w, uint64_t h)
{
  return &w->tails[h & (WH_WIN_BUCKETS - 1)];
}

/* The link that points at the last live item of conn, or at NULL. */
static wh_item_t **tail_link(wh_window_t *w, uint64_t h, const char *conn)
{
  wh_item_t **pp = bucket(w, h);
  while (*pp && !same_conn(*pp, h, conn))
    pp = &(*pp)->tail_next;
  return pp;
}

void wh_win_ready(wh_window_t *w, wh_item_t *it)
{
  it->state = WH_IT_READY;
  if (it->queued)
    return;
  it->queued = true;
  it->ready_next = NULL;
  if (w->ready_tail)
    w->ready_tail->ready_next = it;
  else
    w->ready_head = it;
  w->ready_tail = it;
}

/* Drops queue entries that are no longer READY off the front. */
static void ready_trim(wh_window_t *w)
{
  while (w->ready_head && w->ready_head->state != WH_IT_READY) {
    wh_item_t *it = w->ready_head;
    w->ready_head = it->ready_next;
    it->queued = false;
  }
  if (w->ready_head == NULL)
    w->ready_tail = NULL;
}

wh_item_t *wh_win_pop_ready(wh_window_t *w)
{
  ready_trim(w);
  wh_item_t *it = w->ready_head;
  if (it == NULL)
    return NULL;
  w->ready_head = it->ready_next;
  if (w->ready_head == NULL)
    w->ready_tail = NULL;
  it->queued = false;
  return it;
}

bool wh_win_ready_empty(wh_window_t *w)
{
  ready_trim(w);
  return w->ready_head == NULL;
}

/* Takes it (the front item) out of the connection chains and the queue. */
static void unlink_front(wh_window_t *w, wh_item_t *it)
{
  if (it->next_same == NULL) { /* the last of its connection */
    wh_item_t **pp = tail_link(w, it->chash, it->conn);
    if (*pp == it)
      *pp = it->tail_next;
  } else if (it->state != WH_IT_DONE && it->next_same->state == WH_IT_BLOCKED) {
    wh_win_ready(w, it->next_same); /* dropped unfinished (wh_win_jump) */
  }
  if (it->queued) { /* rare: only wh_win_jump drops queued items */
    wh_item_t **pp = &w->ready_head, *prev = NULL;
    while (*pp && *pp != it) {
      prev = *pp;
      pp = &(*pp)->ready_next;
    }
    if (*pp) {
      *pp = it->ready_next;
      if (w->ready_tail == it)
        w->ready_tail = prev;
    }
    it->queued = false;
  }
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
  if (w->tails == NULL)
    w->tails = xcalloc(WH_WIN_BUCKETS, sizeof *w->tails);
  wh_item_t *it = xcalloc(1, sizeof *it);
  it->seq = seq;
  it->conn = xstrdup(conn);
  it->chash = hash_str(conn);
  it->body = body;
  it->body_len = body_len;
  it->ts_ms = ts_ms;
  wh_item_t **pp = tail_link(w, it->chash, conn);
  wh_item_t *last = *pp;
  if (last) { /* it replaces last as its connection's last item */
    last->next_same = it;
    it->tail_next = last->tail_next;
    *pp = it;
  } else {
    it->tail_next = *bucket(w, it->chash);
    *bucket(w, it->chash) = it;
  }
  /* The connection's earlier items are all DONE when its last one is: an
   * item leaves BLOCKED only once the one before it is DONE. */
  if (last && last->state != WH_IT_DONE)
    it->state = WH_IT_BLOCKED;
  else
    wh_win_ready(w, it);
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
    unlink_front(w, it);
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
  /* The next item of the same connection may go now. */
  if (it->next_same && it->next_same->state == WH_IT_BLOCKED)
    wh_win_ready(w, it->next_same);
  uint64_t before = w->cursor;
  while (w->head < w->n && w->items[w->head]->state == WH_IT_DONE) {
    wh_item_t *d = w->items[w->head++];
    w->cursor = d->seq;
    unlink_front(w, d);
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
