/*
 * test_outbox.c - connection events: which change makes which event
 * (outbox.h), the value and key encoding, and the store's events database:
 * events numbered in commit order and committed with their change, none
 * for a failed batch, numbering across reopen, retention by count and age.
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/mem.h"
#include "store/outbox.h"
#include "store/store.h"

static void test_put_events(void **state)
{
  (void)state;
  outbox_type_t t[OUTBOX_MAX_PER_CHANGE];
  /* New pending connection (connect flow): created only. */
  assert_int_equal(outbox_put_events(false, 0, CONN_PENDING, GRANT_AUTHORIZATION_CODE, 0, t), 1);
  assert_int_equal(t[0], OUTBOX_CREATED);
  /* New client-credentials connection made active at once. */
  assert_int_equal(outbox_put_events(false, 0, CONN_ACTIVE, GRANT_CLIENT_CREDENTIALS, 0, t), 2);
  assert_int_equal(t[0], OUTBOX_CREATED);
  assert_int_equal(t[1], OUTBOX_AUTHORIZED);
  /* Imported refresh token: created, nothing was authorized here. */
  assert_int_equal(outbox_put_events(false, 0, CONN_ACTIVE, GRANT_REFRESH_TOKEN, 0, t), 1);
  /* Callback: pending -> active. */
  assert_int_equal(
    outbox_put_events(true, CONN_PENDING, CONN_ACTIVE, GRANT_AUTHORIZATION_CODE, 0, t), 1);
  assert_int_equal(t[0], OUTBOX_AUTHORIZED);
  /* Routine refresh: same status, no event. */
  assert_int_equal(
    outbox_put_events(true, CONN_ACTIVE, CONN_ACTIVE, GRANT_AUTHORIZATION_CODE, 0, t), 0);
  assert_int_equal(
    outbox_put_events(true, CONN_ACTIVE, CONN_REFRESH_FAILING, GRANT_AUTHORIZATION_CODE, 0, t), 1);
  assert_int_equal(t[0], OUTBOX_REFRESH_FAILING);
  const conn_status_t bad[] = {CONN_REFRESH_FAILING, CONN_NEEDS_REAUTH, CONN_ERROR};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(outbox_put_events(true, bad[i], CONN_ACTIVE, GRANT_AUTHORIZATION_CODE, 0, t),
                     1);
    assert_int_equal(t[0], OUTBOX_RECOVERED);
  }
  assert_int_equal(outbox_put_events(true, CONN_REFRESH_FAILING, CONN_NEEDS_REAUTH,
                                     GRANT_AUTHORIZATION_CODE, 0, t),
                   1);
  assert_int_equal(t[0], OUTBOX_NEEDS_REAUTH);
  assert_int_equal(outbox_put_events(true, CONN_ACTIVE, CONN_NEEDS_REAUTH, GRANT_AUTHORIZATION_CODE,
                                     OUTBOX_F_RT_LOST, t),
                   1);
  assert_int_equal(t[0], OUTBOX_RT_LOST);
  assert_int_equal(outbox_put_events(true, CONN_ACTIVE, CONN_ERROR, GRANT_AUTHORIZATION_CODE, 0, t),
                   1);
  assert_int_equal(t[0], OUTBOX_ERROR);
  assert_int_equal(
    outbox_put_events(true, CONN_ACTIVE, CONN_PENDING, GRANT_AUTHORIZATION_CODE, 0, t), 0);
}

static void test_delete_events(void **state)
{
  (void)state;
  outbox_type_t t[OUTBOX_MAX_PER_CHANGE];
  assert_int_equal(outbox_delete_events(false, 0, OUTBOX_F_REVOKED, t), 0);
  assert_int_equal(outbox_delete_events(true, CONN_ACTIVE, 0, t), 1);
  assert_int_equal(t[0], OUTBOX_DELETED);
  assert_int_equal(outbox_delete_events(true, CONN_ACTIVE, OUTBOX_F_REVOKED, t), 2);
  assert_int_equal(t[0], OUTBOX_REVOKED);
  assert_int_equal(t[1], OUTBOX_DELETED);
  assert_int_equal(outbox_delete_events(true, CONN_REVOKED, OUTBOX_F_REVOKED, t), 1);
  assert_int_equal(t[0], OUTBOX_DELETED);
}

