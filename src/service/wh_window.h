/*
 * wh_window.h - the delivery window of one webhook endpoint, and the pure
 * rules of webhook delivery: type patterns, the retry schedule, and the
 * per-connection order. No I/O, no clock (times are arguments), so unit
 * tests cover it exhaustively (tests/unit/service/test_wh_window.c).
 *
 * The window holds the endpoint's matching events above its cursor that
 * the engine has read from the outbox, in sequence order. Every event at
 * or below `cursor` is finished for the endpoint (delivered, failed for
 * good, or not matching); `scan` is the last sequence number looked at.
 * Events that do not match are only counted past (wh_win_skip).
 *
 * Order per connection: an item is BLOCKED while an earlier item of the
 * same connection is not DONE, so a later event of connection X is never
 * sent before an earlier one succeeded or failed for good; items of other
 * connections do not wait for it. The items of one connection are chained
 * (next_same), and the last one of each connection is found through a
 * hash table, so adding, finishing and popping an item cost O(1) whatever
 * the window holds. READY items wait in a FIFO queue (wh_win_ready,
 * wh_win_pop_ready), so the engine finds the next one to send in O(1).
 * Item states:
 *
 *   BLOCKED -> READY -> SENDING -> DONE            (2xx, or given up)
 *                          |  -> BACKOFF -> READY  (retry at next_ms)
 *                          '--> READY              (cancelled, 410)
 */
#ifndef GRANTD_SERVICE_WH_WINDOW_H
#define GRANTD_SERVICE_WH_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/lists.h"

typedef enum {
  WH_IT_BLOCKED = 0,
  WH_IT_READY,
  WH_IT_SENDING,
  WH_IT_BACKOFF,
  WH_IT_DONE,
} wh_it_state_t;

typedef struct wh_item {
  uint64_t seq;
  uint64_t chash; /* hash of conn, compared before conn */
  char *conn;     /* connection id (owned) */
  char *body;     /* the rendered event (owned) */
  size_t body_len;
  int64_t ts_ms; /* the event's commit time */
  uint32_t attempts;
  int64_t first_ms; /* first attempt, 0 = none yet */
  int64_t next_ms;  /* BACKOFF: when to try again */
  wh_it_state_t state;
  bool ok;     /* DONE: delivered (else failed for good) */
  bool queued; /* in the ready queue (it may have left READY since) */
  void *http;  /* SENDING: the http client's handle */
  /* Private to wh_window.c. */
  struct wh_item *next_same;  /* the next item of the same connection */
  struct wh_item *tail_next;  /* hash chain of the connections' last items */
  struct wh_item *ready_next; /* the ready queue */
} wh_item_t;

#define WH_WIN_BUCKETS 1024 /* hash buckets of the connections' last items */

typedef struct {
  wh_item_t **items; /* by seq; items[head..n) are live */
  size_t head, n, cap;
  uint64_t cursor, scan;
  size_t pending;    /* live items not DONE */
  wh_item_t **tails; /* WH_WIN_BUCKETS chains, allocated with the first item */
  wh_item_t *ready_head, *ready_tail;
} wh_window_t;

/* An empty window whose cursor and scan are `cursor`. */
void wh_win_init(wh_window_t *w, uint64_t cursor);
/* Frees every item. */
void wh_win_free(wh_window_t *w);
/* Live items (DONE ones not yet popped included). */
static inline size_t wh_win_count(const wh_window_t *w)
{
  return w->n - w->head;
}
static inline wh_item_t *wh_win_at(const wh_window_t *w, size_t i)
{
  return w->items[w->head + i];
}

/* Adds the event seq (> w->scan) of connection conn; body is taken. The
 * item is BLOCKED when an earlier live item of conn is not DONE, else
 * READY and queued. Returns it. */
wh_item_t *wh_win_add(wh_window_t *w, uint64_t seq, const char *conn, char *body, size_t body_len,
                      int64_t ts_ms);
/* Counts past a non-matching event (seq > w->scan). */
void wh_win_skip(wh_window_t *w, uint64_t seq);
/* Moves the window past events that are gone (pruned): cursor and scan
 * become at least seq; items at or below it are dropped. */
void wh_win_jump(wh_window_t *w, uint64_t seq);
/* Marks it DONE (ok: delivered), unblocks the next item of its connection
 * (READY, queued) and pops finished items off the front, advancing the
 * cursor. it is invalid afterwards. @return true when the cursor moved. */
bool wh_win_finish(wh_window_t *w, wh_item_t *it, bool ok);
/* Makes it READY (from SENDING cancelled or answered 410, or BACKOFF due)
 * and queues it at the tail of the ready queue. */
void wh_win_ready(wh_window_t *w, wh_item_t *it);
/* The oldest queued item that is still READY, taken off the queue (it
 * stays READY until the caller sends it), or NULL. */
wh_item_t *wh_win_pop_ready(wh_window_t *w);
/* Whether no READY item waits in the queue. */
bool wh_win_ready_empty(wh_window_t *w);

/* ---- pure rules ---- */

/* A known event type name or "<prefix>.*" of one (types from
 * store/outbox.h, plus "webhook.test"). */
bool wh_pattern_ok(const char *p);
/* Whether type t matches any of the patterns. */
bool wh_patterns_match(const strlist_t *patterns, const char *t);

/* Retry schedule: the delay before attempt attempts+1 after `attempts`
 * failed ones (>= 1): base_ms * 2^(attempts-1), capped at
 * WH_BACKOFF_CAP_MS, with "equal jitter": uniformly in [d/2, d] given
 * r in [0, 2^64). With the default base of 5 s: 5, 10, 20 s ... 5.7 h,
 * then 6 h (halved at worst by the jitter). */
#define WH_BACKOFF_BASE_MS 5000
#define WH_BACKOFF_CAP_MS ((int64_t)6 * 3600 * 1000)
int64_t wh_backoff_ms(uint32_t attempts, int64_t base_ms, uint64_t r);
/* Whether an event first tried at first_ms is given up instead of being
 * tried again at next_ms: when next_ms - first_ms exceeds total_ms. */
bool wh_give_up(int64_t first_ms, int64_t next_ms, int64_t total_ms);

#endif
