/*
 * test_wh_window.c - the webhook delivery window and the pure delivery
 * rules (service/wh_window.h): type patterns, the retry schedule and its
 * jitter bounds, giving up, and the window itself (add, skip, finish in
 * and out of order, the per-connection order, the FIFO ready queue, jump
 * past pruned events), then a randomized run over thousands of items and
 * hundreds of connections checked against a model at every step.
 * Deterministic: fixed seeds, no clock.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "model/lists.h"
#include "service/wh_window.h"
#include "store/outbox.h"

static uint64_t rng_next(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* ---- patterns ---- */

static void test_pattern_ok(void **state)
{
  (void)state;
  for (int t = 1; t < OUTBOX_TYPE_COUNT; t++) {
    const char *name = outbox_type_name((outbox_type_t)t);
    assert_non_null(name);
    assert_true(wh_pattern_ok(name));
  }
  assert_true(wh_pattern_ok("connection.created"));
  assert_true(wh_pattern_ok("connection.refresh_token_lost_in_restart"));
  assert_true(wh_pattern_ok("connection.*"));
  assert_true(wh_pattern_ok("webhook.test"));
  assert_true(wh_pattern_ok("webhook.*")); /* "<prefix>.*" of webhook.test */

  const char *bad[] = {
    "",
    "*",
    ".*",
    "connection.",
    "connection",
    "connection*",
    "connection.**",
    "connection.*x",
    "connection.*.*",
    "connection.created.*",
    "connection.cre*",
    "connection.created ",
    " connection.created",
    "connection.created\n",
    "Connection.created",
    "CONNECTION.*",
    "connection.unknown",
    "connection.created_x",
    "connection.create",
    "webhook.test2",
    "webhook.",
    "webhook",
    "webhooks.*",
    "c.*",
    "x.*",
    "*.created",
    "\xff\xfe",
    "connection.created\xff",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (wh_pattern_ok(bad[i]))
      fail_msg("pattern \"%s\" accepted", bad[i]);
  }
}

static void test_patterns_match(void **state)
{
  (void)state;
  strlist_t l = {0};
  assert_false(wh_patterns_match(&l, "connection.created")); /* no patterns: nothing */

  strlist_push(&l, "connection.needs_reauth");
  assert_true(wh_patterns_match(&l, "connection.needs_reauth"));
  assert_false(wh_patterns_match(&l, "connection.created"));
  assert_false(wh_patterns_match(&l, "connection.needs_reauth_x"));
  assert_false(wh_patterns_match(&l, "connection.needs"));
  assert_false(wh_patterns_match(&l, "webhook.test"));
  strlist_free(&l);

  strlist_push(&l, "connection.*");
  for (int t = 1; t < OUTBOX_TYPE_COUNT; t++)
    assert_true(wh_patterns_match(&l, outbox_type_name((outbox_type_t)t)));
  assert_false(wh_patterns_match(&l, "webhook.test"));
  assert_false(wh_patterns_match(&l, "connection"));
  assert_false(wh_patterns_match(&l, "connectionx.created"));
  strlist_free(&l);

  strlist_push(&l, "webhook.test");
  strlist_push(&l, "connection.revoked");
  strlist_push(&l, "connection.deleted");
  assert_true(wh_patterns_match(&l, "webhook.test"));
  assert_true(wh_patterns_match(&l, "connection.revoked"));
  assert_true(wh_patterns_match(&l, "connection.deleted"));
  assert_false(wh_patterns_match(&l, "connection.created"));
  assert_false(wh_patterns_match(&l, "connection.error"));
  strlist_free(&l);

  strlist_push(&l, "webhook.*");
  assert_true(wh_patterns_match(&l, "webhook.test"));
  assert_false(wh_patterns_match(&l, "connection.created"));
  strlist_free(&l);
}

/* ---- retry schedule ---- */

/* The jitter span of delay d: r in [0, span) covers [d/2, d] once. */
static uint64_t span_of(int64_t d)
{
  return (uint64_t)(d - d / 2 + 1);
}

/* Checks that wh_backoff_ms(attempts, base, .) is the delay d with
 * jitter in exactly [d/2, d]. */
static void check_delay(uint32_t attempts, int64_t base, int64_t d)
{
  uint64_t span = span_of(d);
  assert_int_equal(wh_backoff_ms(attempts, base, 0), d / 2);
  assert_int_equal(wh_backoff_ms(attempts, base, span - 1), d);
  assert_int_equal(wh_backoff_ms(attempts, base, span), d / 2); /* wraps */
  assert_int_equal(wh_backoff_ms(attempts, base, span + 1), d / 2 + 1);
  int64_t top = wh_backoff_ms(attempts, base, UINT64_MAX);
  assert_true(top >= d / 2 && top <= d);
  assert_int_equal(top, d / 2 + (int64_t)(UINT64_MAX % span));
  uint64_t s = (uint64_t)attempts * 7 + (uint64_t)base;
  for (int i = 0; i < 200; i++) {
    uint64_t r = rng_next(&s);
    int64_t v = wh_backoff_ms(attempts, base, r);
    assert_true(v >= d / 2 && v <= d);
    assert_int_equal(v, d / 2 + (int64_t)(r % span));
  }
}

