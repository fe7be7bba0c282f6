/*
 * store.c - the LMDB environment, its check at open, and the read side of
 * the store: gets, listings and scans, all seeing pending writes through
 * the overlay (store_write.c); see store.h.
 *
 * Reads on the loop reuse one read-only txn handle (mdb_txn_renew /
 * mdb_txn_reset), which the environment allows because it is opened with
 * MDB_NOTLS (reader slots belong to txns, not threads). Scans and listings
 * that call back into user code use a txn of their own, so a callback may
 * itself call store_*_get().
 *
 * A listing or scan merges two sorted sequences: the LMDB cursor over the
 * key range, and the overlay entries of that range, sorted once per call.
 * An overlay entry replaces the LMDB record of the same key (tombstones hide
 * it); overlay keys LMDB lacks are emitted in their place in key order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "store/store_int.h"

const char *const store__db_names[DB_COUNT] = {
  RECORD_DB_PROVIDERS, RECORD_DB_CONNECTIONS, RECORD_DB_STATES, "by_tenant", "meta",
};

static const char check_plain[] = "grantd key check v1";

int store__mdb_err(int rc, const char *what)
{
  if (rc == 0)
    return 0;
  if (rc == MDB_NOTFOUND)
    return GRANTD_ENOT_FOUND;
  if (rc == MDB_MAP_FULL) {
    log_warn("store_map_full", "op", what);
    return GRANTD_EMAP_FULL;
  }
  log_error("store_error", "op", what, "error", mdb_strerror(rc), "#code", LOG_I64(rc));
  return GRANTD_ESTORE_IO;
}

void store__report_bad(store_t *s, int db, const char *key, size_t keylen, int err)
{
  s->st.decode_errors++;
  metrics_counter_inc("grantd_store_decode_errors_total", NULL);
  /* A state key is a live single-use secret: log only its first bytes. */
  size_t shown = db == DB_STATES && keylen > 6 ? 6 : keylen;
  char *k = xstrndup(key, shown);
  log_error("store_record_bad", "db", store__db_names[db], "key", k,
            "?key_truncated", shown < keylen, "error", err_name(err));
  free(k);
}

int store__rtxn_begin(store_t *s, MDB_txn **txn)
{
  int rc;
  if (s->rtxn == NULL)
    rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
  else
    rc = mdb_txn_renew(s->rtxn);
  if (rc != 0)
    return store__mdb_err(rc, "read_txn");
  s->rtxn_active = true;
  *txn = s->rtxn;
  return 0;
}

void store__rtxn_end(store_t *s)
{
  if (s->rtxn_active) {
    mdb_txn_reset(s->rtxn);
    s->rtxn_active = false;
  }
}

int store__lookup(store_t *s, MDB_txn *txn, int db, const char *key, size_t keylen,
                  const void **val, size_t *vlen)
{
  ov_entry_t *e = store__ov_find(s, db, key, keylen);
  if (e != NULL) {
    if (e->tomb)
      return GRANTD_ENOT_FOUND;
    if (db == DB_BY_TENANT) {
      *val = "";
      *vlen = 0;
    } else {
      *val = e->op->val.data;
      *vlen = e->op->val.len;
    }
    return 0;
  }
  MDB_val k = {keylen, (void *)key}, v;
  int rc = mdb_get(txn, s->dbi[db], &k, &v);
  if (rc != 0)
    return store__mdb_err(rc, "get");
  *val = v.mv_data;
  *vlen = v.mv_size;
  return 0;
}

/* ---- open / close ---- */

static void meta_key(uint32_t id, char out[8])
{
  memcpy(out, "key:", 4);
  out[4] = (char)(id >> 24);
  out[5] = (char)(id >> 16);
  out[6] = (char)(id >> 8);
  out[7] = (char)id;
}

/* Checks the schema version and every key's check value, adding what is
 * missing, in one write txn. */
