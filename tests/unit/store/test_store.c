/*
 * test_store.c - the LMDB store: CRUD across close/reopen, listings with
 * filters and pages, the by_tenant index, group commit (batch boundaries
 * and "no callback before its commit"), the read-your-writes overlay,
 * MAP_FULL with a tiny map, the master-key check at open, single-use
 * states, scans that report bad records, shutdown draining.
 */
#include "support.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/err.h"
#include "base/mem.h"
#include "store/store.h"
#include "store/store_int.h"
#include "base/log.h"
#include <errno.h>
#include <unistd.h>

static uv_loop_t loop;
static const char *dir;
static seal_keyring_t *kr;
static uint8_t key1[SEAL_KEY_LEN], key2[SEAL_KEY_LEN];

static seal_keyring_t *ring(uint32_t id, const uint8_t *k)
{
  seal_keyring_t *r = seal_keyring_new();
  assert_int_equal(seal_keyring_add(r, id, k), 0);
  return r;
}

static int setup(void **state)
{
  (void)state;
  memset(key1, 0x11, sizeof(key1));
  memset(key2, 0x22, sizeof(key2));
  uv_loop_init(&loop);
  dir = xstrdup(test_mkdtemp());
  kr = ring(1, key1);
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
  return 0;
}

static store_t *open_with(const seal_keyring_t *r, size_t map_size, int want)
{
  store_opts_t o = {.loop = &loop, .path = dir, .map_size = map_size, .keyring = r};
  store_t *s = NULL;
  assert_int_equal(store_open(&s, &o), want);
  return s;
}

static store_t *open_store(void)
{
  return open_with(kr, 0, 0);
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
  assert_int_equal(done, 1);
}

/* Records callback statuses. */
typedef struct {
  int calls;
  int status;
  int fails;
} res_t;

static void on_done(void *arg, int status)
{
  res_t *r = arg;
  r->calls++;
  r->status = status;
  if (status != 0)
    r->fails++;
}

static void drain(store_t *s)
{
  while (store_pending(s) > 0)
    uv_run(&loop, UV_RUN_ONCE);
}

static void make_conn(conn_t *c, const char *id, const char *tenant, conn_status_t st)
{
  memset(c, 0, sizeof(*c));
  c->id = xstrdup(id);
  c->tenant = tenant ? xstrdup(tenant) : NULL;
  c->provider = xstrdup("acme");
  c->grant = GRANT_AUTHORIZATION_CODE;
  c->status = st;
  c->access_token = xstrdup("access-token-secret");
  c->refresh_token = xstrdup("refresh-token-secret");
  c->expires_at = 1700000000000;
  c->next_refresh_at = 1699999000000;
}

static void put_conn(store_t *s, const char *id, const char *tenant, conn_status_t st, res_t *r)
{
  conn_t c;
  make_conn(&c, id, tenant, st);
  assert_int_equal(store_conn_put(s, &c, on_done, r), 0);
  conn_free(&c);
}

static void test_crud_reopen(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  provider_t p = {0};
  p.name = xstrdup("acme");
  p.token_url = xstrdup("https://acme.test/token");
  p.client_secret = xstrdup("client-secret");
  assert_int_equal(store_provider_put(s, &p, on_done, &r), 0);
  provider_free(&p);
  put_conn(s, "c1", "t1", CONN_ACTIVE, &r);
  state_rec_t st = {0};
  st.state = xstrdup("state-1");
  st.conn_id = xstrdup("c1");
  st.code_verifier = xstrdup("verifier");
  assert_int_equal(store_state_put(s, &st, on_done, &r), 0);
  state_rec_free(&st);
  drain(s);
  assert_int_equal(r.calls, 3);
  assert_int_equal(r.fails, 0);
  close_store(s);

  s = open_store();
  assert_int_equal(store_provider_get(s, "acme", &p), 0);
  assert_string_equal(p.client_secret, "client-secret");
  assert_string_equal(p.token_url, "https://acme.test/token");
  provider_free(&p);
  conn_t c;
  assert_int_equal(store_conn_get(s, "c1", &c), 0);
  assert_string_equal(c.tenant, "t1");
  assert_string_equal(c.access_token, "access-token-secret");
  assert_int_equal(c.status, CONN_ACTIVE);
  conn_free(&c);
  assert_int_equal(store_state_get(s, "state-1", &st), 0);
  assert_string_equal(st.code_verifier, "verifier");
  state_rec_free(&st);
  assert_int_equal(store_conn_get(s, "nope", &c), GRANTD_ENOT_FOUND);
  assert_int_equal(store_provider_get(s, "nope", &p), GRANTD_ENOT_FOUND);

  /* Replace, then delete everything. */
  put_conn(s, "c1", "t1", CONN_NEEDS_REAUTH, &r);
  drain(s);
  assert_int_equal(store_conn_get(s, "c1", &c), 0);
  assert_int_equal(c.status, CONN_NEEDS_REAUTH);
  conn_free(&c);
  assert_int_equal(store_provider_delete(s, "acme", on_done, &r), 0);
  assert_int_equal(store_conn_delete(s, "c1", on_done, &r), 0);
  assert_int_equal(store_state_delete(s, "state-1", on_done, &r), 0);
  assert_int_equal(store_conn_delete(s, "never-existed", on_done, &r), 0);
  drain(s);
  assert_int_equal(r.fails, 0);
  assert_int_equal(r.calls, 8);
  close_store(s);

  s = open_store();
  assert_int_equal(store_provider_get(s, "acme", &p), GRANTD_ENOT_FOUND);
  assert_int_equal(store_conn_get(s, "c1", &c), GRANTD_ENOT_FOUND);
  assert_int_equal(store_state_get(s, "state-1", &st), GRANTD_ENOT_FOUND);
  buf_t b = BUF_INIT;
  assert_int_equal(store_committed_get(s, "by_tenant", "t1\0c1", 5, &b), GRANTD_ENOT_FOUND);
  close_store(s);
}