static void test_backoff_schedule(void **state)
{
  (void)state;
  assert_int_equal(WH_BACKOFF_CAP_MS, 21600000);
  /* 5, 10, 20 s ... doubling */
  int64_t d = WH_BACKOFF_BASE_MS;
  uint32_t a = 1;
  for (; d < WH_BACKOFF_CAP_MS; a++, d *= 2)
    check_delay(a, WH_BACKOFF_BASE_MS, d);
  assert_int_equal(a, 14); /* 13 doublings stay under 6 h: 5 s * 2^12 = 5.69 h */
  check_delay(13, WH_BACKOFF_BASE_MS, 20480000);
  check_delay(13, 0, 20480000); /* 0 = the default base */
  /* then the cap */
  check_delay(14, WH_BACKOFF_BASE_MS, WH_BACKOFF_CAP_MS);
  check_delay(15, WH_BACKOFF_BASE_MS, WH_BACKOFF_CAP_MS);
  check_delay(64, WH_BACKOFF_BASE_MS, WH_BACKOFF_CAP_MS);
  check_delay(65, WH_BACKOFF_BASE_MS, WH_BACKOFF_CAP_MS);
  check_delay(1000000, WH_BACKOFF_BASE_MS, WH_BACKOFF_CAP_MS);
  check_delay(UINT32_MAX, WH_BACKOFF_BASE_MS, WH_BACKOFF_CAP_MS);
  /* first ones, in seconds with jitter at its top */
  assert_int_equal(wh_backoff_ms(1, WH_BACKOFF_BASE_MS, span_of(5000) - 1), 5000);
  assert_int_equal(wh_backoff_ms(2, WH_BACKOFF_BASE_MS, span_of(10000) - 1), 10000);
  assert_int_equal(wh_backoff_ms(3, WH_BACKOFF_BASE_MS, span_of(20000) - 1), 20000);
  assert_int_equal(wh_backoff_ms(4, WH_BACKOFF_BASE_MS, span_of(40000) - 1), 40000);
  /* and at its bottom: halved */
  assert_int_equal(wh_backoff_ms(1, WH_BACKOFF_BASE_MS, 0), 2500);
  assert_int_equal(wh_backoff_ms(3, WH_BACKOFF_BASE_MS, 0), 10000);

  /* attempts 0 (not a valid argument) behaves as 1 */
  check_delay(0, WH_BACKOFF_BASE_MS, WH_BACKOFF_BASE_MS);
  /* non-positive bases are the default */
  check_delay(1, 0, WH_BACKOFF_BASE_MS);
  check_delay(2, -1, 2 * WH_BACKOFF_BASE_MS);
  check_delay(3, INT64_MIN, 4 * WH_BACKOFF_BASE_MS);
  /* other bases: odd values, the jitter is [floor(d/2), d] */
  check_delay(1, 1, 1);
  check_delay(1, 3, 3);
  check_delay(2, 3, 6);
  check_delay(1, 1000, 1000);
  check_delay(4, 1000, 8000);
}

/* Huge attempt counts and bases never overflow: the delay stops doubling
 * at the cap. */
static void test_backoff_no_overflow(void **state)
{
  (void)state;
  const int64_t bases[] = {1,
                           2,
                           7,
                           WH_BACKOFF_CAP_MS / 2,
                           WH_BACKOFF_CAP_MS - 1,
                           WH_BACKOFF_CAP_MS,
                           WH_BACKOFF_CAP_MS + 1,
                           INT64_MAX / 2 + 1,
                           INT64_MAX};
  const uint32_t attempts[] = {40, 62, 63, 64, 65, 127, 1u << 20, UINT32_MAX - 1, UINT32_MAX};
  for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
    for (size_t j = 0; j < sizeof attempts / sizeof attempts[0]; j++)
      check_delay(attempts[j], bases[i], WH_BACKOFF_CAP_MS);
  /* a base above the cap is capped from the first attempt */
  check_delay(1, INT64_MAX, WH_BACKOFF_CAP_MS);
  check_delay(1, WH_BACKOFF_CAP_MS + 1, WH_BACKOFF_CAP_MS);
  check_delay(1, WH_BACKOFF_CAP_MS - 1, WH_BACKOFF_CAP_MS - 1);
  check_delay(2, WH_BACKOFF_CAP_MS - 1, WH_BACKOFF_CAP_MS);
  /* every attempt count of a 1 ms base: doubling up to the cap */
  int64_t d = 1;
  for (uint32_t a = 1; a < 100; a++) {
    check_delay(a, 1, d);
    d = 2 * d < WH_BACKOFF_CAP_MS ? 2 * d : WH_BACKOFF_CAP_MS;
  }
  assert_int_equal(d, WH_BACKOFF_CAP_MS);
}

static void test_give_up(void **state)
{
  (void)state;
  const int64_t day = 24LL * 3600 * 1000, t0 = 1700000000000LL;
  assert_false(wh_give_up(t0, t0, day));
  assert_false(wh_give_up(t0, t0 + day - 1, day));
  assert_false(wh_give_up(t0, t0 + day, day)); /* equal: tried once more */
  assert_true(wh_give_up(t0, t0 + day + 1, day));
  assert_true(wh_give_up(t0, t0 + 10 * day, day));
  assert_false(wh_give_up(t0, t0 - 5, day)); /* clock went back */
  /* no retry budget at all */
  assert_false(wh_give_up(t0, t0, 0));
  assert_true(wh_give_up(t0, t0 + 1, 0));
  /* a first attempt at time 0 */
  assert_false(wh_give_up(0, 1000, 1000));
  assert_true(wh_give_up(0, 1001, 1000));
}

/* ---- the window ---- */