static void test_encoding(void **state)
{
  (void)state;
  uint8_t v[OUTBOX_HDR + 4];
  outbox_hdr_write(v, OUTBOX_NEEDS_REAUTH, CONN_NEEDS_REAUTH, CONN_ACTIVE, 1700000000123);
  memcpy(v + OUTBOX_HDR, "{\"a\"", 4);
  outbox_ev_t ev;
  assert_int_equal(outbox_decode(v, sizeof v, &ev), 0);
  assert_int_equal(ev.type, OUTBOX_NEEDS_REAUTH);
  assert_int_equal(ev.status, CONN_NEEDS_REAUTH);
  assert_int_equal(ev.prev, CONN_ACTIVE);
  assert_int_equal(ev.ts_ms, 1700000000123);
  assert_int_equal(ev.data_len, 4);
  assert_memory_equal(ev.data, "{\"a\"", 4);
  assert_int_equal(outbox_decode(v, OUTBOX_HDR - 1, &ev), -1);
  v[0] = OUTBOX_VERSION + 1;
  assert_int_equal(outbox_decode(v, sizeof v, &ev), -1);
  v[0] = OUTBOX_VERSION;
  v[1] = OUTBOX_TYPE_COUNT;
  assert_int_equal(outbox_decode(v, sizeof v, &ev), -1);
  /* Keys sort as numbers (LMDB compares bytes). */
  uint8_t a[8], b[8];
  outbox_key(a, 255);
  outbox_key(b, 256);
  assert_true(memcmp(a, b, 8) < 0);
  assert_int_equal(outbox_key_seq(b), 256);
  outbox_key(a, UINT64_MAX - 1);
  assert_int_equal(outbox_key_seq(a), UINT64_MAX - 1);
  assert_string_equal(outbox_type_name(OUTBOX_RT_LOST), "connection.refresh_token_lost_in_restart");
  assert_null(outbox_type_name(OUTBOX_NONE));
  assert_string_equal(outbox_status_name(OUTBOX_STATUS_DELETED), "deleted");
  assert_null(outbox_status_name(OUTBOX_STATUS_NONE));
}

/* ---- the store's events database ---- */

static uv_loop_t loop;
static const char *dir;
static seal_keyring_t *kr;
static uint64_t committed_last;
static int committed_calls;

static int setup(void **state)
{
  (void)state;
  uint8_t k[SEAL_KEY_LEN];
  memset(k, 0x33, sizeof k);
  uv_loop_init(&loop);
  dir = xstrdup(test_mkdtemp());
  kr = seal_keyring_new();
  assert_int_equal(seal_keyring_add(kr, 1, k), 0);
  committed_last = 0;
  committed_calls = 0;
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  test_rmdir(dir);
  free((char *)dir);
  seal_keyring_free(kr);
  clock_clear_fake();
  return 0;
}

static int data_fn(void *arg, const conn_t *c, buf_t *out)
{
  (void)arg;
  buf_printf(out, "{\"connection\":\"%s\"}", c->id);
  return 0;
}

static void on_committed(void *arg, uint64_t last)
{
  (void)arg;
  committed_last = last;
  committed_calls++;
}

static store_t *open_ev(size_t keep, int64_t keep_ms)
{
  store_opts_t o = {
    .loop = &loop, .path = dir, .keyring = kr, .events_keep = keep, .events_keep_ms = keep_ms};
  store_t *s = NULL;
  assert_int_equal(store_open(&s, &o), 0);
  store_set_events(s, data_fn, on_committed, NULL);
  return s;
}

static void on_closed(void *arg)
{
  (*(int *)arg)++;
}

static void close_store(store_t *s)
{
  int done = 0;
  store_close(s, on_closed, &done);
  while (!done)
    uv_run(&loop, UV_RUN_ONCE);
}

static void drain(store_t *s)
{
  while (store_pending(s) > 0)
    uv_run(&loop, UV_RUN_ONCE);
}

static void put(store_t *s, const char *id, conn_status_t st)
{
  conn_t c = {0};
  c.id = (char *)id;
  c.provider = (char *)"acme";
  c.grant = GRANT_AUTHORIZATION_CODE;
  c.status = st;
  assert_int_equal(store_conn_put(s, &c, NULL, NULL), 0);
}

