/*
 * store_iter.c - the range reads of the store: connection listings (by id
 * or by tenant, with a cursor), the full scans of providers and
 * connections, and the bounded steps of the expired-state sweep, all
 * seeing pending writes through the overlay (store_write.c); see store.h.
 *
 * Scans and listings that call back into user code use a txn of their
 * own, so a callback may itself call store_*_get().
 *
 * A listing or scan merges two sorted sequences: the LMDB cursor over the
 * key range, and the overlay entries of that range, sorted once per call.
 * An overlay entry replaces the LMDB record of the same key (tombstones hide
 * it); overlay keys LMDB lacks are emitted in their place in key order.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "store/store_int.h"

/* ---- merged iteration ---- */

/* Called per visible record of the range; returns 0 to go on. */
typedef int (*visit_fn)(void *ctx, const char *key, size_t keylen, const void *val, size_t vlen);

/* Visits, in key order, every record of db whose key starts with prefix and
 * (when after != NULL) whose remainder sorts after `after`, pending writes
 * included. @return 0, the visitor's non-zero value, or GRANTD_ESTORE_IO. */
static int iter_merged(store_t *s, MDB_txn *txn, int db, const char *prefix, size_t plen,
                       const char *after, size_t alen, visit_fn fn, void *ctx)
{
  size_t nov = 0, oi = 0;
  ov_entry_t **ov = store__ov_range(s, db, prefix, plen, after, alen, &nov);
  MDB_cursor *cur = NULL;
  int rc = mdb_cursor_open(txn, s->dbi[db], &cur);
  if (rc != 0) {
    free(ov);
    return store__mdb_err(rc, "cursor");
  }
  /* Position at the first key >= prefix + after. */
  buf_t start = BUF_INIT;
  buf_append(&start, prefix, plen);
  if (after != NULL)
    buf_append(&start, after, alen);
  MDB_val k = {start.len, start.data}, v;
  int mrc =
    start.len ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  if (mrc == 0 && after != NULL && k.mv_size == start.len &&
      memcmp(k.mv_data, start.data, start.len) == 0)
    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  rc = 0;
  for (;;) {
    bool have_db = mrc == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0;
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
      rc = store__mdb_err(mrc, "cursor_get");
      break;
    }
    bool have_ov = oi < nov;
    if (!have_db && !have_ov)
      break;
    int c = !have_db   ? 1
            : !have_ov ? -1
                       : store__keycmp(k.mv_data, k.mv_size, ov[oi]->key, ov[oi]->keylen);
    if (c < 0) {
      rc = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
      mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    } else {
      ov_entry_t *e = ov[oi++];
      if (!e->tomb) {
        const store_op_t *op = e->op;
        rc = db == DB_BY_TENANT ? fn(ctx, e->key, e->keylen, "", 0)
                                : fn(ctx, e->key, e->keylen, op->val.data, op->val.len);
      }
      if (c == 0)
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0)
      break;
  }
  mdb_cursor_close(cur);
  buf_free(&start);
  free(ov);
  return rc;
}

/* ---- listing ---- */

typedef struct {
  store_t *s;
  MDB_txn *txn;
  const char *tenant;
  size_t tlen;
  int status;
  size_t limit;
  conn_t *out;
  size_t n;
  bool more;
} list_ctx_t;

/* One candidate connection: filter on the scheduling view (no AES), then
 * decode fully while the page has room; one match past the page means
 * there is a next page. */
static int list_consider(list_ctx_t *lc, const char *id, size_t idlen, const void *val, size_t vlen)
{
  conn_sched_t cs;
  int rc = conn_decode_sched(val, vlen, id, idlen, &cs);
  if (rc != 0) {
    store__report_bad(lc->s, DB_CONNECTIONS, id, idlen, rc);
    return 0;
  }
  if (lc->tenant != NULL &&
      (cs.tenant.p == NULL || cs.tenant.n != lc->tlen || memcmp(cs.tenant.p, lc->tenant, lc->tlen)))
    return 0; /* a stale index entry */
  if (lc->status >= 0 && (int)cs.status != lc->status)
    return 0;
  if (lc->n == lc->limit) {
    lc->more = true;
    return 1;
  }
  rc = conn_decode(val, vlen, id, idlen, lc->s->kr, &lc->out[lc->n]);
  if (rc != 0) {
    store__report_bad(lc->s, DB_CONNECTIONS, id, idlen, rc);
    return 0;
  }
  lc->n++;
  return 0;
}