static wh_item_t *add(wh_window_t *w, uint64_t seq, const char *conn)
{
  char body[64];
  int n = snprintf(body, sizeof body, "{\"seq\":%llu}", (unsigned long long)seq);
  wh_item_t *it = wh_win_add(w, seq, conn, xstrdup(body), (size_t)n, (int64_t)seq * 10);
  assert_non_null(it);
  assert_int_equal(it->seq, seq);
  assert_string_equal(it->conn, conn);
  assert_int_equal(it->body_len, (size_t)n);
  assert_memory_equal(it->body, body, (size_t)n);
  assert_int_equal(it->ts_ms, (int64_t)seq * 10);
  assert_int_equal(it->attempts, 0);
  assert_int_equal(it->first_ms, 0);
  assert_int_equal(w->scan, seq);
  return it;
}

/* As the engine does: the next READY item, which it then sends. */
static wh_item_t *pop_send(wh_window_t *w)
{
  wh_item_t *it = wh_win_pop_ready(w);
  if (it) {
    assert_int_equal(it->state, WH_IT_READY);
    assert_false(it->queued);
    it->state = WH_IT_SENDING;
    it->attempts++;
  }
  return it;
}

static void test_window_empty(void **state)
{
  (void)state;
  wh_window_t w;
  wh_win_init(&w, 42);
  assert_int_equal(w.cursor, 42);
  assert_int_equal(w.scan, 42);
  assert_int_equal(w.pending, 0);
  assert_int_equal(wh_win_count(&w), 0);
  assert_null(wh_win_pop_ready(&w));
  assert_true(wh_win_ready_empty(&w));
  /* skips move scan, and the cursor while nothing is in the window */
  wh_win_skip(&w, 43);
  wh_win_skip(&w, 50);
  assert_int_equal(w.scan, 50);
  assert_int_equal(w.cursor, 50);
  wh_win_jump(&w, 10); /* behind: nothing changes */
  assert_int_equal(w.scan, 50);
  assert_int_equal(w.cursor, 50);
  wh_win_jump(&w, 60);
  assert_int_equal(w.scan, 60);
  assert_int_equal(w.cursor, 60);
  wh_win_free(&w); /* never allocated anything */
  wh_win_free(&w); /* and again: freed is empty */
}

static void test_window_basic(void **state)
{
  (void)state;
  wh_window_t w;
  wh_win_init(&w, 10);
  wh_win_skip(&w, 11);
  assert_int_equal(w.cursor, 11);
  wh_item_t *a = add(&w, 12, "conn_a");
  assert_int_equal(a->state, WH_IT_READY);
  assert_true(a->queued);
  assert_int_equal(w.pending, 1);
  assert_int_equal(wh_win_count(&w), 1);
  assert_ptr_equal(wh_win_at(&w, 0), a);
  assert_int_equal(w.cursor, 11); /* not finished yet */
  assert_false(wh_win_ready_empty(&w));
  wh_win_skip(&w, 13); /* past a non-matching event */
  assert_int_equal(w.scan, 13);
  assert_int_equal(w.cursor, 11); /* the window is not empty */
  assert_ptr_equal(pop_send(&w), a);
  assert_null(wh_win_pop_ready(&w));
  assert_true(wh_win_ready_empty(&w));
  assert_int_equal(w.pending, 1);
  assert_true(wh_win_finish(&w, a, true));
  assert_int_equal(w.cursor, 13); /* everything scanned is finished */
  assert_int_equal(w.scan, 13);
  assert_int_equal(w.pending, 0);
  assert_int_equal(wh_win_count(&w), 0);
  /* a failure for good finishes as well */
  wh_item_t *b = add(&w, 20, "conn_a");
  assert_int_equal(b->state, WH_IT_READY); /* the earlier one is gone */
  assert_ptr_equal(pop_send(&w), b);
  assert_true(wh_win_finish(&w, b, false));
  assert_int_equal(w.cursor, 20);
  assert_int_equal(wh_win_count(&w), 0);
  wh_win_free(&w);
}

/* A later item of a connection waits for the earlier one to finish (ok or
 * failed); other connections do not wait. */
