/*
 * store_reseal.c - which sealing keys the records use (census) and the
 * bounded steps of the re-seal job; see store.h.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "store/store_int.h"
#include "store/store_ro.h"

static const int pass_dbs[] = {DB_PROVIDERS, DB_CONNECTIONS, DB_STATES, DB_WEBHOOKS};
#define NPASS ((int)ARRAY_SIZE(pass_dbs))

uint64_t store_census_count(const store_census_t *c, uint32_t id)
{
  for (size_t i = 0; i < c->n; i++)
    if (c->id[i] == id)
      return c->records[i];
  return 0;
}

static void census_add_id(store_census_t *c, uint32_t id)
{
  for (size_t i = 0; i < c->n; i++) {
    if (c->id[i] == id) {
      c->records[i]++;
      return;
    }
  }
  if (c->n < STORE_CENSUS_MAX_IDS) {
    c->id[c->n] = id;
    c->records[c->n++] = 1;
  }
}

/* Whether a record value uses a key other than cur. */
static bool uses_old(int db, const void *val, size_t vlen, uint32_t cur)
{
  uint32_t ids[16];
  int n = store_ro_seal_ids(store__db_names[db], val, vlen, ids, 16);
  for (int i = 0; i < n && i < 16; i++)
    if (ids[i] != cur)
      return true;
  return false;
}

/* Counts one record value; returns whether it uses a key other than cur. */
static bool census_add(store_census_t *c, int db, const void *val, size_t vlen, uint32_t cur)
{
  uint32_t ids[16];
  int n = store_ro_seal_ids(store__db_names[db], val, vlen, ids, 16);
  if (n > 16)
    n = 16;
  if (n <= 0)
    return false;
  bool old = false;
  c->sealed++;
  for (int i = 0; i < n; i++) {
    bool repeat = false;
    for (int j = 0; j < i; j++)
      repeat |= ids[j] == ids[i];
    if (repeat)
      continue;
    census_add_id(c, ids[i]);
    old |= ids[i] != cur;
  }
  if (old)
    c->old++;
  return old;
}

int store_seal_census(store_t *s, store_census_t *out)
{
  memset(out, 0, sizeof *out);
  uint32_t cur = 0;
  seal_keyring_current(s->kr, &cur);
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    return store__mdb_err(rc, "census_txn");
  for (int d = 0; d < NPASS && rc == 0; d++) {
    MDB_cursor *cu;
    if ((rc = mdb_cursor_open(txn, s->dbi[pass_dbs[d]], &cu)) != 0)
      break;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cu, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cu, &k, &v, MDB_NEXT))
      census_add(out, pass_dbs[d], v.mv_data, v.mv_size, cur);
    mdb_cursor_close(cu);
    if (rc == MDB_NOTFOUND)
      rc = 0;
  }
  mdb_txn_abort(txn);
  return rc == 0 ? 0 : store__mdb_err(rc, "census_scan");
}

void store_reseal_reset(store_reseal_t *r)
{
  free(r->cursor);
  memset(r, 0, sizeof *r);
}

/* A record decoded for re-sealing, put once the read txn is over. */
typedef struct {
  int db;
  provider_t p;
  conn_t c;
  state_rec_t st;
  wh_rec_t wh;
} redo_t;

static int decode(store_t *s, int db, const MDB_val *k, const MDB_val *v, redo_t *r)
{
  memset(r, 0, sizeof *r);
  r->db = db;
  if (db == DB_PROVIDERS)
    return provider_decode(v->mv_data, v->mv_size, k->mv_data, k->mv_size, s->kr, &r->p);
  if (db == DB_CONNECTIONS)
    return conn_decode(v->mv_data, v->mv_size, k->mv_data, k->mv_size, s->kr, &r->c);
  if (db == DB_WEBHOOKS)
    return wh_rec_decode(v->mv_data, v->mv_size, k->mv_data, k->mv_size, s->kr, &r->wh);
  return state_rec_decode(v->mv_data, v->mv_size, k->mv_data, k->mv_size, s->kr, &r->st);
}