static int list_visit_conn(void *ctx, const char *key, size_t keylen, const void *val, size_t vlen)
{
  return list_consider(ctx, key, keylen, val, vlen);
}

static int list_visit_index(void *ctx, const char *key, size_t keylen, const void *val, size_t vlen)
{
  (void)val;
  (void)vlen;
  list_ctx_t *lc = ctx;
  const char *id = key + lc->tlen + 1;
  size_t idlen = keylen - lc->tlen - 1;
  const void *cv = NULL;
  size_t cn = 0;
  int rc = store__lookup(lc->s, lc->txn, DB_CONNECTIONS, id, idlen, &cv, &cn);
  if (rc == GRANTD_ENOT_FOUND)
    return 0; /* index entry without its record: skip */
  if (rc != 0)
    return rc;
  return list_consider(lc, id, idlen, cv, cn);
}

int store_conn_list(store_t *s, const char *tenant, int status, const char *cursor, size_t limit,
                    conn_t **out, size_t *n, char **next)
{
  *out = NULL;
  *n = 0;
  *next = NULL;
  if (limit == 0)
    limit = 100;
  list_ctx_t lc = {s, NULL, tenant, tenant ? strlen(tenant) : 0, status, limit, NULL, 0, false};
  lc.out = xcalloc(limit, sizeof(conn_t));
  int rc = store__rtxn_begin(s, &lc.txn);
  if (rc != 0) {
    free(lc.out);
    return rc;
  }
  size_t clen = cursor ? strlen(cursor) : 0;
  if (tenant != NULL) {
    buf_t prefix = BUF_INIT;
    buf_append(&prefix, tenant, lc.tlen + 1); /* with the 0x00 separator */
    rc = iter_merged(s, lc.txn, DB_BY_TENANT, prefix.data, prefix.len, cursor, clen,
                     list_visit_index, &lc);
    buf_free(&prefix);
  } else {
    rc = iter_merged(s, lc.txn, DB_CONNECTIONS, "", 0, cursor, clen, list_visit_conn, &lc);
  }
  store__rtxn_end(s);
  if (rc < 0) {
    for (size_t i = 0; i < lc.n; i++)
      conn_free(&lc.out[i]);
    free(lc.out);
    return rc;
  }
  if (lc.n == 0) {
    free(lc.out);
    return 0;
  }
  *out = lc.out;
  *n = lc.n;
  if (lc.more)
    *next = xstrdup(lc.out[lc.n - 1].id);
  return 0;
}

/* ---- scans ---- */

typedef struct {
  store_t *s;
  int db;
  int mode; /* 0 provider, 1 conn, 2 sched */
  union {
    store_provider_fn provider;
    store_conn_fn conn;
    store_sched_fn sched;
  } fn;
  store_bad_fn bad;
  void *arg;
} scan_ctx_t;

static int scan_visit(void *ctx, const char *key, size_t keylen, const void *val, size_t vlen)
{
  scan_ctx_t *sc = ctx;
  int rc, ret = 0;
  if (sc->mode == 2) {
    conn_sched_t cs;
    rc = conn_decode_sched(val, vlen, key, keylen, &cs);
    if (rc == 0)
      ret = sc->fn.sched(sc->arg, &cs);
  } else if (sc->mode == 1) {
    conn_t c;
    rc = conn_decode(val, vlen, key, keylen, sc->s->kr, &c);
    if (rc == 0) {
      ret = sc->fn.conn(sc->arg, &c);
      conn_free(&c);
    }
  } else {
    provider_t p;
    rc = provider_decode(val, vlen, key, keylen, sc->s->kr, &p);
    if (rc == 0) {
      ret = sc->fn.provider(sc->arg, &p);
      provider_free(&p);
    }
  }
  if (rc != 0) {
    store__report_bad(sc->s, sc->db, key, keylen, rc);
    if (sc->bad)
      sc->bad(sc->arg, store__db_names[sc->db], key, keylen, rc);
  }
  return ret;
}