static size_t list_all(store_t *s, const char *tenant, int status, size_t limit, char ids[][16])
{
  size_t total = 0, page = limit ? limit : 100;
  char *cursor = NULL;
  for (int pages = 0; pages < 100; pages++) {
    conn_t *out;
    size_t n;
    char *next;
    assert_int_equal(store_conn_list(s, tenant, status, cursor, limit, &out, &n, &next), 0);
    assert_true(n <= page);
    for (size_t i = 0; i < n; i++) {
      snprintf(ids[total++], 16, "%s", out[i].id);
      if (tenant)
        assert_string_equal(out[i].tenant, tenant);
      if (status >= 0)
        assert_int_equal(out[i].status, status);
      assert_non_null(out[i].access_token); /* full records */
      conn_free(&out[i]);
    }
    free(out);
    free(cursor);
    cursor = next;
    if (next == NULL)
      break;
    assert_int_equal(n, page); /* only full pages announce a next one */
  }
  assert_null(cursor);
  return total;
}

static void test_listing(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  /* 25 connections: tenants alternate t1/t2, statuses cycle through 3. */
  for (int i = 0; i < 25; i++) {
    char id[16];
    snprintf(id, sizeof(id), "c%02d", i);
    put_conn(s, id, i % 2 ? "t2" : "t1", (conn_status_t)(i % 3), &r);
  }
  drain(s);
  char ids[64][16];
  size_t n = list_all(s, NULL, -1, 10, ids);
  assert_int_equal(n, 25);
  for (size_t i = 0; i < n; i++) {
    char want[32];
    snprintf(want, sizeof(want), "c%02d", (int)i);
    assert_string_equal(ids[i], want); /* id order */
  }
  assert_int_equal(list_all(s, NULL, -1, 25, ids), 25);
  assert_int_equal(list_all(s, NULL, -1, 100, ids), 25);
  assert_int_equal(list_all(s, NULL, -1, 0, ids), 25); /* 0 = default page */
  assert_int_equal(list_all(s, "t1", -1, 4, ids), 13);
  assert_string_equal(ids[0], "c00");
  assert_string_equal(ids[12], "c24");
  assert_int_equal(list_all(s, "t2", -1, 5, ids), 12);
  assert_int_equal(list_all(s, "t3", -1, 5, ids), 0);
  assert_int_equal(list_all(s, "t", -1, 5, ids), 0); /* prefix of a tenant */
  assert_int_equal(list_all(s, NULL, CONN_ACTIVE, 3, ids), 8);
  assert_int_equal(list_all(s, "t1", CONN_PENDING, 2, ids), 5); /* 0,6,12,18,24 */
  assert_string_equal(ids[4], "c24");
  assert_int_equal(list_all(s, NULL, CONN_REVOKED, 2, ids), 0);

  /* Cursors resume after the given id, also one that no longer exists. */
  conn_t *out;
  char *next;
  assert_int_equal(store_conn_list(s, NULL, -1, "c10", 3, &out, &n, &next), 0);
  assert_int_equal(n, 3);
  assert_string_equal(out[0].id, "c11");
  assert_string_equal(next, "c13");
  for (size_t i = 0; i < n; i++)
    conn_free(&out[i]);
  free(out);
  free(next);
  assert_int_equal(store_conn_list(s, "t2", -1, "c10x", 100, &out, &n, &next), 0);
  assert_int_equal(n, 7);
  assert_string_equal(out[0].id, "c11");
  assert_null(next);
  for (size_t i = 0; i < n; i++)
    conn_free(&out[i]);
  free(out);
  assert_int_equal(store_conn_list(s, NULL, -1, "zzz", 10, &out, &n, &next), 0);
  assert_int_equal(n, 0);
  assert_null(out);
  assert_null(next);
  close_store(s);
}

static void test_by_tenant(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  char ids[8][16];
  buf_t b = BUF_INIT;
  put_conn(s, "x", "alpha", CONN_ACTIVE, &r);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "alpha\0x", 7, &b), 0);
  assert_int_equal(b.len, 0);
  /* Moving to another tenant removes the old entry in the same commit. */
  put_conn(s, "x", "beta", CONN_ACTIVE, &r);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "alpha\0x", 7, &b), GRANTD_ENOT_FOUND);
  assert_int_equal(store_committed_get(s, "by_tenant", "beta\0x", 6, &b), 0);
  assert_int_equal(list_all(s, "alpha", -1, 10, ids), 0);
  assert_int_equal(list_all(s, "beta", -1, 10, ids), 1);
  /* No tenant: no index entry. */
  put_conn(s, "x", NULL, CONN_ACTIVE, &r);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "beta\0x", 6, &b), GRANTD_ENOT_FOUND);
  assert_int_equal(list_all(s, NULL, -1, 10, ids), 1);
  put_conn(s, "x", "gamma", CONN_ACTIVE, &r);
  drain(s);
  assert_int_equal(store_conn_delete(s, "x", on_done, &r), 0);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "gamma\0x", 7, &b), GRANTD_ENOT_FOUND);
  assert_int_equal(list_all(s, "gamma", -1, 10, ids), 0);
  assert_int_equal(r.fails, 0);
  assert_int_equal(store_committed_get(s, "nope", "k", 1, &b), GRANTD_EINVALID);
  buf_free(&b);
  close_store(s);
}

/* store_conn_replace keeps by_tenant in step from the caller's prev, as
 * store_conn_put does from a read, whether or not prev is still only a
 * pending write. */
static void replace_conn(store_t *s, const char *id, const char *tenant, const conn_t *prev,
                         res_t *r)
{
  conn_t c;
  make_conn(&c, id, tenant, CONN_ACTIVE);
  assert_int_equal(store_conn_replace(s, &c, prev, on_done, r), 0);
  conn_free(&c);
}