static void test_window_conn_order(void **state)
{
  (void)state;
  wh_window_t w;
  wh_win_init(&w, 0);
  wh_item_t *a1 = add(&w, 1, "A");
  wh_item_t *b2 = add(&w, 2, "B");
  wh_item_t *a3 = add(&w, 3, "A");
  wh_item_t *a4 = add(&w, 4, "A");
  wh_item_t *c5 = add(&w, 5, "C");
  wh_item_t *b6 = add(&w, 6, "B");
  assert_int_equal(a1->state, WH_IT_READY);
  assert_int_equal(b2->state, WH_IT_READY);
  assert_int_equal(a3->state, WH_IT_BLOCKED);
  assert_int_equal(a4->state, WH_IT_BLOCKED);
  assert_int_equal(c5->state, WH_IT_READY);
  assert_int_equal(b6->state, WH_IT_BLOCKED);
  assert_false(a3->queued);
  assert_int_equal(w.pending, 6);
  /* only the first of each connection is ready, in sequence order */
  assert_ptr_equal(pop_send(&w), a1);
  assert_ptr_equal(pop_send(&w), b2);
  assert_ptr_equal(pop_send(&w), c5);
  assert_null(wh_win_pop_ready(&w));
  /* a retry wait does not unblock the next one */
  a1->state = WH_IT_BACKOFF;
  a1->next_ms = 1000;
  assert_true(wh_win_ready_empty(&w));
  assert_int_equal(a3->state, WH_IT_BLOCKED);
  wh_win_ready(&w, a1); /* due */
  assert_ptr_equal(pop_send(&w), a1);
  /* C finishes: nothing of A or B moves */
  assert_false(wh_win_finish(&w, c5, true));
  assert_int_equal(w.cursor, 0);
  assert_int_equal(a3->state, WH_IT_BLOCKED);
  assert_int_equal(b6->state, WH_IT_BLOCKED);
  /* A's first fails for good: its second goes, the third still waits */
  assert_true(wh_win_finish(&w, a1, false));
  assert_int_equal(w.cursor, 1);
  assert_int_equal(a3->state, WH_IT_READY);
  assert_true(a3->queued);
  assert_int_equal(a4->state, WH_IT_BLOCKED);
  assert_ptr_equal(pop_send(&w), a3);
  assert_null(wh_win_pop_ready(&w));
  /* a new item of A is blocked behind a4; a new connection is not */
  wh_item_t *a7 = add(&w, 7, "A");
  wh_item_t *d8 = add(&w, 8, "D");
  assert_int_equal(a7->state, WH_IT_BLOCKED);
  assert_int_equal(d8->state, WH_IT_READY);
  /* a3 delivered (out of order: b2 is still in front) */
  assert_false(wh_win_finish(&w, a3, true));
  assert_int_equal(w.cursor, 1);
  assert_int_equal(a4->state, WH_IT_READY);
  assert_int_equal(a7->state, WH_IT_BLOCKED);
  assert_ptr_equal(pop_send(&w), d8); /* queued before a4 */
  assert_ptr_equal(pop_send(&w), a4);
  /* b2 delivered: b6 goes, the finished prefix 2, 3 pops */
  assert_true(wh_win_finish(&w, b2, true));
  assert_int_equal(w.cursor, 3);
  assert_int_equal(wh_win_count(&w), 5); /* 4, 5 (done), 6, 7, 8 */
  assert_int_equal(b6->state, WH_IT_READY);
  assert_ptr_equal(pop_send(&w), b6);
  /* a4 done while its successor of A is behind: an item added for A once
   * A's last live item is DONE is ready at once */
  assert_true(wh_win_finish(&w, a4, true));
  assert_int_equal(w.cursor, 5);
  assert_int_equal(a7->state, WH_IT_READY);
  assert_ptr_equal(pop_send(&w), a7);
  assert_false(wh_win_finish(&w, a7, true)); /* b6 still in front */
  wh_item_t *a9 = add(&w, 9, "A");
  assert_int_equal(a9->state, WH_IT_READY);
  assert_int_equal(w.pending, 3); /* 6, 8, 9 */
  assert_true(wh_win_finish(&w, b6, true));
  assert_int_equal(w.cursor, 7);
  assert_true(wh_win_finish(&w, d8, false));
  assert_int_equal(w.cursor, 8);
  assert_ptr_equal(pop_send(&w), a9);
  assert_true(wh_win_finish(&w, a9, true));
  assert_int_equal(w.cursor, 9);
  assert_int_equal(w.pending, 0);
  assert_int_equal(wh_win_count(&w), 0);
  wh_win_free(&w);
}

/* Connections whose ids differ little (and thus may share hash buckets)
 * are still told apart. */
static void test_window_similar_conns(void **state)
{
  (void)state;
  wh_window_t w;
  wh_win_init(&w, 0);
  const char *ids[] = {"", "a", "b", "ab", "ba", "a\x01", "conn_1", "conn_10", "conn_01"};
  const size_t n = sizeof ids / sizeof ids[0];
  wh_item_t *first[9], *second[9];
  for (size_t i = 0; i < n; i++)
    first[i] = add(&w, 1 + i, ids[i]);
  for (size_t i = 0; i < n; i++)
    second[i] = add(&w, 1 + n + i, ids[i]);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(first[i]->state, WH_IT_READY);
    assert_int_equal(second[i]->state, WH_IT_BLOCKED);
  }
  for (size_t i = 0; i < n; i++)
    assert_ptr_equal(pop_send(&w), first[i]);
  assert_null(wh_win_pop_ready(&w));
  for (size_t k = 0; k < n; k++) {
    size_t i = (k * 4) % n; /* an order unlike the sequence order */
    wh_win_finish(&w, first[i], true);
    assert_int_equal(second[i]->state, WH_IT_READY);
    assert_ptr_equal(pop_send(&w), second[i]);
    first[i] = NULL;
    for (size_t j = 0; j < n; j++)
      if (first[j])
        assert_int_equal(second[j]->state, WH_IT_BLOCKED);
  }
  assert_int_equal(w.cursor, 0 + n); /* all firsts finished */
  for (size_t i = 0; i < n; i++)
    wh_win_finish(&w, second[i], true);
  assert_int_equal(w.cursor, 2 * n);
  assert_int_equal(wh_win_count(&w), 0);
  wh_win_free(&w);
}