static int check_meta(store_t *s, MDB_txn *txn)
{
  MDB_dbi meta = s->dbi[DB_META];
  MDB_val k = {6, "schema"}, v;
  int rc = mdb_get(txn, meta, &k, &v);
  if (rc == MDB_NOTFOUND) {
    uint8_t ver[4] = {0, 0, 0, STORE_SCHEMA_VERSION};
    v.mv_size = 4;
    v.mv_data = ver;
    if ((rc = mdb_put(txn, meta, &k, &v, 0)) != 0)
      return store__mdb_err(rc, "meta_put");
  } else if (rc != 0) {
    return store__mdb_err(rc, "meta_get");
  } else {
    const uint8_t *p = v.mv_data;
    if (v.mv_size != 4) {
      log_error("store_meta_corrupt", "what", "schema");
      return GRANTD_ESTORE_DECODE;
    }
    uint32_t ver = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (ver > STORE_SCHEMA_VERSION) {
      log_error("store_schema_newer", "#found", LOG_I64(ver), "#supported",
                LOG_I64(STORE_SCHEMA_VERSION));
      return GRANTD_ESTORE_VERSION;
    }
  }

  /* Which key ids has this store seen, and do we know any of them? */
  size_t known = 0, matched = 0;
  MDB_cursor *cur;
  if ((rc = mdb_cursor_open(txn, meta, &cur)) != 0)
    return store__mdb_err(rc, "meta_cursor");
  MDB_val ck = {4, "key:"}, cv;
  for (rc = mdb_cursor_get(cur, &ck, &cv, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cur, &ck, &cv, MDB_NEXT)) {
    if (ck.mv_size != 8 || memcmp(ck.mv_data, "key:", 4) != 0)
      break;
    const uint8_t *p = (const uint8_t *)ck.mv_data + 4;
    uint32_t id = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    known++;
    if (!seal_keyring_has(s->kr, id)) {
      log_warn("store_key_missing", "#key_id", LOG_I64(id), "detail",
               "records sealed with this key id cannot be opened");
      continue;
    }
    buf_t pt = BUF_INIT;
    int orc = seal_open(s->kr, "meta", ck.mv_data, 8, cv.mv_data, cv.mv_size, &pt);
    int same = orc == 0 && pt.len == sizeof(check_plain) - 1 &&
               memcmp(pt.data, check_plain, pt.len) == 0;
    buf_wipe_free(&pt);
    if (!same) {
      mdb_cursor_close(cur);
      log_error("store_wrong_master_key", "#key_id", LOG_I64(id), "detail",
                "the master key differs from the one this store was created with");
      return GRANTD_ESTORE_WRONG_KEY;
    }
    matched++;
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return store__mdb_err(rc, "meta_scan");
  if (known > 0 && matched == 0) {
    log_error("store_wrong_master_key", "detail", "none of the configured key ids sealed this store");
    return GRANTD_ESTORE_WRONG_KEY;
  }
  for (size_t i = 0; i < seal_keyring_count(s->kr); i++) {
    uint32_t id = seal_keyring_id_at(s->kr, i);
    char mk[8];
    meta_key(id, mk);
    MDB_val kk = {8, mk}, vv;
    if ((rc = mdb_get(txn, meta, &kk, &vv)) == 0)
      continue;
    if (rc != MDB_NOTFOUND)
      return store__mdb_err(rc, "meta_get");
    buf_t blob = BUF_INIT;
    seal_seal_with(s->kr, id, "meta", mk, 8, check_plain, sizeof(check_plain) - 1, &blob);
    vv.mv_size = blob.len;
    vv.mv_data = blob.data;
    rc = mdb_put(txn, meta, &kk, &vv, 0);
    buf_free(&blob);
    if (rc != 0)
      return store__mdb_err(rc, "meta_put");
  }
  return 0;
}

static void define_metrics(void)
{
  static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05, 0.1, 0.25, 0.5, 1, 2.5};
  metrics_help("grantd_store_commits_total", "LMDB write batches committed", METRIC_COUNTER);
  metrics_help("grantd_store_commit_failures_total", "LMDB write batches that failed",
               METRIC_COUNTER);
  metrics_help("grantd_store_ops_committed_total", "store writes committed", METRIC_COUNTER);
  metrics_help("grantd_store_decode_errors_total", "stored records that failed to decode",
               METRIC_COUNTER);
  metrics_help("grantd_store_last_batch_size", "writes in the last committed batch",
               METRIC_GAUGE);
  metrics_help("grantd_store_pending_ops", "writes queued for the next batch", METRIC_GAUGE);
  metrics_histogram_define("grantd_store_commit_seconds", "LMDB batch commit time (synced)",
                           bounds, ARRAY_SIZE(bounds));
}