static void test_conn_replace(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  buf_t b = BUF_INIT;
  conn_t prev;
  put_conn(s, "x", "alpha", CONN_ACTIVE, &r);
  drain(s);
  /* Same tenant: the entry stays. */
  assert_int_equal(store_conn_get(s, "x", &prev), 0);
  replace_conn(s, "x", "alpha", &prev, &r);
  conn_free(&prev);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "alpha\0x", 7, &b), 0);
  /* Same tenant while the put that created the record (and its index
   * entry) is still pending: the entry comes from that put. */
  put_conn(s, "y", "alpha", CONN_ACTIVE, &r);
  assert_int_equal(store_conn_get(s, "y", &prev), 0);
  replace_conn(s, "y", "alpha", &prev, &r);
  conn_free(&prev);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "alpha\0y", 7, &b), 0);
  /* Another tenant, prev still pending (not committed yet). */
  assert_int_equal(store_conn_get(s, "x", &prev), 0);
  replace_conn(s, "x", "beta", &prev, &r);
  conn_free(&prev);
  assert_int_equal(store_conn_get(s, "x", &prev), 0);
  assert_string_equal(prev.tenant, "beta");
  replace_conn(s, "x", "gamma", &prev, &r);
  conn_free(&prev);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "alpha\0x", 7, &b), GRANTD_ENOT_FOUND);
  assert_int_equal(store_committed_get(s, "by_tenant", "beta\0x", 6, &b), GRANTD_ENOT_FOUND);
  assert_int_equal(store_committed_get(s, "by_tenant", "gamma\0x", 7, &b), 0);
  /* No tenant any more, then a tenant again. */
  assert_int_equal(store_conn_get(s, "x", &prev), 0);
  replace_conn(s, "x", NULL, &prev, &r);
  conn_free(&prev);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "gamma\0x", 7, &b), GRANTD_ENOT_FOUND);
  assert_int_equal(store_conn_get(s, "x", &prev), 0);
  replace_conn(s, "x", "delta", &prev, &r);
  conn_free(&prev);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "delta\0x", 7, &b), 0);
  /* prev NULL: the store reads the record itself. */
  replace_conn(s, "x", "omega", NULL, &r);
  drain(s);
  assert_int_equal(store_committed_get(s, "by_tenant", "delta\0x", 7, &b), GRANTD_ENOT_FOUND);
  assert_int_equal(store_committed_get(s, "by_tenant", "omega\0x", 7, &b), 0);
  assert_int_equal(r.fails, 0);
  buf_free(&b);
  close_store(s);
}

/* ---- group commit ---- */

typedef struct {
  store_t *s;
  const char *id;
  int status;
  uint64_t commits_seen;
  uint64_t batch_seen;
  int committed_in_lmdb;
  int called;
} gc_op_t;

static void on_gc_done(void *arg, int status)
{
  gc_op_t *g = arg;
  store_stats_t st;
  store_stats(g->s, &st);
  g->called++;
  g->status = status;
  g->commits_seen = st.commits;
  g->batch_seen = st.last_batch_size;
  /* Straight from LMDB, bypassing the overlay: the value must be there. */
  buf_t b = BUF_INIT;
  g->committed_in_lmdb = store_committed_get(g->s, "connections", g->id, strlen(g->id), &b) == 0;
  buf_free(&b);
}

static void test_group_commit(void **state)
{
  (void)state;
  store_t *s = open_store();
  gc_op_t a = {s, "first", 0, 0, 0, 0, 0};
  conn_t c;
  make_conn(&c, "first", "t", CONN_ACTIVE);
  assert_int_equal(store_conn_put(s, &c, on_gc_done, &a), 0);
  conn_free(&c);
  /* One loop turn starts the commit of the one-op batch. */
  uv_run(&loop, UV_RUN_NOWAIT);
  store_stats_t st;
  store_stats(s, &st);
  print_message("first batch %s when the next ops were queued\n",
                st.commits == 0 ? "still committing" : "already done");

  enum { N = 50 };
  gc_op_t b[N];
  char names[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof(names[i]), "next%02d", i);
    b[i] = (gc_op_t){s, names[i], 0, 0, 0, 0, 0};
    make_conn(&c, names[i], "t", CONN_ACTIVE);
    assert_int_equal(store_conn_put(s, &c, on_gc_done, &b[i]), 0);
    conn_free(&c);
  }
  /* Pending: visible through the overlay, not yet in LMDB. */
  buf_t raw = BUF_INIT;
  assert_int_equal(store_committed_get(s, "connections", "next00", 6, &raw), GRANTD_ENOT_FOUND);
  assert_int_equal(store_conn_get(s, "next00", &c), 0);
  conn_free(&c);
  assert_int_equal(b[0].called, 0);
  drain(s);

  assert_int_equal(a.called, 1);
  assert_int_equal(a.status, 0);
  assert_int_equal(a.commits_seen, 1);
  assert_int_equal(a.batch_seen, 1);
  assert_true(a.committed_in_lmdb);
  for (int i = 0; i < N; i++) {
    assert_int_equal(b[i].called, 1);
    assert_int_equal(b[i].status, 0);
    assert_int_equal(b[i].commits_seen, 2); /* all in the second batch */
    assert_int_equal(b[i].batch_seen, N);
    assert_true(b[i].committed_in_lmdb);
  }
  store_stats(s, &st);
  assert_int_equal(st.commits, 2);
  assert_int_equal(st.ops_committed, N + 1);
  assert_int_equal(st.commit_failures, 0);
  assert_int_equal(st.entries_connections, N + 1);
  assert_true(st.used_bytes > 0);
  assert_int_equal(st.pending, 0);

  /* Ops queued in one loop turn form one batch. */
  res_t r = {0};
  for (int i = 0; i < 10; i++)
    put_conn(s, "same", "t", (conn_status_t)(i % 3), &r);
  drain(s);
  store_stats(s, &st);
  assert_int_equal(st.commits, 3);
  assert_int_equal(st.last_batch_size, 10);
  assert_int_equal(r.calls, 10);
  assert_int_equal(store_conn_get(s, "same", &c), 0);
  assert_int_equal(c.status, 9 % 3); /* the last write wins */
  conn_free(&c);
  buf_free(&raw);
  close_store(s);
}

typedef struct {
  int order[8];
  int n;
} order_t;
static order_t ord;
static void on_ordered(void *arg, int status)
{
  assert_int_equal(status, 0);
  ord.order[ord.n++] = (int)(intptr_t)arg;
}