static void test_window_ready_fifo(void **state)
{
  (void)state;
  wh_window_t w;
  wh_win_init(&w, 100);
  wh_item_t *it[10];
  char id[16];
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof id, "c%d", i);
    it[i] = add(&w, 101 + (uint64_t)i, id);
  }
  /* FIFO: in the order they became ready */
  for (int i = 0; i < 5; i++)
    assert_ptr_equal(pop_send(&w), it[i]);
  /* a cancelled send and a due retry go to the tail, in that order */
  wh_win_ready(&w, it[2]);
  assert_true(it[2]->queued);
  it[0]->state = WH_IT_BACKOFF;
  wh_win_ready(&w, it[0]);
  wh_win_ready(&w, it[0]); /* twice: queued once */
  /* items that left READY while queued are skipped: it[6] was made to
   * wait (as a restored retry is), it[8] was finished while queued */
  it[6]->state = WH_IT_BACKOFF;
  assert_false(wh_win_finish(&w, it[8], true));
  assert_ptr_equal(pop_send(&w), it[5]);
  assert_ptr_equal(pop_send(&w), it[7]);
  assert_ptr_equal(pop_send(&w), it[9]);
  assert_ptr_equal(pop_send(&w), it[2]);
  assert_ptr_equal(pop_send(&w), it[0]);
  assert_null(wh_win_pop_ready(&w));
  assert_true(wh_win_ready_empty(&w));
  assert_false(it[6]->queued); /* trimmed off the queue */
  wh_win_ready(&w, it[6]);     /* its retry is due */
  assert_true(it[6]->queued);
  assert_false(wh_win_ready_empty(&w));
  assert_int_equal(it[6]->state, WH_IT_READY);
  assert_ptr_equal(pop_send(&w), it[6]);
  assert_true(wh_win_ready_empty(&w));
  /* ready_empty drops a front item that left READY, and only that */
  wh_item_t *x = add(&w, 120, "x"), *y = add(&w, 121, "y");
  x->state = WH_IT_BACKOFF;
  assert_false(wh_win_ready_empty(&w));
  assert_false(x->queued);
  assert_true(y->queued);
  assert_ptr_equal(pop_send(&w), y);
  y->state = WH_IT_BACKOFF;
  assert_true(wh_win_ready_empty(&w));
  /* everything finished, in reverse */
  wh_item_t *live[] = {x, y, it[9], it[7], it[6], it[5], it[4], it[3], it[2], it[1], it[0]};
  for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
    bool moved = wh_win_finish(&w, live[i], i % 2 == 0);
    assert_int_equal(moved, i == sizeof live / sizeof live[0] - 1);
  }
  assert_int_equal(w.cursor, 121);
  assert_int_equal(w.pending, 0);
  assert_int_equal(wh_win_count(&w), 0);
  wh_win_free(&w);
}

/* The cursor advances only over a finished prefix, past skipped events. */
static void test_window_finish_out_of_order(void **state)
{
  (void)state;
  wh_window_t w;
  wh_win_init(&w, 1);
  wh_item_t *i2 = add(&w, 2, "a");
  wh_win_skip(&w, 3);
  wh_item_t *i4 = add(&w, 4, "b");
  wh_item_t *i5 = add(&w, 5, "c");
  wh_win_skip(&w, 6);
  wh_item_t *i7 = add(&w, 7, "d");
  wh_win_skip(&w, 8);
  wh_win_skip(&w, 9);
  assert_int_equal(w.cursor, 1);
  assert_int_equal(w.scan, 9);
  assert_false(wh_win_finish(&w, i5, true));
  assert_int_equal(w.cursor, 1);
  assert_false(wh_win_finish(&w, i7, false));
  assert_int_equal(w.cursor, 1);
  assert_int_equal(wh_win_count(&w), 4); /* finished ones wait behind the front */
  assert_int_equal(w.pending, 2);
  assert_true(wh_win_finish(&w, i2, true));
  assert_int_equal(w.cursor, 3); /* up to the next live item */
  assert_int_equal(wh_win_count(&w), 3);
  assert_ptr_equal(wh_win_at(&w, 0), i4);
  assert_true(wh_win_finish(&w, i4, true));
  assert_int_equal(w.cursor, 9); /* 5 and 7 were finished: all of scan */
  assert_int_equal(wh_win_count(&w), 0);
  assert_int_equal(w.pending, 0);
  /* a window that starts above 0 and an out-of-order finish at the end */
  wh_item_t *j10 = add(&w, 10, "a"), *j11 = add(&w, 11, "a");
  assert_int_equal(j11->state, WH_IT_BLOCKED);
  assert_ptr_equal(pop_send(&w), j10);
  assert_true(wh_win_finish(&w, j10, true));
  assert_int_equal(w.cursor, 10);
  assert_ptr_equal(pop_send(&w), j11);
  assert_true(wh_win_finish(&w, j11, true));
  assert_int_equal(w.cursor, 11);
  wh_win_free(&w);
}

static void test_window_jump(void **state)
{
  (void)state;
  wh_window_t w;
  wh_win_init(&w, 0);
  wh_item_t *a1 = add(&w, 1, "A");
  wh_item_t *b2 = add(&w, 2, "B");
  wh_item_t *a3 = add(&w, 3, "A");
  wh_item_t *c4 = add(&w, 4, "C");
  wh_item_t *a5 = add(&w, 5, "A");
  wh_item_t *b6 = add(&w, 6, "B");
  wh_win_skip(&w, 7);
  assert_ptr_equal(pop_send(&w), a1); /* in flight; b2 stays queued */
  assert_ptr_equal(pop_send(&w), b2);
  wh_win_ready(&w, b2); /* cancelled: queued again */
  assert_false(wh_win_finish(&w, c4, true));
  assert_int_equal(w.pending, 5);
  /* events up to 2 are gone: a1 (sending) and b2 (queued) drop, their
   * successors of A and B are no longer blocked */
  wh_win_jump(&w, 2);
  assert_int_equal(w.cursor, 2);
  assert_int_equal(w.scan, 7);
  assert_int_equal(wh_win_count(&w), 4); /* 3, 4 (done), 5, 6 */
  assert_ptr_equal(wh_win_at(&w, 0), a3);
  assert_int_equal(w.pending, 3);
  assert_int_equal(a3->state, WH_IT_READY);
  assert_int_equal(a5->state, WH_IT_BLOCKED); /* behind a3 */
  assert_int_equal(b6->state, WH_IT_READY);
  assert_ptr_equal(pop_send(&w), a3); /* the dropped b2 is not in the queue */
  assert_ptr_equal(pop_send(&w), b6);
  assert_null(wh_win_pop_ready(&w));
  /* a jump behind the cursor changes nothing */
  wh_win_jump(&w, 1);
  assert_int_equal(w.cursor, 2);
  assert_int_equal(wh_win_count(&w), 4);
  /* a3 delivered: the finished prefix 3, 4 pops */
  assert_true(wh_win_finish(&w, a3, true));
  assert_int_equal(w.cursor, 4);
  assert_int_equal(a5->state, WH_IT_READY);
  assert_ptr_equal(pop_send(&w), a5);
  /* past everything: the window empties, cursor and scan jump */
  wh_win_jump(&w, 100);
  assert_int_equal(wh_win_count(&w), 0);
  assert_int_equal(w.pending, 0);
  assert_int_equal(w.cursor, 100);
  assert_int_equal(w.scan, 100);
  assert_true(wh_win_ready_empty(&w));
  /* the dropped connections start afresh */
  wh_item_t *a101 = add(&w, 101, "A"), *b102 = add(&w, 102, "B");
  assert_int_equal(a101->state, WH_IT_READY);
  assert_int_equal(b102->state, WH_IT_READY);
  assert_ptr_equal(pop_send(&w), a101);
  assert_ptr_equal(pop_send(&w), b102);
  assert_true(wh_win_finish(&w, a101, true));
  assert_true(wh_win_finish(&w, b102, true));
  assert_int_equal(w.cursor, 102);
  wh_win_free(&w);
}

