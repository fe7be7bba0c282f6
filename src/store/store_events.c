/*
 * store_events.c - the store's side of the connection events (store.h,
 * "connection events"; value layout in outbox.h): numbering and writing
 * the events of a connection op inside the batch's write txn, trimming to
 * the retention, and reading committed events back on the loop.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "store/store_int.h"
#include "store/webhook.h"

void store_set_events(store_t *s, store_ev_data_fn data, store_ev_committed_fn committed, void *arg)
{
  s->ev_data = data;
  s->ev_committed = committed;
  s->ev_arg = arg;
}

void store_events_bounds(const store_t *s, uint64_t *first, uint64_t *last)
{
  *first = s->ev_first;
  *last = s->ev_last;
}

uint64_t store_events_trimmed(const store_t *s)
{
  return s->ev_trimmed;
}

int store__ev_load(store_t *s, MDB_txn *txn)
{
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, s->dbi[DB_EVENTS], &cur);
  if (rc != 0)
    return rc;
  MDB_val k, v;
  s->ev_first = s->ev_last = 0;
  if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 8) {
    s->ev_first = outbox_key_seq(k.mv_data);
    if ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) == 0 && k.mv_size == 8)
      s->ev_last = outbox_key_seq(k.mv_data);
  }
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Status of the record op replaces, read inside the write txn. */
static int w_prev(store_t *s, MDB_txn *txn, const store_op_t *op, bool *existed, conn_status_t *st)
{
  MDB_val k = {op->keylen, op->key}, v;
  *existed = false;
  *st = CONN_PENDING;
  int rc = mdb_get(txn, s->dbi[DB_CONNECTIONS], &k, &v);
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc != 0)
    return rc;
  conn_sched_t cs;
  *existed = true;
  if (conn_decode_sched(v.mv_data, v.mv_size, op->key, op->keylen, &cs) == 0)
    *st = cs.status;
  return 0;
}

int store__ev_apply(store_t *s, MDB_txn *txn, const store_op_t *op)
{
  if (!op->ev_on)
    return 0;
  bool existed;
  conn_status_t prev;
  int rc = w_prev(s, txn, op, &existed, &prev);
  if (rc != 0)
    return rc;
  outbox_type_t types[OUTBOX_MAX_PER_CHANGE];
  size_t n;
  uint8_t status;
  if (op->kind == OP_CONN_PUT) {
    n = outbox_put_events(existed, prev, op->ev_next, op->ev_grant, op->ev_flags, types);
    status = (uint8_t)op->ev_next;
  } else {
    n = outbox_delete_events(existed, prev, op->ev_flags, types);
    status = OUTBOX_STATUS_DELETED;
  }
  uint8_t before = existed ? (uint8_t)prev : OUTBOX_STATUS_NONE;
  for (size_t i = 0; i < n; i++) {
    /* A revoked-then-deleted pair: the deleted event follows revoked. */
    uint8_t st = types[i] == OUTBOX_REVOKED ? (uint8_t)CONN_REVOKED : status;
    if (types[i] == OUTBOX_CREATED)
      st = (uint8_t)CONN_PENDING;
    size_t len = OUTBOX_HDR + op->ev_data.len;
    uint8_t kb[8];
    outbox_key(kb, s->ev_batch_last + 1);
    MDB_val k = {8, kb}, v = {len, NULL};
    if ((rc = mdb_put(txn, s->dbi[DB_EVENTS], &k, &v, MDB_RESERVE | MDB_APPEND)) != 0)
      return rc;
    outbox_hdr_write(v.mv_data, types[i], st, before, s->batch_now_ms);
    if (op->ev_data.len)
      memcpy((uint8_t *)v.mv_data + OUTBOX_HDR, op->ev_data.data, op->ev_data.len);
    s->ev_batch_last++;
    s->ev_batch_n[types[i]]++;
    before = st;
  }
  return 0;
}

/* The lowest webhook endpoint cursor (webhook.h) committed or written in
 * this txn; UINT64_MAX without endpoints. */
static int min_cursor(store_t *s, MDB_txn *txn, uint64_t *floor)
{
  *floor = UINT64_MAX;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, s->dbi[DB_WH_PROGRESS], &cur);
  if (rc != 0)
    return rc;
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint64_t c;
    if (wh_prog_cursor(v.mv_data, v.mv_size, &c) == 0 && c < *floor)
      *floor = c;
  }
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

int store__ev_trim(store_t *s, MDB_txn *txn)
{
  uint64_t floor;
  int rc = min_cursor(s, txn, &floor);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  if ((rc = mdb_cursor_open(txn, s->dbi[DB_EVENTS], &cur)) != 0)
    return rc;
  MDB_val k, v;
  uint64_t first = 0;
  while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 8) {
    uint64_t seq = outbox_key_seq(k.mv_data);
    first = seq;
    if (seq >= s->ev_batch_last)
      break; /* the newest always stays: numbering goes on after a restart */
    uint64_t held = s->ev_batch_last - seq + 1;
    outbox_ev_t ev;
    bool old =
      outbox_decode(v.mv_data, v.mv_size, &ev) != 0 || ev.ts_ms + s->ev_keep_ms < s->batch_now_ms;
    bool undelivered = seq > floor;
    if (undelivered ? held <= s->ev_keep_max : (held <= s->ev_keep && !old))
      break;
    if ((rc = mdb_cursor_del(cur, 0)) != 0)
      break;
    if (undelivered)
      s->ev_batch_dropped++;
    else
      s->ev_batch_trimmed++;
    first = 0;
  }
  mdb_cursor_close(cur);
  if (rc == MDB_NOTFOUND)
    rc = 0;
  s->ev_batch_first = first;
  return rc;
}

int store_events_read(store_t *s, uint64_t after, size_t limit, store_event_t **out, size_t *n)
{
  *out = NULL;
  *n = 0;
  if (limit == 0)
    limit = 100;
  MDB_txn *txn;
  int rc = store__rtxn_begin(s, &txn);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  if ((rc = mdb_cursor_open(txn, s->dbi[DB_EVENTS], &cur)) != 0) {
    store__rtxn_end(s);
    return store__mdb_err(rc, "events");
  }
  uint8_t kb[8];
  outbox_key(kb, after + 1);
  MDB_val k = {8, kb}, v;
  size_t cap = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && *n < limit;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    outbox_ev_t ev;
    if (k.mv_size != 8 || outbox_decode(v.mv_data, v.mv_size, &ev) != 0) {
      store__report_bad(s, DB_EVENTS, k.mv_data, k.mv_size, GRANTD_ESTORE_DECODE);
      continue;
    }
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      *out = xrealloc(*out, cap * sizeof **out);
    }
    store_event_t *e = &(*out)[(*n)++];
    e->seq = outbox_key_seq(k.mv_data);
    e->type = ev.type;
    e->status = ev.status;
    e->prev = ev.prev;
    e->ts_ms = ev.ts_ms;
    e->data = xmalloc(ev.data_len + 1);
    memcpy(e->data, ev.data, ev.data_len);
    e->data[ev.data_len] = '\0';
    e->data_len = ev.data_len;
  }
  mdb_cursor_close(cur);
  store__rtxn_end(s);
  if (rc != 0 && rc != MDB_NOTFOUND) {
    store_events_free(*out, *n);
    *out = NULL;
    *n = 0;
    return store__mdb_err(rc, "events");
  }
  return 0;
}

void store_events_free(store_event_t *ev, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(ev[i].data);
  free(ev);
}