static void test_flush_and_overlay(void **state)
{
  (void)state;
  store_t *s = open_store();
  memset(&ord, 0, sizeof(ord));
  /* Nothing queued: the flush callback still comes, from the loop. */
  assert_int_equal(store_flush(s, on_ordered, (void *)(intptr_t)9), 0);
  assert_int_equal(ord.n, 0);
  drain(s);
  assert_int_equal(ord.n, 1);

  /* put, delete, put of one key in one batch: reads follow each step. */
  conn_t c, got;
  make_conn(&c, "k", "t1", CONN_ACTIVE);
  assert_int_equal(store_conn_put(s, &c, on_ordered, (void *)1), 0);
  assert_int_equal(store_conn_get(s, "k", &got), 0);
  conn_free(&got);
  assert_int_equal(store_conn_delete(s, "k", on_ordered, (void *)2), 0);
  assert_int_equal(store_conn_get(s, "k", &got), GRANTD_ENOT_FOUND);
  char ids[16][16];
  assert_int_equal(list_all(s, NULL, -1, 10, ids), 0);
  assert_int_equal(list_all(s, "t1", -1, 10, ids), 0);
  free(c.tenant);
  c.tenant = xstrdup("t2");
  c.status = CONN_ERROR;
  assert_int_equal(store_conn_put(s, &c, on_ordered, (void *)3), 0);
  conn_free(&c);
  assert_int_equal(store_flush(s, on_ordered, (void *)4), 0);
  assert_int_equal(store_conn_get(s, "k", &got), 0);
  assert_int_equal(got.status, CONN_ERROR);
  conn_free(&got);
  assert_int_equal(list_all(s, "t2", -1, 10, ids), 1);
  assert_int_equal(list_all(s, "t1", -1, 10, ids), 0);
  assert_int_equal(list_all(s, NULL, CONN_ERROR, 10, ids), 1);
  drain(s);
  assert_int_equal(ord.n, 5);
  for (int i = 1; i <= 4; i++)
    assert_int_equal(ord.order[i], i); /* queue order */
  assert_int_equal(store_conn_get(s, "k", &got), 0);
  assert_int_equal(got.status, CONN_ERROR);
  conn_free(&got);
  assert_int_equal(list_all(s, "t2", -1, 10, ids), 1);
  assert_int_equal(list_all(s, "t1", -1, 10, ids), 0);

  /* Pending records merge into a listing in key order, and a pending
   * delete hides a committed one. */
  res_t r = {0};
  put_conn(s, "a", "t2", CONN_ACTIVE, &r);
  put_conn(s, "m", "t2", CONN_ACTIVE, &r);
  put_conn(s, "z", "t2", CONN_ACTIVE, &r);
  drain(s);
  put_conn(s, "b", "t2", CONN_ACTIVE, &r);
  put_conn(s, "zz", "t2", CONN_ACTIVE, &r);
  assert_int_equal(store_conn_delete(s, "m", on_done, &r), 0);
  const char *want[] = {"a", "b", "k", "z", "zz"};
  assert_int_equal(list_all(s, NULL, -1, 2, ids), 5);
  for (int i = 0; i < 5; i++)
    assert_string_equal(ids[i], want[i]);
  assert_int_equal(list_all(s, "t2", -1, 1, ids), 5);
  for (int i = 0; i < 5; i++)
    assert_string_equal(ids[i], want[i]);
  drain(s);
  assert_int_equal(list_all(s, "t2", -1, 3, ids), 5);
  assert_int_equal(r.fails, 0);
  close_store(s);
}

/* ---- MAP_FULL ---- */

static void test_map_full(void **state)
{
  (void)state;
  const size_t small = 64 * 1024;
  store_t *s = open_with(kr, small, 0);
  int stored = 0, full = 0;
  for (int i = 0; i < 1000 && !full; i++) {
    char id[32];
    snprintf(id, sizeof(id), "conn-%04d", i);
    res_t r = {0};
    conn_t c;
    make_conn(&c, id, "tenant", CONN_ACTIVE);
    c.metadata_json = xmalloc(400);
    memset(c.metadata_json, 'm', 399);
    c.metadata_json[399] = 0;
    assert_int_equal(store_conn_put(s, &c, on_done, &r), 0);
    conn_free(&c);
    drain(s);
    assert_int_equal(r.calls, 1);
    if (r.status == GRANTD_EMAP_FULL) {
      full = 1;
      /* The failed record is not visible (its overlay entry is gone). */
      assert_int_equal(store_conn_get(s, id, &c), GRANTD_ENOT_FOUND);
    } else {
      assert_int_equal(r.status, 0);
      stored++;
    }
  }
  assert_true(full);
  assert_true(stored > 5);
  store_stats_t st;
  store_stats(s, &st);
  assert_int_equal(st.commit_failures, 1);
  /* The environment stays usable: reads work and the queue goes on. */
  conn_t c;
  assert_int_equal(store_conn_get(s, "conn-0000", &c), 0);
  conn_free(&c);
  res_t r = {0};
  assert_int_equal(store_flush(s, on_done, &r), 0);
  drain(s);
  assert_int_equal(r.status, 0);
  close_store(s);

  /* Everything stored before is intact after reopening... */
  s = open_with(kr, small, 0);
  for (int i = 0; i < stored; i++) {
    char id[32];
    snprintf(id, sizeof(id), "conn-%04d", i);
    assert_int_equal(store_conn_get(s, id, &c), 0);
    assert_string_equal(c.access_token, "access-token-secret");
    conn_free(&c);
  }
  close_store(s);
  /* ...and a bigger map takes more. */
  s = open_with(kr, 4 * small, 0);
  res_t r2 = {0};
  put_conn(s, "after-growth", "tenant", CONN_ACTIVE, &r2);
  drain(s);
  assert_int_equal(r2.status, 0);
  close_store(s);
}

/* ---- keys ---- */