/* Dropping a chain of one connection: each dropped unfinished item
 * unblocks the next, and only the first one left is READY. A finished
 * item left in front by a jump is popped by the next finish. */
static void test_window_jump_chain(void **state)
{
  (void)state;
  wh_window_t w;
  wh_win_init(&w, 0);
  wh_item_t *it[8];
  for (int i = 0; i < 6; i++)
    it[i] = add(&w, 1 + (uint64_t)i, "A");
  it[6] = add(&w, 7, "B");
  it[7] = add(&w, 8, "A");
  assert_ptr_equal(pop_send(&w), it[0]);
  assert_ptr_equal(pop_send(&w), it[6]);
  assert_false(wh_win_finish(&w, it[6], true)); /* B done, behind A's */
  wh_win_jump(&w, 4);                           /* 1..4 of A drop */
  assert_int_equal(wh_win_count(&w), 4);        /* 5, 6, 7 (done), 8 */
  assert_int_equal(w.pending, 3);
  assert_true(w.cursor >= 4);
  assert_int_equal(it[4]->state, WH_IT_READY);
  assert_true(it[4]->queued);
  assert_int_equal(it[5]->state, WH_IT_BLOCKED);
  assert_int_equal(it[7]->state, WH_IT_BLOCKED);
  assert_ptr_equal(pop_send(&w), it[4]);
  assert_null(wh_win_pop_ready(&w)); /* the dropped 2..4 are not queued */
  /* 5 drops while in flight: 6 is next */
  wh_win_jump(&w, 5);
  assert_int_equal(it[5]->state, WH_IT_READY);
  assert_ptr_equal(pop_send(&w), it[5]);
  assert_true(w.cursor >= 5);
  assert_int_equal(w.pending, 2);
  assert_true(wh_win_finish(&w, it[5], true)); /* 6 and 7 (done) pop */
  assert_int_equal(w.cursor, 7);
  assert_int_equal(wh_win_count(&w), 1);
  assert_int_equal(it[7]->state, WH_IT_READY);
  wh_item_t *last = pop_send(&w);
  assert_ptr_equal(last, it[7]);
  wh_win_skip(&w, 9);
  assert_true(wh_win_finish(&w, last, false));
  assert_int_equal(w.cursor, 9);
  /* a finished item left in front by a jump */
  wh_item_t *p = add(&w, 10, "P"), *q = add(&w, 11, "Q"), *r = add(&w, 12, "R");
  assert_false(wh_win_finish(&w, q, true));
  wh_win_jump(&w, 10); /* p drops, q (done) is in front now */
  assert_ptr_equal(pop_send(&w), r);
  assert_true(w.cursor >= 10 && w.cursor < 12);
  assert_int_equal(w.pending, 1);
  assert_true(wh_win_finish(&w, r, true));
  assert_int_equal(w.cursor, 12);
  assert_int_equal(wh_win_count(&w), 0);
  (void)p;
  wh_win_free(&w);
}

/* Freeing a window with items in every state (ASan checks for leaks). */
static void test_window_free_busy(void **state)
{
  (void)state;
  wh_window_t w;
  wh_win_init(&w, 0);
  char id[16];
  for (uint64_t s = 1; s <= 300; s++) {
    snprintf(id, sizeof id, "c%u", (unsigned)(s % 17));
    add(&w, s, id);
  }
  wh_item_t *x = pop_send(&w);
  wh_item_t *y = pop_send(&w);
  y->state = WH_IT_BACKOFF;
  wh_item_t *z = pop_send(&w);
  assert_false(wh_win_finish(&w, z, true));
  wh_win_ready(&w, x); /* queued again */
  assert_int_equal(wh_win_count(&w), 300);
  wh_win_free(&w);
  assert_int_equal(wh_win_count(&w), 0);
}

/* ---- randomized: many items and connections against a model ---- */

typedef struct {
  uint64_t seq;
  uint32_t conn;
  wh_it_state_t st;
  wh_item_t *it; /* NULL once popped or dropped */
} mitem_t;

