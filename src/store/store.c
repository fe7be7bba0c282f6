/*
 * store.c - the LMDB environment, its check at open, and single-record
 * reads (gets), which see pending writes through the overlay
 * (store_write.c); listings and scans are store_iter.c. See store.h.
 *
 * Reads on the loop reuse one read-only txn handle (mdb_txn_renew /
 * mdb_txn_reset), which the environment allows because it is opened with
 * MDB_NOTLS (reader slots belong to txns, not threads).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "store/store_int.h"

const char *const store__db_names[DB_COUNT] = {
  RECORD_DB_PROVIDERS, RECORD_DB_CONNECTIONS, RECORD_DB_STATES, "by_tenant", "meta", "events",
  RECORD_DB_WEBHOOKS,  RECORD_DB_WH_PROGRESS,
};

static const char check_plain[] = STORE_KEY_CHECK_PLAIN;

/* "ENOSPC", "EIO" ... for a positive errno value; LMDB's own codes by
 * their MDB_ name family. */
static const char *errno_name(int rc)
{
  const char *n = rc > 0 ? strerrorname_np(rc) : NULL;
  return n != NULL ? n : rc > 0 ? "unknown_errno" : "MDB_ERROR";
}

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
  /* LMDB passes system errors through as positive errno values: log their
   * name (ENOSPC, EIO ...), not only the text. */
  const char *name = errno_name(rc);
  if (rc == ENOSPC || rc == EDQUOT) {
    log_error("store_disk_full", "op", what, "errno", name, "error", mdb_strerror(rc));
    return GRANTD_EDISK_FULL;
  }
  log_error("store_error", "op", what, "errno", name, "error", mdb_strerror(rc));
  return GRANTD_ESTORE_IO;
}

void store__report_bad(store_t *s, int db, const char *key, size_t keylen, int err)
{
  s->st.decode_errors++;
  metrics_counter_inc("grantd_store_decode_errors_total", NULL);
  /* A state key is a live single-use secret: log only its first bytes. */
  size_t shown = db == DB_STATES && keylen > 6 ? 6 : keylen;
  char *k = xstrndup(key, shown);
  log_error("store_record_bad", "db", store__db_names[db], "key", k, "?key_truncated",
            shown < keylen, "error", err_name(err));
  free(k);
}

int store__rtxn_begin(store_t *s, MDB_txn **txn)
{
  int rc;
  *txn = NULL;
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
  *val = NULL;
  *vlen = 0;
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
      /* Retired after a rotation, or missing: grantd serve counts the
       * records that still need it (store_seal_census) and refuses to
       * start while there are any. */
      log_info("store_key_not_in_keyring", "#key_id", LOG_I64(id), "detail",
               "records sealed with this key id, if any, cannot be opened");
      continue;
    }
    buf_t pt = BUF_INIT;
    int orc = seal_open(s->kr, "meta", ck.mv_data, 8, cv.mv_data, cv.mv_size, &pt);
    int same =
      orc == 0 && pt.len == sizeof(check_plain) - 1 && memcmp(pt.data, check_plain, pt.len) == 0;
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
    log_error("store_wrong_master_key", "detail",
              "none of the configured key ids sealed this store");
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

int store_set_keyring(store_t *s, const seal_keyring_t *kr)
{
  uint32_t cur;
  if (kr == NULL || seal_keyring_current(kr, &cur) != 0)
    return GRANTD_EINVALID;
  if (s->closing)
    return GRANTD_ESHUTDOWN;
  MDB_txn *txn;
  int rc = store__rtxn_begin(s, &txn);
  if (rc != 0)
    return rc;
  bool fresh[SEAL_MAX_KEYS] = {false};
  for (size_t i = 0; i < seal_keyring_count(kr) && i < SEAL_MAX_KEYS; i++) {
    uint32_t id = seal_keyring_id_at(kr, i);
    char mk[8];
    meta_key(id, mk);
    /* A pending check value (an earlier reload) counts as present. */
    const void *v;
    size_t vn;
    int lrc = store__lookup(s, txn, DB_META, mk, 8, &v, &vn);
    if (lrc == GRANTD_ENOT_FOUND) {
      fresh[i] = true;
      continue;
    }
    if (lrc != 0) {
      store__rtxn_end(s);
      return lrc;
    }
    buf_t pt = BUF_INIT;
    int orc = seal_open(kr, "meta", mk, 8, v, vn, &pt);
    bool same =
      orc == 0 && pt.len == sizeof(check_plain) - 1 && memcmp(pt.data, check_plain, pt.len) == 0;
    buf_wipe_free(&pt);
    if (!same) {
      store__rtxn_end(s);
      log_error("store_wrong_master_key", "#key_id", LOG_I64(id), "detail",
                "this key differs from the one the store knows under this id");
      return GRANTD_ESTORE_WRONG_KEY;
    }
  }
  store__rtxn_end(s);
  s->kr = kr;
  for (size_t i = 0; i < seal_keyring_count(kr) && i < SEAL_MAX_KEYS; i++) {
    if (!fresh[i])
      continue;
    uint32_t id = seal_keyring_id_at(kr, i);
    char mk[8];
    meta_key(id, mk);
    buf_t blob = BUF_INIT;
    seal_seal_with(kr, id, "meta", mk, 8, check_plain, sizeof(check_plain) - 1, &blob);
    store__put_raw(s, DB_META, mk, 8, &blob);
    buf_free(&blob);
  }
  return 0;
}