static int scan(store_t *s, scan_ctx_t *sc)
{
  /* A txn of its own: the callbacks may use the shared read txn. */
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    return store__mdb_err(rc, "scan_txn");
  rc = iter_merged(s, txn, sc->db, "", 0, NULL, 0, scan_visit, sc);
  mdb_txn_abort(txn);
  return rc;
}

int store_provider_scan(store_t *s, store_provider_fn fn, store_bad_fn bad, void *arg)
{
  scan_ctx_t sc = {s, DB_PROVIDERS, 0, {.provider = fn}, bad, arg};
  return scan(s, &sc);
}

int store_conn_scan(store_t *s, store_conn_fn fn, store_bad_fn bad, void *arg)
{
  scan_ctx_t sc = {s, DB_CONNECTIONS, 1, {.conn = fn}, bad, arg};
  return scan(s, &sc);
}

int store_conn_scan_sched(store_t *s, store_sched_fn fn, store_bad_fn bad, void *arg)
{
  scan_ctx_t sc = {s, DB_CONNECTIONS, 2, {.sched = fn}, bad, arg};
  return scan(s, &sc);
}

/* ---- the expired-state sweep ---- */

typedef struct {
  store_t *s;
  int64_t now;
  size_t max, seen;
  strlist_t expired; /* keys to delete once the iteration is over */
  char *last;        /* key of the last state looked at */
} sweep_ctx_t;

static int sweep_visit(void *ctx, const char *key, size_t keylen, const void *val, size_t vlen)
{
  sweep_ctx_t *w = ctx;
  if (w->seen == w->max)
    return 1; /* the step is full: what follows is for the next one */
  w->seen++;
  free(w->last);
  w->last = xstrndup(key, keylen);
  state_rec_t st;
  int rc = state_rec_decode(val, vlen, key, keylen, w->s->kr, &st);
  if (rc != 0) {
    store__report_bad(w->s, DB_STATES, key, keylen, rc);
    return 0;
  }
  if (st.expires_at <= w->now)
    strlist_push(&w->expired, w->last);
  state_rec_free(&st);
  return 0;
}

int store_state_sweep(store_t *s, int64_t now_ms, const char *cursor, size_t max, char **next,
                      size_t *examined, size_t *deleted)
{
  *next = NULL;
  *examined = *deleted = 0;
  sweep_ctx_t w = {.s = s, .now = now_ms, .max = max ? max : 256};
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    return store__mdb_err(rc, "sweep_txn");
  rc = iter_merged(s, txn, DB_STATES, "", 0, cursor, cursor ? strlen(cursor) : 0, sweep_visit, &w);
  mdb_txn_abort(txn);
  if (rc < 0) {
    strlist_free(&w.expired);
    free(w.last);
    return rc;
  }
  /* Deletions are queued only now: queueing writes changes the pending
   * state the iteration was walking. */
  for (size_t i = 0; i < w.expired.n; i++) {
    int drc = store_state_delete(s, w.expired.items[i], NULL, NULL);
    if (drc == GRANTD_ESHUTDOWN) {
      strlist_free(&w.expired);
      free(w.last);
      return drc;
    }
    if (drc == 0)
      (*deleted)++;
  }
  *examined = w.seen;
  /* rc 1: the step stopped at max, more may follow. */
  if (rc == 1)
    *next = w.last;
  else
    free(w.last);
  strlist_free(&w.expired);
  return 0;
}