int store_open(store_t **out, const store_opts_t *opts)
{
  uint32_t cur_id;
  if (opts == NULL || opts->loop == NULL || opts->path == NULL || opts->keyring == NULL ||
      seal_keyring_current(opts->keyring, &cur_id) != 0)
    return GRANTD_EINVALID;
  if (mkdir(opts->path, 0700) != 0 && errno != EEXIST) {
    log_error("store_mkdir_failed", "path", opts->path, "error", strerror(errno));
    return GRANTD_ESTORE_IO;
  }
  store_t *s = xcalloc(1, sizeof(*s));
  s->loop = opts->loop;
  s->kr = opts->keyring;
  s->map_size = opts->map_size ? opts->map_size : STORE_DEFAULT_MAP_SIZE;
  MDB_txn *txn = NULL;
  int rc = mdb_env_create(&s->env);
  if (rc != 0)
    goto fail_free;
  if ((rc = mdb_env_set_maxdbs(s->env, DB_COUNT)) != 0 ||
      (rc = mdb_env_set_mapsize(s->env, s->map_size)) != 0)
    goto fail_env;
  /* Synced commits (no MDB_NOSYNC); MDB_NOTLS for the reused read txn. */
  if ((rc = mdb_env_open(s->env, opts->path, MDB_NOTLS, 0600)) != 0)
    goto fail_env;
  int dead = 0;
  mdb_reader_check(s->env, &dead); /* clears slots of crashed processes */
  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
    goto fail_env;
  for (int i = 0; i < DB_COUNT; i++)
    if ((rc = mdb_dbi_open(txn, store__db_names[i], MDB_CREATE, &s->dbi[i])) != 0)
      goto fail_txn;
  int grc = check_meta(s, txn);
  if (grc != 0) {
    mdb_txn_abort(txn);
    mdb_env_close(s->env);
    free(s);
    return grc;
  }
  if ((rc = mdb_txn_commit(txn)) != 0)
    goto fail_env;
  if ((grc = uv_idle_init(s->loop, &s->kick)) != 0) {
    mdb_env_close(s->env);
    free(s);
    return grc;
  }
  s->kick.data = s;
  s->st.map_size = s->map_size;
  define_metrics();
  *out = s;
  return 0;

fail_txn:
  mdb_txn_abort(txn);
fail_env:
  mdb_env_close(s->env);
fail_free:
  free(s);
  log_error("store_open_failed", "path", opts->path, "error", mdb_strerror(rc));
  return rc == MDB_MAP_FULL ? GRANTD_EMAP_FULL : GRANTD_ESTORE_IO;
}

static void on_kick_closed(uv_handle_t *h)
{
  store_t *s = h->data;
  void (*cb)(void *) = s->close_cb;
  void *arg = s->close_arg;
  for (size_t i = 0; i < s->ov_nb; i++) {
    while (s->ov[i]) { /* empty by now; defensive */
      ov_entry_t *e = s->ov[i];
      s->ov[i] = e->next;
      free(e);
    }
  }
  free(s->ov);
  free(s);
  if (cb)
    cb(arg);
}

void store__finish_close(store_t *s)
{
  if (s->closed)
    return;
  s->closed = true;
  if (s->rtxn != NULL) {
    mdb_txn_abort(s->rtxn);
    s->rtxn = NULL;
  }
  if (s->env != NULL) {
    mdb_env_close(s->env);
    s->env = NULL;
  }
  uv_close((uv_handle_t *)&s->kick, on_kick_closed);
}

/* ---- gets ---- */