static void define_metrics(void)
{
  static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05,   0.1,   0.25,   0.5,   1,    2.5};
  metrics_help("grantd_store_commits_total", "LMDB write batches committed", METRIC_COUNTER);
  metrics_help("grantd_events_total", "connection events committed, by type", METRIC_COUNTER);
  metrics_help("grantd_events_pruned_total", "connection events pruned by the outbox retention",
               METRIC_COUNTER);
  metrics_help("grantd_store_commit_failures_total", "LMDB write batches that failed",
               METRIC_COUNTER);
  metrics_help("grantd_store_ops_committed_total", "store writes committed", METRIC_COUNTER);
  metrics_help("grantd_store_decode_errors_total", "stored records that failed to decode",
               METRIC_COUNTER);
  metrics_help("grantd_store_last_batch_size", "writes in the last committed batch", METRIC_GAUGE);
  metrics_help("grantd_store_pending_ops", "writes queued for the next batch", METRIC_GAUGE);
  metrics_histogram_define("grantd_store_commit_seconds", "LMDB batch commit time (synced)", bounds,
                           ARRAY_SIZE(bounds));
}

bool store_exists(const char *dir)
{
  char path[4200];
  struct stat st;
  if (dir == NULL || (size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path)
    return false;
  /* When in doubt (EACCES, EIO ...) say yes: the caller must not create a
   * new key beside a store it cannot see. */
  return stat(path, &st) == 0 || errno != ENOENT;
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
  s->ev_keep = opts->events_keep ? opts->events_keep : STORE_EVENTS_KEEP;
  s->ev_keep_ms = opts->events_keep_ms > 0 ? opts->events_keep_ms : STORE_EVENTS_KEEP_MS;
  s->ev_keep_max = opts->events_keep_undelivered ? opts->events_keep_undelivered : 4 * s->ev_keep;
  if (s->ev_keep_max < s->ev_keep)
    s->ev_keep_max = s->ev_keep;
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
  if (grc == 0 && (rc = store__ev_load(s, txn)) != 0)
    grc = store__mdb_err(rc, "events");
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
  log_error("store_open_failed", "path", opts->path, "errno", errno_name(rc), "error",
            mdb_strerror(rc));
  if (rc == MDB_MAP_FULL)
    return GRANTD_EMAP_FULL;
  return rc == ENOSPC || rc == EDQUOT ? GRANTD_EDISK_FULL : GRANTD_ESTORE_IO;
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
  const void *v = NULL;
  size_t vn = 0;
  rc = store__lookup(s, txn, db, key, kl, &v, &vn);
  if (rc == 0) {
    rc = dec(v, vn, key, kl, s->kr, out);
    if (rc != 0)
      store__report_bad(s, db, key, kl, rc);
  }
  store__rtxn_end(s);
  return rc;
}

static int dec_provider(const void *d, size_t n, const char *k, size_t kl, const seal_keyring_t *kr,
                        void *out)
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

typedef struct {
  conn_t *c;
  bool *has_rt;
} token_view_t;

static int dec_conn_view(const void *d, size_t n, const char *k, size_t kl,
                         const seal_keyring_t *kr, void *out)
{
  token_view_t *v = out;
  return conn_decode_token_view(d, n, k, kl, kr, v->c, v->has_rt);
}

int store_conn_get_token_view(store_t *s, const char *id, conn_t *out, bool *has_rt)
{
  memset(out, 0, sizeof(*out));
  *has_rt = false;
  token_view_t v = {out, has_rt};
  return get_generic(s, DB_CONNECTIONS, id, &v, dec_conn_view);
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