typedef struct {
  wh_window_t w;
  uint64_t rng;
  uint32_t nconn;
  mitem_t *m; /* every item added, by seq */
  size_t n, cap, head;
  uint64_t *q; /* model ready queue: indexes into m */
  size_t qh, qn, qcap;
  uint64_t scan, cursor;
  size_t pending;
  uint32_t *stamp; /* per connection, for the order check */
  uint32_t round;
  size_t finished, jumps, requeues;
} msim_t;

static void mq_push(msim_t *s, size_t idx)
{
  if (s->qn == s->qcap) {
    s->qcap = s->qcap ? 2 * s->qcap : 256;
    s->q = xrealloc(s->q, s->qcap * sizeof *s->q);
  }
  s->q[s->qn++] = idx;
}

/* Model: becomes READY; queued unless it is in the queue already. */
static void m_ready(msim_t *s, size_t idx)
{
  s->m[idx].st = WH_IT_READY;
  for (size_t k = s->qh; k < s->qn; k++)
    if (s->q[k] == idx)
      return;
  mq_push(s, idx);
}

/* Model: the next item of the same connection after idx, or SIZE_MAX. */
static size_t m_next_same(const msim_t *s, size_t idx)
{
  for (size_t k = idx + 1; k < s->n; k++)
    if (s->m[k].conn == s->m[idx].conn)
      return k;
  return SIZE_MAX;
}

static void m_check(msim_t *s)
{
  wh_window_t *w = &s->w;
  assert_int_equal(w->cursor, s->cursor);
  assert_int_equal(w->scan, s->scan);
  assert_int_equal(w->pending, s->pending);
  assert_int_equal(wh_win_count(w), s->n - s->head);
  s->round++;
  size_t pending = 0;
  for (size_t k = s->head; k < s->n; k++) {
    mitem_t *mi = &s->m[k];
    wh_item_t *it = wh_win_at(w, k - s->head);
    assert_ptr_equal(it, mi->it);
    assert_int_equal(it->seq, mi->seq);
    assert_true(it->seq > w->cursor);
    if (it->state != mi->st)
      fail_msg("seq %llu: state %d, model %d", (unsigned long long)mi->seq, it->state, mi->st);
    if (it->state == WH_IT_DONE)
      continue;
    pending++;
    /* the first unfinished item of a connection is not blocked, the
     * later ones are: never two of one connection in progress */
    bool first = s->stamp[mi->conn] != s->round;
    s->stamp[mi->conn] = s->round;
    if (first)
      assert_int_not_equal(it->state, WH_IT_BLOCKED);
    else
      assert_int_equal(it->state, WH_IT_BLOCKED);
  }
  assert_int_equal(pending, s->pending);
}

/* Model of the cursor after the finished prefix pops. */
static void m_pop_prefix(msim_t *s)
{
  while (s->head < s->n && s->m[s->head].st == WH_IT_DONE)
    s->m[s->head++].it = NULL;
  s->cursor = s->head < s->n ? s->m[s->head].seq - 1 : s->scan;
}

static void m_add(msim_t *s, uint64_t seq, uint32_t conn)
{
  char id[24];
  snprintf(id, sizeof id, "conn_%u", conn);
  size_t prev = SIZE_MAX;
  for (size_t k = s->n; k-- > s->head;)
    if (s->m[k].conn == conn) {
      prev = k;
      break;
    }
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 256;
    s->m = xrealloc(s->m, s->cap * sizeof *s->m);
  }
  size_t idx = s->n++;
  s->m[idx] = (mitem_t){.seq = seq, .conn = conn};
  s->m[idx].it = wh_win_add(&s->w, seq, id, xstrdup(id), strlen(id), 0);
  if (prev != SIZE_MAX && s->m[prev].st != WH_IT_DONE)
    s->m[idx].st = WH_IT_BLOCKED;
  else
    m_ready(s, idx);
  s->scan = seq;
  s->pending++;
}

static void m_finish(msim_t *s, size_t idx, bool ok)
{
  mitem_t *mi = &s->m[idx];
  wh_item_t *it = mi->it;
  uint64_t before = s->cursor;
  mi->st = WH_IT_DONE;
  s->pending--;
  size_t nx = m_next_same(s, idx);
  if (nx != SIZE_MAX && s->m[nx].st == WH_IT_BLOCKED)
    m_ready(s, nx);
  m_pop_prefix(s);
  bool moved = wh_win_finish(&s->w, it, ok);
  assert_int_equal(moved, s->cursor != before);
  s->finished++;
}

static void m_jump(msim_t *s, uint64_t seq)
{
  while (s->head < s->n && s->m[s->head].seq <= seq) {
    size_t idx = s->head++;
    mitem_t *mi = &s->m[idx];
    if (mi->st != WH_IT_DONE) {
      s->pending--;
      size_t nx = m_next_same(s, idx);
      if (nx != SIZE_MAX && s->m[nx].st == WH_IT_BLOCKED)
        m_ready(s, nx);
    }
    for (size_t k = s->qh; k < s->qn; k++) /* out of the queue */
      if (s->q[k] == idx) {
        memmove(s->q + k, s->q + k + 1, (s->qn - k - 1) * sizeof *s->q);
        s->qn--;
        break;
      }
    mi->it = NULL;
    mi->st = WH_IT_DONE;
  }
  if (s->scan < seq)
    s->scan = seq;
  if (s->cursor < seq)
    s->cursor = seq;
  if (s->head == s->n)
    s->cursor = s->scan;
  wh_win_jump(&s->w, seq);
  s->jumps++;
}