static int get_generic(store_t *s, int db, const char *key, void *out,
                       int (*dec)(const void *, size_t, const char *, size_t,
                                  const seal_keyring_t *, void *))
{
  if (key == NULL)
    return GRANTD_EINVALID;
  size_t kl = strlen(key);
  MDB_txn *txn;
  int rc = store__rtxn_begin(s, &txn);
  if (rc != 0)
    return rc;
  const void *v;
  size_t vn;
  rc = store__lookup(s, txn, db, key, kl, &v, &vn);
  if (rc == 0) {
    rc = dec(v, vn, key, kl, s->kr, out);
    if (rc != 0)
      store__report_bad(s, db, key, kl, rc);
  }
  store__rtxn_end(s);
  return rc;
}

static int dec_provider(const void *d, size_t n, const char *k, size_t kl,
                        const seal_keyring_t *kr, void *out)
{
  return provider_decode(d, n, k, kl, kr, out);
}

static int dec_conn(const void *d, size_t n, const char *k, size_t kl, const seal_keyring_t *kr,
                    void *out)
{
  return conn_decode(d, n, k, kl, kr, out);
}

static int dec_state(const void *d, size_t n, const char *k, size_t kl, const seal_keyring_t *kr,
                     void *out)
{
  return state_rec_decode(d, n, k, kl, kr, out);
}

int store_provider_get(store_t *s, const char *name, provider_t *out)
{
  memset(out, 0, sizeof(*out));
  return get_generic(s, DB_PROVIDERS, name, out, dec_provider);
}

int store_conn_get(store_t *s, const char *id, conn_t *out)
{
  memset(out, 0, sizeof(*out));
  return get_generic(s, DB_CONNECTIONS, id, out, dec_conn);
}

int store_state_get(store_t *s, const char *state, state_rec_t *out)
{
  memset(out, 0, sizeof(*out));
  return get_generic(s, DB_STATES, state, out, dec_state);
}

int store_committed_get(store_t *s, const char *db, const void *key, size_t keylen, buf_t *out)
{
  int i;
  for (i = 0; i < DB_COUNT; i++)
    if (strcmp(db, store__db_names[i]) == 0)
      break;
  if (i == DB_COUNT)
    return GRANTD_EINVALID;
  MDB_txn *txn;
  int rc = store__rtxn_begin(s, &txn);
  if (rc != 0)
    return rc;
  MDB_val k = {keylen, (void *)key}, v;
  rc = store__mdb_err(mdb_get(txn, s->dbi[i], &k, &v), "get");
  if (rc == 0)
    buf_append(out, v.mv_data, v.mv_size);
  store__rtxn_end(s);
  return rc;
}

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
  int mrc = start.len ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                      : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
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
    int c = !have_db ? 1 : !have_ov ? -1
                                    : store__keycmp(k.mv_data, k.mv_size, ov[oi]->key,
                                                    ov[oi]->keylen);
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
static int list_consider(list_ctx_t *lc, const char *id, size_t idlen, const void *val,
                         size_t vlen)
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

static int list_visit_conn(void *ctx, const char *key, size_t keylen, const void *val,
                           size_t vlen)
{
  return list_consider(ctx, key, keylen, val, vlen);
}

static int list_visit_index(void *ctx, const char *key, size_t keylen, const void *val,
                            size_t vlen)
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

int store_conn_list(store_t *s, const char *tenant, int status, const char *cursor,
                    size_t limit, conn_t **out, size_t *n, char **next)
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

/* ---- counters ---- */

void store_stats(store_t *s, store_stats_t *out)
{
  *out = s->st;
  out->pending = store_pending(s);
  MDB_envinfo info;
  MDB_stat est;
  if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &est) == 0)
    out->used_bytes = (size_t)(info.me_last_pgno + 1) * est.ms_psize;
  MDB_txn *txn;
  if (store__rtxn_begin(s, &txn) == 0) {
    MDB_stat st;
    if (mdb_stat(txn, s->dbi[DB_CONNECTIONS], &st) == 0)
      out->entries_connections = st.ms_entries;
    store__rtxn_end(s);
  }
}