static int put(store_t *s, redo_t *r)
{
  int rc;
  if (r->db == DB_PROVIDERS) {
    rc = store_provider_put(s, &r->p, NULL, NULL);
    provider_free(&r->p);
  } else if (r->db == DB_CONNECTIONS) {
    rc = store_conn_put(s, &r->c, NULL, NULL);
    conn_free(&r->c);
  } else if (r->db == DB_WEBHOOKS) {
    rc = store_webhook_put(s, &r->wh, NULL, NULL, NULL); /* the record only */
    wh_rec_free(&r->wh);
  } else {
    rc = store_state_put(s, &r->st, NULL, NULL);
    state_rec_free(&r->st);
  }
  return rc;
}

int store_reseal_step(store_t *s, store_reseal_t *r, size_t max)
{
  if (r->db >= NPASS)
    return 1;
  if (s->closing)
    return GRANTD_ESHUTDOWN;
  max = max ? max : 64;
  uint32_t cur = 0;
  seal_keyring_current(s->kr, &cur);
  redo_t *redo = xcalloc(max, sizeof *redo);
  size_t nredo = 0, seen = 0;
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0) {
    free(redo);
    return store__mdb_err(rc, "reseal_txn");
  }
  while (r->db < NPASS && seen < max && rc == 0) {
    int db = pass_dbs[r->db];
    MDB_cursor *cu;
    if ((rc = mdb_cursor_open(txn, s->dbi[db], &cu)) != 0)
      break;
    MDB_val k, v;
    if (r->cursor != NULL) {
      k.mv_size = r->cursor_len;
      k.mv_data = r->cursor;
      rc = mdb_cursor_get(cu, &k, &v, MDB_SET_RANGE);
      if (rc == 0 && k.mv_size == r->cursor_len && !memcmp(k.mv_data, r->cursor, k.mv_size))
        rc = mdb_cursor_get(cu, &k, &v, MDB_NEXT);
    } else {
      rc = mdb_cursor_get(cu, &k, &v, MDB_FIRST);
    }
    for (; rc == 0 && seen < max; seen++) {
      free(r->cursor);
      r->cursor = xmemdup(k.mv_data, k.mv_size);
      r->cursor_len = k.mv_size;
      ov_entry_t *e = store__ov_find(s, db, k.mv_data, k.mv_size);
      if (e != NULL) {
        /* A pending write wins: sealed with the current key already, or a
         * deletion. Until it commits the committed value is what counts
         * (its commit may fail), so an old one is counted as old and the
         * record deferred to the next pass. */
        if (uses_old(db, v.mv_data, v.mv_size, cur)) {
          census_add(&r->pass, db, v.mv_data, v.mv_size, cur);
          r->deferred++;
        } else if (!e->tomb) {
          census_add(&r->pass, db, e->op->val.data, e->op->val.len, cur);
        }
      } else if (!uses_old(db, v.mv_data, v.mv_size, cur)) {
        census_add(&r->pass, db, v.mv_data, v.mv_size, cur);
      } else {
        int drc = decode(s, db, &k, &v, &redo[nredo]);
        if (drc == 0) {
          nredo++;
          r->pass.sealed++; /* as it will be once re-sealed */
          census_add_id(&r->pass, cur);
        } else {
          census_add(&r->pass, db, v.mv_data, v.mv_size, cur);
          r->unreadable++;
          store__report_bad(s, db, k.mv_data, k.mv_size, drc);
        }
      }
      if (seen + 1 < max)
        rc = mdb_cursor_get(cu, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cu);
    if (rc == MDB_NOTFOUND) {
      rc = 0;
      free(r->cursor);
      r->cursor = NULL;
      r->cursor_len = 0;
      r->db++;
    }
  }
  mdb_txn_abort(txn);
  /* Puts are queued only now, after the txn: the values were decoded
   * from its pages. */
  int prc = 0;
  for (size_t i = 0; i < nredo; i++) {
    int q = put(s, &redo[i]); /* frees the record either way */
    if (q == 0)
      r->resealed++;
    else if (prc == 0)
      prc = q;
  }
  free(redo);
  if (rc != 0)
    return store__mdb_err(rc, "reseal_scan");
  if (prc == GRANTD_ESHUTDOWN)
    return prc;
  return r->db >= NPASS ? 1 : 0;
}
