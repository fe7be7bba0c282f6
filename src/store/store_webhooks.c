/*
 * store_webhooks.c - the store's reads and writes of webhook endpoints and
 * their delivery progress (store.h, "webhook endpoints"; layouts in
 * webhook.h).
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "store/store_int.h"

int store_webhook_put(store_t *s, const wh_rec_t *r, const wh_prog_t *prog, store_cb cb, void *arg)
{
  if (s->closing)
    return GRANTD_ESHUTDOWN;
  if (r->name == NULL || r->name[0] == '\0' || strlen(r->name) > STORE_MAX_KEY)
    return GRANTD_EINVALID;
  buf_t v = BUF_INIT;
  int rc = wh_rec_encode(r, s->kr, &v);
  if (rc != 0) {
    buf_free(&v);
    return rc;
  }
  if (prog == NULL)
    return store__put_cb(s, DB_WEBHOOKS, r->name, &v, cb, arg);
  /* Two ops queued back to back join the same batch: nothing starts a
   * commit between them (commits start from a loop callback). */
  if ((rc = store__put_cb(s, DB_WEBHOOKS, r->name, &v, NULL, NULL)) != 0)
    return rc;
  return store_webhook_progress_put(s, r->name, prog, cb, arg);
}

int store_webhook_delete(store_t *s, const char *name, store_cb cb, void *arg)
{
  int rc = store__del_cb(s, DB_WH_PROGRESS, name, NULL, NULL);
  if (rc != 0)
    return rc;
  return store__del_cb(s, DB_WEBHOOKS, name, cb, arg);
}

int store_webhook_progress_put(store_t *s, const char *name, const wh_prog_t *prog, store_cb cb,
                               void *arg)
{
  buf_t v = BUF_INIT;
  wh_prog_encode(prog, &v);
  return store__put_cb(s, DB_WH_PROGRESS, name, &v, cb, arg);
}

uint64_t store_events_dropped(const store_t *s)
{
  return s->ev_dropped;
}

int store_webhook_scan(store_t *s, store_webhook_fn fn, store_bad_fn bad, void *arg)
{
  MDB_txn *txn;
  int rc = store__rtxn_begin(s, &txn);
  if (rc != 0)
    return rc;
  MDB_cursor *cur;
  if ((rc = mdb_cursor_open(txn, s->dbi[DB_WEBHOOKS], &cur)) != 0) {
    store__rtxn_end(s);
    return store__mdb_err(rc, "webhooks");
  }
  MDB_val k, v;
  int ret = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && ret == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    wh_rec_t r;
    int drc = wh_rec_decode(v.mv_data, v.mv_size, k.mv_data, k.mv_size, s->kr, &r);
    if (drc != 0) {
      store__report_bad(s, DB_WEBHOOKS, k.mv_data, k.mv_size, drc);
      if (bad)
        bad(arg, RECORD_DB_WEBHOOKS, k.mv_data, k.mv_size, drc);
      continue;
    }
    wh_prog_t p, *pp = NULL;
    MDB_val pv;
    if (mdb_get(txn, s->dbi[DB_WH_PROGRESS], &k, &pv) == 0) {
      if (wh_prog_decode(pv.mv_data, pv.mv_size, &p) == 0)
        pp = &p;
      else
        store__report_bad(s, DB_WH_PROGRESS, k.mv_data, k.mv_size, GRANTD_ESTORE_DECODE);
    }
    ret = fn(arg, &r, pp);
    wh_rec_free(&r);
    if (pp)
      wh_prog_free(pp);
  }
  mdb_cursor_close(cur);
  store__rtxn_end(s);
  if (ret != 0)
    return ret;
  if (rc != 0 && rc != MDB_NOTFOUND)
    return store__mdb_err(rc, "webhooks");
  return 0;
}