static void test_master_key_check(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  put_conn(s, "c1", "t", CONN_ACTIVE, &r);
  drain(s);
  close_store(s);

  /* Same id, different key material. */
  seal_keyring_t *wrong = ring(1, key2);
  open_with(wrong, 0, GRANTD_ESTORE_WRONG_KEY);
  seal_keyring_free(wrong);
  /* Only an id the store has never seen. */
  seal_keyring_t *other = ring(2, key2);
  open_with(other, 0, GRANTD_ESTORE_WRONG_KEY);

  /* Rotation: old key 1 plus new current key 2. */
  assert_int_equal(seal_keyring_add(other, 1, key1), 0);
  s = open_with(other, 0, 0);
  put_conn(s, "c2", "t", CONN_ACTIVE, &r);
  drain(s);
  conn_t c;
  assert_int_equal(store_conn_get(s, "c1", &c), 0); /* sealed with key 1 */
  conn_free(&c);
  assert_int_equal(store_conn_get(s, "c2", &c), 0); /* sealed with key 2 */
  conn_free(&c);
  close_store(s);

  /* Back to key 1 only: the store opens (key 2's records cannot), and a
   * record sealed with key 2 is reported, not dropped. */
  s = open_store();
  assert_int_equal(store_conn_get(s, "c2", &c), GRANTD_ESTORE_KEY);
  assert_int_equal(store_conn_get(s, "c1", &c), 0);
  conn_free(&c);
  close_store(s);
  /* Key 2 with the wrong material under a known id 1 still fails. */
  seal_keyring_t *mixed = ring(2, key2);
  seal_keyring_add(mixed, 1, key2);
  open_with(mixed, 0, GRANTD_ESTORE_WRONG_KEY);
  seal_keyring_free(mixed);
  seal_keyring_free(other);
}

/* Census and re-seal: records sealed with key 1 move to key 2 in bounded
 * steps, records with a pending write are left to it, a record sealed
 * with a key the keyring lacks is counted unreadable and left in place,
 * and everything reads the same afterwards. */
static void test_reseal(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  char id[16];
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof id, "c%02d", i);
    put_conn(s, id, "t", CONN_ACTIVE, &r);
  }
  provider_t p = {0};
  p.name = xstrdup("acme");
  p.token_url = xstrdup("https://acme.example/token");
  p.client_secret = xstrdup("client-secret-value");
  assert_int_equal(store_provider_put(s, &p, on_done, &r), 0);
  drain(s);
  store_census_t c;
  assert_int_equal(store_seal_census(s, &c), 0);
  assert_int_equal(c.sealed, 11);
  assert_int_equal(c.old, 0);
  assert_int_equal(store_census_count(&c, 1), 11);
  assert_int_equal(store_census_count(&c, 2), 0);
  close_store(s);

  /* A record only key 3 opens: unreadable for a 2:NEW,1:OLD keyring. */
  uint8_t key3[SEAL_KEY_LEN];
  memset(key3, 0x33, sizeof key3);
  seal_keyring_t *k3 = ring(3, key3);
  seal_keyring_add(k3, 1, key1);
  s = open_with(k3, 0, 0);
  put_conn(s, "z-key3", "t", CONN_ACTIVE, &r);
  drain(s);
  close_store(s);

  seal_keyring_t *rot = ring(2, key2);
  seal_keyring_add(rot, 1, key1);
  s = open_with(rot, 0, 0);
  assert_int_equal(store_seal_census(s, &c), 0);
  assert_int_equal(c.sealed, 12);
  assert_int_equal(c.old, 12);
  assert_int_equal(store_census_count(&c, 3), 1);
  /* A pending write of c05 is sealed with key 2 already: not re-sealed. */
  put_conn(s, "c05", "t", CONN_ACTIVE, &r);
  store_reseal_t rs = STORE_RESEAL_INIT;
  int steps = 0, rc;
  /* The first step reaches c05 (acme, c00..c05) while its write is still
   * pending. */
  assert_int_equal(store_reseal_step(s, &rs, 7), 0);
  assert_int_equal(store_pending(s), 7); /* c05 + 6 re-seals */
  drain(s);
  while ((rc = store_reseal_step(s, &rs, 3)) == 0) {
    steps++;
    assert_true(store_pending(s) <= 3); /* bounded: at most 3 puts per step */
    drain(s);
  }
  assert_int_equal(rc, 1);
  assert_true(steps >= 1);
  drain(s);
  assert_int_equal(rs.resealed, 10); /* 9 connections + the provider */
  assert_int_equal(rs.unreadable, 1);
  /* c05 was pending: counted as old (its commit could have failed) and
   * deferred; so 2 old (c05, z-key3), 10 on key 2 plus c05's old id. */
  assert_int_equal(rs.deferred, 1);
  assert_int_equal(rs.pass.old, 2);
  assert_int_equal(store_census_count(&rs.pass, 2), 10);
  store_reseal_reset(&rs);
  assert_int_equal(store_seal_census(s, &c), 0);
  assert_int_equal(store_census_count(&c, 1), 0);
  assert_int_equal(store_census_count(&c, 2), 11);
  assert_int_equal(store_census_count(&c, 3), 1);
  /* A second pass has nothing to do, and sees c05 committed on key 2. */
  while ((rc = store_reseal_step(s, &rs, 0)) == 0)
    ;
  assert_int_equal(rc, 1);
  assert_int_equal(rs.resealed, 0);
  assert_int_equal(rs.deferred, 0);
  assert_int_equal(rs.pass.old, 1);
  assert_int_equal(store_census_count(&rs.pass, 2), 11);
  store_reseal_reset(&rs);
  close_store(s);

  /* Key 1 is no longer needed: the records open with key 2 alone. */
  seal_keyring_t *only2 = ring(2, key2);
  s = open_with(only2, 0, 0);
  conn_t cc;
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof id, "c%02d", i);
    assert_int_equal(store_conn_get(s, id, &cc), 0);
    assert_string_equal(cc.access_token, "access-token-secret");
    assert_string_equal(cc.refresh_token, "refresh-token-secret");
    conn_free(&cc);
  }
  provider_t pp;
  assert_int_equal(store_provider_get(s, "acme", &pp), 0);
  assert_string_equal(pp.client_secret, "client-secret-value");
  provider_free(&pp);
  assert_int_equal(store_conn_get(s, "z-key3", &cc), GRANTD_ESTORE_KEY);
  close_store(s);
  provider_free(&p);
  seal_keyring_free(only2);
  seal_keyring_free(rot);
  seal_keyring_free(k3);
}

/* Webhook endpoints' secrets are sealed like every secret: the census
 * counts them, a re-seal pass moves them to the current key (the
 * endpoint's delivery progress untouched), and they open with the new key
 * alone afterwards. */
typedef struct {
  int n;
  char secret[64], old_secret[64];
  uint64_t cursor;
  bool has_prog;
} wh_seen_t;