static void test_store_events(void **state)
{
  (void)state;
  clock_set_fake(1700000000000);
  store_t *s = open_ev(0, 0);
  put(s, "c1", CONN_PENDING);      /* 1 created */
  put(s, "c1", CONN_ACTIVE);       /* 2 authorized (same batch: sees the put before) */
  put(s, "c1", CONN_ACTIVE);       /* routine */
  put(s, "c1", CONN_NEEDS_REAUTH); /* 3 needs_reauth */
  assert_int_equal(store_conn_delete_ev(s, "c1", OUTBOX_F_REVOKED, NULL, NULL), 0); /* 4, 5 */
  assert_int_equal(store_conn_delete(s, "nope", NULL, NULL), 0);                    /* nothing */
  drain(s);
  assert_int_equal(committed_last, 5);
  assert_true(committed_calls >= 1);
  store_event_t *ev;
  size_t n;
  assert_int_equal(store_events_read(s, 0, 0, &ev, &n), 0);
  assert_int_equal(n, 5);
  const outbox_type_t want[] = {OUTBOX_CREATED, OUTBOX_AUTHORIZED, OUTBOX_NEEDS_REAUTH,
                                OUTBOX_REVOKED, OUTBOX_DELETED};
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(ev[i].seq, i + 1);
    assert_int_equal(ev[i].type, want[i]);
    assert_int_equal(ev[i].ts_ms, 1700000000000);
    assert_string_equal(ev[i].data, "{\"connection\":\"c1\"}");
  }
  assert_int_equal(ev[2].prev, CONN_ACTIVE);
  assert_int_equal(ev[2].status, CONN_NEEDS_REAUTH);
  assert_int_equal(ev[4].status, OUTBOX_STATUS_DELETED);
  assert_int_equal(ev[0].prev, OUTBOX_STATUS_NONE);
  store_events_free(ev, n);
  /* After a cursor, with a limit. */
  assert_int_equal(store_events_read(s, 3, 1, &ev, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ev[0].seq, 4);
  store_events_free(ev, n);
  close_store(s);

  /* Numbering goes on after reopen. */
  s = open_ev(0, 0);
  uint64_t first, last;
  store_events_bounds(s, &first, &last);
  assert_int_equal(first, 1);
  assert_int_equal(last, 5);
  put(s, "c2", CONN_PENDING);
  drain(s);
  store_events_bounds(s, &first, &last);
  assert_int_equal(last, 6);
  close_store(s);
}

static void test_no_event_without_commit(void **state)
{
  (void)state;
  store_t *s = open_ev(0, 0);
  /* A key too long fails at once: neither change nor event. */
  char id[600];
  memset(id, 'x', sizeof id - 1);
  id[sizeof id - 1] = '\0';
  conn_t c = {.id = id, .provider = (char *)"acme", .status = CONN_PENDING};
  assert_int_equal(store_conn_put(s, &c, NULL, NULL), GRANTD_EINVALID);
  /* Without a data callback (events off): no events. */
  store_set_events(s, NULL, NULL, NULL);
  put(s, "c0", CONN_ACTIVE);
  drain(s);
  uint64_t first, last;
  store_events_bounds(s, &first, &last);
  assert_int_equal(last, 0);
  close_store(s);
}

static void test_retention(void **state)
{
  (void)state;
  clock_set_fake(1700000000000);
  store_t *s = open_ev(3, 60000);
  const conn_status_t cycle[] = {CONN_ACTIVE, CONN_REFRESH_FAILING};
  put(s, "c1", CONN_PENDING);
  drain(s);
  for (int i = 0; i < 6; i++) {
    put(s, "c1", cycle[i % 2]);
    drain(s);
  }
  uint64_t first, last;
  store_events_bounds(s, &first, &last);
  assert_int_equal(last, 7);
  assert_int_equal(first, 5); /* count: 3 kept */
  assert_int_equal(store_events_trimmed(s), 4);
  /* Age: everything older than a minute goes, but the newest stays. */
  clock_advance_fake(120000);
  put(s, "c1", CONN_ACTIVE);
  drain(s);
  store_events_bounds(s, &first, &last);
  assert_int_equal(last, 8);
  assert_int_equal(first, 8);
  clock_advance_fake(120000);
  put(s, "c1", CONN_ACTIVE); /* no event: nothing trimmed, the newest stays */
  drain(s);
  store_events_bounds(s, &first, &last);
  assert_int_equal(first, 8);
  store_event_t *ev;
  size_t n;
  assert_int_equal(store_events_read(s, 0, 0, &ev, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ev[0].seq, 8);
  store_events_free(ev, n);
  close_store(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_put_events),
    cmocka_unit_test(test_delete_events),
    cmocka_unit_test(test_encoding),
    cmocka_unit_test_setup_teardown(test_store_events, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_event_without_commit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