/* Model of wh_win_pop_ready: the oldest queued item still READY. */
static size_t m_pop(msim_t *s)
{
  while (s->qh < s->qn) {
    size_t idx = s->q[s->qh++];
    if (s->m[idx].st == WH_IT_READY)
      return idx;
  }
  return SIZE_MAX;
}

static void msim(uint64_t seed, size_t nitems, uint32_t nconn, size_t max_live, bool jumps)
{
  msim_t *s = xcalloc(1, sizeof *s);
  s->rng = seed;
  s->nconn = nconn;
  s->stamp = xcalloc(nconn, sizeof *s->stamp);
  s->cursor = s->scan = 1000;
  wh_win_init(&s->w, s->cursor);
  uint64_t seq = s->scan;
  size_t added = 0;
  size_t *live = xcalloc(max_live + 1, sizeof *live);
  for (;;) {
    uint64_t r = rng_next(&s->rng);
    size_t nlive = s->n - s->head;
    if (added == nitems && s->pending == 0)
      break;
    unsigned op = (unsigned)(r % 16);
    if (added < nitems && nlive < max_live && op < 6) {
      if ((r >> 8) % 5 == 0) { /* a non-matching event */
        wh_win_skip(&s->w, ++seq);
        s->scan = seq;
        if (s->head == s->n)
          s->cursor = seq;
      } else {
        /* skewed: a few connections are busy */
        uint32_t busy = nconn < 8 ? nconn : 8;
        uint32_t c = (uint32_t)((r >> 20) % ((r >> 16) % 4 == 0 ? busy : nconn));
        m_add(s, ++seq, c);
        added++;
      }
    } else if (op < 10) {
      /* send the next ready one */
      size_t idx = m_pop(s);
      wh_item_t *it = pop_send(&s->w);
      if (idx == SIZE_MAX) {
        assert_null(it);
        assert_true(wh_win_ready_empty(&s->w));
      } else {
        assert_ptr_equal(it, s->m[idx].it);
        s->m[idx].st = WH_IT_SENDING;
      }
    } else if (jumps && op == 15 && (r >> 8) % 64 == 0 && nlive > 0) {
      /* events pruned below somewhere inside the window */
      size_t k = s->head + (size_t)((r >> 16) % nlive);
      m_jump(s, s->m[k].seq);
    } else if (nlive > 0) {
      /* an answer for a random item in progress (SENDING or BACKOFF), or
       * a finish of a READY one (given up at a retry) */
      size_t nl = 0;
      for (size_t k = s->head; k < s->n; k++) {
        wh_it_state_t st = s->m[k].st;
        if (st == WH_IT_SENDING || st == WH_IT_BACKOFF || st == WH_IT_READY)
          live[nl++] = k;
        if (nl == max_live)
          break;
      }
      if (nl == 0) {
        m_check(s);
        continue;
      }
      size_t idx = live[(r >> 8) % nl];
      mitem_t *mi = &s->m[idx];
      unsigned what = (unsigned)((r >> 32) % 8);
      if (mi->st == WH_IT_SENDING && what < 2) {
        mi->st = mi->it->state = WH_IT_BACKOFF; /* failed, retried later */
      } else if (mi->st == WH_IT_SENDING && what == 2) {
        m_ready(s, idx); /* cancelled or 410 */
        wh_win_ready(&s->w, mi->it);
        s->requeues++;
      } else if (mi->st == WH_IT_BACKOFF && what < 5) {
        m_ready(s, idx); /* retry due */
        wh_win_ready(&s->w, mi->it);
        s->requeues++;
      } else if (mi->st != WH_IT_READY || what == 7) {
        m_finish(s, idx, (r >> 40) & 1);
      }
    }
    m_check(s);
  }
  /* everything finished: the cursor is at the last event */
  assert_int_equal(added, nitems);
  assert_int_equal(s->w.pending, 0);
  assert_int_equal(wh_win_count(&s->w), 0);
  assert_int_equal(s->w.cursor, seq);
  assert_int_equal(s->w.scan, seq);
  assert_null(wh_win_pop_ready(&s->w));
  assert_true(wh_win_ready_empty(&s->w));
  assert_true(s->finished > nitems / 2);
  if (!jumps)
    assert_int_equal(s->finished, nitems);
  print_message("%zu items over %u connections: %zu finished, %zu jumps, %zu re-queued\n", nitems,
                nconn, s->finished, s->jumps, s->requeues);
  wh_win_free(&s->w);
  free(live);
  free(s->m);
  free(s->q);
  free(s->stamp);
  free(s);
}

static void test_window_random(void **state)
{
  (void)state;
  msim(1, 5000, 300, 400, false);
  msim(2, 5000, 300, 400, true);   /* with events pruned under the window */
  msim(3, 5000, 300, 5000, false); /* the window may hold everything */
  msim(4, 4000, 3000, 2000, true); /* more connections than hash buckets */
  msim(5, 3000, 3, 300, true);     /* long chains per connection */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pattern_ok),
    cmocka_unit_test(test_patterns_match),
    cmocka_unit_test(test_backoff_schedule),
    cmocka_unit_test(test_backoff_no_overflow),
    cmocka_unit_test(test_give_up),
    cmocka_unit_test(test_window_empty),
    cmocka_unit_test(test_window_basic),
    cmocka_unit_test(test_window_conn_order),
    cmocka_unit_test(test_window_similar_conns),
    cmocka_unit_test(test_window_ready_fifo),
    cmocka_unit_test(test_window_finish_out_of_order),
    cmocka_unit_test(test_window_jump),
    cmocka_unit_test(test_window_jump_chain),
    cmocka_unit_test(test_window_free_busy),
    cmocka_unit_test(test_window_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