static int on_webhook(void *arg, const wh_rec_t *r, const wh_prog_t *prog)
{
  wh_seen_t *w = arg;
  w->n++;
  snprintf(w->secret, sizeof w->secret, "%s", r->secret);
  snprintf(w->old_secret, sizeof w->old_secret, "%s", r->old_secret ? r->old_secret : "");
  w->has_prog = prog != NULL;
  w->cursor = prog ? prog->cursor : 0;
  return 0;
}

static void test_reseal_webhooks(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  put_conn(s, "c1", "t", CONN_ACTIVE, &r);
  wh_rec_t w = {0};
  w.name = xstrdup("ops");
  w.url = xstrdup("https://hooks.example/grantd");
  strlist_push(&w.events, "connection.*");
  w.secret = xstrdup("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  w.old_secret = xstrdup("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
  w.old_until = 4102444800000;
  wh_prog_t prog = {.cursor = 41};
  assert_int_equal(store_webhook_put(s, &w, &prog, on_done, &r), 0);
  drain(s);
  store_census_t c;
  assert_int_equal(store_seal_census(s, &c), 0);
  assert_int_equal(c.sealed, 2);
  assert_int_equal(store_census_count(&c, 1), 2);
  close_store(s);

  seal_keyring_t *rot = ring(2, key2);
  seal_keyring_add(rot, 1, key1);
  s = open_with(rot, 0, 0);
  assert_int_equal(store_seal_census(s, &c), 0);
  assert_int_equal(c.old, 2);
  store_reseal_t rs = STORE_RESEAL_INIT;
  int rc;
  while ((rc = store_reseal_step(s, &rs, 1)) == 0)
    drain(s);
  assert_int_equal(rc, 1);
  drain(s);
  assert_int_equal(rs.resealed, 2); /* the connection and the endpoint */
  assert_int_equal(rs.unreadable, 0);
  store_reseal_reset(&rs);
  assert_int_equal(store_seal_census(s, &c), 0);
  assert_int_equal(c.old, 0);
  assert_int_equal(store_census_count(&c, 2), 2);
  close_store(s);

  seal_keyring_t *only2 = ring(2, key2);
  s = open_with(only2, 0, 0);
  wh_seen_t seen = {0};
  assert_int_equal(store_webhook_scan(s, on_webhook, NULL, &seen), 0);
  assert_int_equal(seen.n, 1);
  assert_string_equal(seen.secret, w.secret);
  assert_string_equal(seen.old_secret, w.old_secret);
  assert_true(seen.has_prog);
  assert_int_equal(seen.cursor, 41);
  close_store(s);
  wh_rec_free(&w);
  seal_keyring_free(only2);
  seal_keyring_free(rot);
}

/* A keyring swapped on a running store: a different key under a known id
 * is refused and nothing changes; an accepted one seals new writes and
 * records a check value for its new id (the store then opens with that
 * key alone). */
static void test_set_keyring(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  put_conn(s, "c1", "t", CONN_ACTIVE, &r);
  drain(s);
  seal_keyring_t *wrong = ring(2, key2);
  seal_keyring_add(wrong, 1, key2);
  assert_int_equal(store_set_keyring(s, wrong), GRANTD_ESTORE_WRONG_KEY);
  seal_keyring_t *empty = seal_keyring_new();
  assert_int_equal(store_set_keyring(s, empty), GRANTD_EINVALID);
  seal_keyring_free(empty);
  put_conn(s, "c2", "t", CONN_ACTIVE, &r); /* still key 1 */
  seal_keyring_t *rot = ring(2, key2);
  seal_keyring_add(rot, 1, key1);
  assert_int_equal(store_set_keyring(s, rot), 0);
  put_conn(s, "c3", "t", CONN_ACTIVE, &r);
  drain(s);
  store_census_t c;
  assert_int_equal(store_seal_census(s, &c), 0);
  assert_int_equal(store_census_count(&c, 1), 2);
  assert_int_equal(store_census_count(&c, 2), 1);
  store_reseal_t rs = STORE_RESEAL_INIT;
  while (store_reseal_step(s, &rs, 0) == 0)
    ;
  store_reseal_reset(&rs);
  drain(s);
  close_store(s);
  seal_keyring_t *only2 = ring(2, key2);
  s = open_with(only2, 0, 0);
  conn_t cc;
  assert_int_equal(store_conn_get(s, "c1", &cc), 0);
  conn_free(&cc);
  close_store(s);
  seal_keyring_free(only2);
  seal_keyring_free(rot);
  seal_keyring_free(wrong);
}

static void test_open_errors(void **state)
{
  (void)state;
  store_t *s = NULL;
  assert_int_equal(store_open(&s, NULL), GRANTD_EINVALID);
  seal_keyring_t *empty = seal_keyring_new();
  store_opts_t o = {.loop = &loop, .path = dir, .keyring = empty};
  assert_int_equal(store_open(&s, &o), GRANTD_EINVALID);
  seal_keyring_free(empty);
  /* The data directory cannot be created under a regular file. */
  char path[512];
  snprintf(path, sizeof(path), "%s/file", dir);
  FILE *f = fopen(path, "w");
  fclose(f);
  snprintf(path, sizeof(path), "%s/file/sub", dir);
  store_opts_t o2 = {.loop = &loop, .path = path, .keyring = kr};
  assert_int_equal(store_open(&s, &o2), GRANTD_ESTORE_IO);
  /* A path that exists but is a file is not an LMDB directory. */
  snprintf(path, sizeof(path), "%s/file", dir);
  store_opts_t o3 = {.loop = &loop, .path = path, .keyring = kr};
  assert_int_equal(store_open(&s, &o3), GRANTD_ESTORE_IO);
  /* A newer schema version is refused. */
  s = open_store();
  close_store(s);
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi meta;
  assert_int_equal(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 8);
  assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  MDB_val k = {6, "schema"}, v = {4, "\0\0\0\x09"};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
  open_with(kr, 0, GRANTD_ESTORE_VERSION);
}

static void test_write_errors(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  conn_t c;
  memset(&c, 0, sizeof(c));
  assert_int_equal(store_conn_put(s, &c, on_done, &r), GRANTD_EINVALID);
  char big[600];
  memset(big, 'k', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  make_conn(&c, big, "t", CONN_ACTIVE);
  assert_int_equal(store_conn_put(s, &c, on_done, &r), GRANTD_EINVALID);
  conn_free(&c);
  char mid[400];
  memset(mid, 'k', sizeof(mid) - 1);
  mid[sizeof(mid) - 1] = 0;
  make_conn(&c, mid, mid, CONN_ACTIVE); /* index key too long */
  assert_int_equal(store_conn_put(s, &c, on_done, &r), GRANTD_EINVALID);
  conn_free(&c);
  assert_int_equal(store_conn_delete(s, "", on_done, &r), GRANTD_EINVALID);
  assert_int_equal(store_provider_delete(s, NULL, on_done, &r), GRANTD_EINVALID);
  provider_t p = {0};
  assert_int_equal(store_provider_put(s, &p, on_done, &r), GRANTD_EINVALID);
  assert_int_equal(r.calls, 0);

  /* Writes queued before close are committed; later ones are refused. */
  for (int i = 0; i < 5; i++) {
    char id[8];
    snprintf(id, sizeof(id), "q%d", i);
    put_conn(s, id, "t", CONN_ACTIVE, &r);
  }
  int done = 0;
  store_close(s, on_closed, &done);
  make_conn(&c, "late", "t", CONN_ACTIVE);
  assert_int_equal(store_conn_put(s, &c, on_done, &r), GRANTD_ESHUTDOWN);
  conn_free(&c);
  assert_int_equal(store_flush(s, on_done, &r), GRANTD_ESHUTDOWN);
  while (!done)
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(r.calls, 5);
  assert_int_equal(r.fails, 0);
  s = open_store();
  assert_int_equal(store_conn_get(s, "q4", &c), 0);
  conn_free(&c);
  assert_int_equal(store_conn_get(s, "late", &c), GRANTD_ENOT_FOUND);
  close_store(s);
}

typedef struct {
  store_t *s;
  int closed;
  int calls;
  res_t *later; /* when set, the first callback queues a write before closing */
} closer_t;

static void put_conn(store_t *s, const char *id, const char *tenant, conn_status_t st, res_t *r);

static void close_from_cb(void *arg, int status)
{
  closer_t *c = arg;
  assert_int_equal(status, 0);
  if (c->calls++ == 0) {
    if (c->later)
      put_conn(c->s, "later", "t", CONN_ACTIVE, c->later);
    store_close(c->s, on_closed, &c->closed);
  }
}

static void test_close_from_callback(void **state)
{
  (void)state;
  store_t *s = open_store();
  closer_t c = {s, 0, 0, NULL};
  res_t r = {0};
  /* Two ops in the batch: the first callback closes, the second still runs. */
  assert_int_equal(store_flush(s, close_from_cb, &c), 0);
  assert_int_equal(store_flush(s, close_from_cb, &c), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(c.calls, 2);
  assert_int_equal(c.closed, 1);
  /* Closing from a callback that has just queued a write: that write forms
   * one more batch, committed before the store closes. */
  s = open_store();
  c = (closer_t){s, 0, 0, &r};
  assert_int_equal(store_flush(s, close_from_cb, &c), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(c.closed, 1);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 0);
  s = open_store();
  conn_t got;
  assert_int_equal(store_conn_get(s, "later", &got), 0);
  conn_free(&got);
  close_store(s);
}

/* ---- states ---- */

typedef struct {
  int calls, status;
  char verifier[64];
} consume_t;

static void on_consumed(void *arg, int status, const state_rec_t *rec)
{
  consume_t *c = arg;
  c->calls++;
  c->status = status;
  if (rec)
    snprintf(c->verifier, sizeof(c->verifier), "%s", rec->code_verifier);
}

static void test_consume_state(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  state_rec_t st = {0};
  st.state = xstrdup("s1");
  st.conn_id = xstrdup("c1");
  st.code_verifier = xstrdup("pkce-verifier");
  assert_int_equal(store_state_put(s, &st, on_done, &r), 0);
  state_rec_free(&st);
  drain(s);

  consume_t c1 = {0}, c2 = {0};
  assert_int_equal(store_state_consume(s, "s1", on_consumed, &c1), 0);
  /* Single use, even before the deletion is committed. */
  assert_int_equal(store_state_consume(s, "s1", on_consumed, &c2), GRANTD_ENOT_FOUND);
  assert_int_equal(store_state_get(s, "s1", &st), GRANTD_ENOT_FOUND);
  assert_int_equal(c1.calls, 0);
  drain(s);
  assert_int_equal(c1.calls, 1);
  assert_int_equal(c1.status, 0);
  assert_string_equal(c1.verifier, "pkce-verifier");
  assert_int_equal(c2.calls, 0);
  assert_int_equal(store_state_consume(s, "s1", on_consumed, &c2), GRANTD_ENOT_FOUND);
  assert_int_equal(store_state_consume(s, "unknown", on_consumed, &c2), GRANTD_ENOT_FOUND);
  /* A state put and consumed in the same batch. */
  st.state = xstrdup("s2");
  st.conn_id = xstrdup("c2");
  assert_int_equal(store_state_put(s, &st, on_done, &r), 0);
  state_rec_free(&st);
  consume_t c3 = {0};
  assert_int_equal(store_state_consume(s, "s2", on_consumed, &c3), 0);
  drain(s);
  assert_int_equal(c3.status, 0);
  buf_t b = BUF_INIT;
  assert_int_equal(store_committed_get(s, "states", "s2", 2, &b), GRANTD_ENOT_FOUND);
  close_store(s);
  s = open_store();
  assert_int_equal(store_state_get(s, "s1", &st), GRANTD_ENOT_FOUND);
  close_store(s);
}

/* ---- scans ---- */

typedef struct {
  int good, bad, sched;
  int last_bad_err;
  char bad_key[32];
  int stop_after;
} scan_t;

static int on_conn(void *arg, const conn_t *c)
{
  scan_t *sc = arg;
  assert_non_null(c->access_token);
  sc->good++;
  return sc->stop_after && sc->good == sc->stop_after ? 42 : 0;
}

static int on_sched(void *arg, const conn_sched_t *c)
{
  scan_t *sc = arg;
  assert_true(c->id.n > 0);
  assert_true(c->tenant.n > 0);
  assert_int_equal(c->expires_at, 1700000000000);
  sc->sched++;
  return 0;
}

static int on_provider(void *arg, const provider_t *p)
{
  scan_t *sc = arg;
  assert_non_null(p->name);
  sc->good++;
  return 0;
}

static void on_bad(void *arg, const char *db, const char *key, size_t keylen, int err)
{
  scan_t *sc = arg;
  assert_string_equal(db, "connections");
  sc->bad++;
  sc->last_bad_err = err;
  snprintf(sc->bad_key, sizeof(sc->bad_key), "%.*s", (int)keylen, key);
}

static void test_scans(void **state)
{
  (void)state;
  store_t *s = open_store();
  res_t r = {0};
  for (int i = 0; i < 20; i++) {
    char id[16];
    snprintf(id, sizeof(id), "c%02d", i);
    put_conn(s, id, "t", CONN_ACTIVE, &r);
  }
  provider_t p = {0};
  p.name = xstrdup("acme");
  store_provider_put(s, &p, on_done, &r);
  provider_free(&p);
  drain(s);
  /* A pending record is part of the scan too. */
  put_conn(s, "c99", "t", CONN_ACTIVE, &r);
  scan_t sc = {0};
  assert_int_equal(store_conn_scan(s, on_conn, on_bad, &sc), 0);
  assert_int_equal(sc.good, 21);
  assert_int_equal(store_conn_scan_sched(s, on_sched, on_bad, &sc), 0);
  assert_int_equal(sc.sched, 21);
  assert_int_equal(store_provider_scan(s, on_provider, on_bad, &sc), 0);
  assert_int_equal(sc.good, 22);
  scan_t stop = {0};
  stop.stop_after = 5;
  assert_int_equal(store_conn_scan(s, on_conn, NULL, &stop), 42);
  assert_int_equal(stop.good, 5);
  drain(s);
  close_store(s);

  /* Corrupt one record behind the store's back. */
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  assert_int_equal(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 8);
  assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "connections", 0, &dbi), 0);
  MDB_val k = {3, "c07"}, v = {3, "\x93\x01\xc1"};
  assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  s = open_store();
  memset(&sc, 0, sizeof(sc));
  assert_int_equal(store_conn_scan(s, on_conn, on_bad, &sc), 0);
  assert_int_equal(sc.good, 20);
  assert_int_equal(sc.bad, 1);
  assert_int_equal(sc.last_bad_err, GRANTD_ESTORE_DECODE);
  assert_string_equal(sc.bad_key, "c07");
  assert_int_equal(store_conn_scan_sched(s, on_sched, on_bad, &sc), 0);
  assert_int_equal(sc.sched, 20);
  assert_int_equal(sc.bad, 2);
  conn_t c;
  assert_int_equal(store_conn_get(s, "c07", &c), GRANTD_ESTORE_DECODE);
  char ids[32][16];
  assert_int_equal(list_all(s, NULL, -1, 7, ids), 20); /* left out, counted */
  store_stats_t st;
  store_stats(s, &st);
  assert_true(st.decode_errors >= 4);
  close_store(s);

  /* A record sealed with a key the keyring lacks: the full scan reports
   * it, the scheduling scan (no unsealing) still sees it. */
  seal_keyring_t *k2 = ring(2, key2);
  seal_keyring_add(k2, 1, key1);
  s = open_with(k2, 0, 0);
  put_conn(s, "sealed-with-2", "t", CONN_ACTIVE, &r);
  drain(s);
  close_store(s);
  seal_keyring_free(k2);
  s = open_store();
  memset(&sc, 0, sizeof(sc));
  assert_int_equal(store_conn_scan(s, on_conn, on_bad, &sc), 0);
  assert_int_equal(sc.bad, 2);
  assert_int_equal(sc.last_bad_err, GRANTD_ESTORE_KEY);
  assert_string_equal(sc.bad_key, "sealed-with-2");
  assert_int_equal(store_conn_scan_sched(s, on_sched, NULL, &sc), 0);
  assert_int_equal(sc.sched, 21);
  close_store(s);
}

/* A full disk is reported as such (not as an I/O error): its own code,
 * named storage_full like a full map but saying the disk is full, and the
 * log names the errno. */
static void test_disk_full_errors(void **state)
{
  (void)state;
  char path[] = "/tmp/grantd-test-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  int prev = log_set_fd(fd);
  assert_int_equal(store__mdb_err(ENOSPC, "commit"), GRANTD_EDISK_FULL);
  assert_int_equal(store__mdb_err(EDQUOT, "commit"), GRANTD_EDISK_FULL);
  assert_int_equal(store__mdb_err(MDB_MAP_FULL, "commit"), GRANTD_EMAP_FULL);
  assert_int_equal(store__mdb_err(EIO, "commit"), GRANTD_ESTORE_IO);
  log_set_fd(prev);
  char text[4096];
  ssize_t n = pread(fd, text, sizeof text - 1, 0);
  close(fd);
  assert_true(n > 0);
  text[n] = '\0';
  assert_non_null(strstr(text, "\"errno\":\"ENOSPC\""));
  assert_non_null(strstr(text, "\"errno\":\"EDQUOT\""));
  assert_non_null(strstr(text, "\"errno\":\"EIO\""));
  assert_non_null(strstr(text, "store_disk_full"));
  assert_string_equal(err_name(GRANTD_EDISK_FULL), "storage_full");
  assert_string_equal(err_name(GRANTD_EMAP_FULL), "storage_full");
  assert_non_null(strstr(err_str(GRANTD_EDISK_FULL), "disk"));
  assert_non_null(strstr(err_str(GRANTD_EMAP_FULL), "map"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_crud_reopen, setup, teardown),
    cmocka_unit_test_setup_teardown(test_listing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_by_tenant, setup, teardown),
    cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_flush_and_overlay, setup, teardown),
    cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
    cmocka_unit_test_setup_teardown(test_master_key_check, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reseal, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reseal_webhooks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_set_keyring, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_close_from_callback, setup, teardown),
    cmocka_unit_test_setup_teardown(test_consume_state, setup, teardown),
    cmocka_unit_test_setup_teardown(test_scans, setup, teardown),
    cmocka_unit_test_setup_teardown(test_conn_replace, setup, teardown),
    cmocka_unit_test(test_disk_full_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
