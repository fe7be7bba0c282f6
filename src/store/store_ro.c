/*
 * store_ro.c - read-only snapshots and hot backups of a store; see
 * store_ro.h.
 */
#include "store/store_ro.h"

#include <errno.h>
#include <stdbool.h>
#include <lmdb.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/mem.h"
#include "store/store.h"
#include "store/store_int.h"

struct store_ro {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi[DB_COUNT];
  /* Databases a store written by an older grantd does not have yet (the
   * events and webhook ones): read as empty, created by the next serve. */
  bool absent[DB_COUNT];
  const seal_keyring_t *kr;
};

static int db_index(const char *db)
{
  for (int i = 0; i < DB_COUNT; i++)
    if (!strcmp(db, store__db_names[i]))
      return i;
  return -1;
}

/* Every key check value of meta that the keyring has an id for must open
 * to the check plaintext, and at least one must be known. */
static int check_keys(store_ro_t *ro)
{
  MDB_cursor *cur;
  if (mdb_cursor_open(ro->txn, ro->dbi[DB_META], &cur) != 0)
    return GRANTD_ESTORE_IO;
  MDB_val k = {4, "key:"}, v;
  size_t matched = 0, known = 0;
  int rc, bad = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 8 || memcmp(k.mv_data, "key:", 4) != 0)
      break;
    const uint8_t *p = (const uint8_t *)k.mv_data + 4;
    uint32_t id = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    known++;
    if (!seal_keyring_has(ro->kr, id))
      continue;
    buf_t pt = BUF_INIT;
    int orc = seal_open(ro->kr, "meta", k.mv_data, 8, v.mv_data, v.mv_size, &pt);
    bool same = orc == 0 && pt.len == sizeof(STORE_KEY_CHECK_PLAIN) - 1 &&
                memcmp(pt.data, STORE_KEY_CHECK_PLAIN, pt.len) == 0;
    buf_wipe_free(&pt);
    if (!same)
      bad = 1;
    else
      matched++;
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return GRANTD_ESTORE_IO;
  return bad || (known > 0 && matched == 0) ? GRANTD_ESTORE_WRONG_KEY : 0;
}

int store_ro_open(store_ro_t **out, const char *path, const seal_keyring_t *kr, const char **why)
{
  if (!store_exists(path))
    return GRANTD_ENOT_FOUND;
  store_ro_t *ro = xcalloc(1, sizeof *ro);
  ro->kr = kr;
  int rc = mdb_env_create(&ro->env);
  if (rc == 0 && (rc = mdb_env_set_maxdbs(ro->env, DB_COUNT)) == 0 &&
      (rc = mdb_env_open(ro->env, path, MDB_RDONLY | MDB_NOTLS, 0600)) == 0 &&
      (rc = mdb_txn_begin(ro->env, NULL, MDB_RDONLY, &ro->txn)) == 0) {
    for (int i = 0; i < DB_COUNT && rc == 0; i++) {
      rc = mdb_dbi_open(ro->txn, store__db_names[i], 0, &ro->dbi[i]);
      if (rc == MDB_NOTFOUND && i >= DB_EVENTS) {
        ro->absent[i] = true;
        rc = 0;
      }
    }
  }
  if (rc != 0) {
    if (why)
      *why = mdb_strerror(rc);
    store_ro_close(ro);
    return rc == MDB_NOTFOUND ? GRANTD_ENOT_FOUND : GRANTD_ESTORE_IO;
  }
  if (kr != NULL && (rc = check_keys(ro)) != 0) {
    if (why)
      *why = err_str(rc);
    store_ro_close(ro);
    return rc;
  }
  *out = ro;
  return 0;
}

void store_ro_close(store_ro_t *ro)
{
  if (ro == NULL)
    return;
  if (ro->txn)
    mdb_txn_abort(ro->txn);
  if (ro->env)
    mdb_env_close(ro->env);
  free(ro);
}

int store_ro_decode(store_ro_t *ro, const char *db, const char *key, size_t keylen, const void *val,
                    size_t vlen)
{
  int rc;
  switch (db_index(db)) {
  case DB_PROVIDERS: {
    provider_t p;
    rc = provider_decode(val, vlen, key, keylen, ro->kr, &p);
    if (rc == 0)
      provider_free(&p);
    return rc;
  }
  case DB_CONNECTIONS: {
    conn_t c;
    rc = conn_decode(val, vlen, key, keylen, ro->kr, &c);
    if (rc == 0)
      conn_free(&c);
    return rc;
  }
  case DB_STATES: {
    state_rec_t s;
    rc = state_rec_decode(val, vlen, key, keylen, ro->kr, &s);
    if (rc == 0)
      state_rec_free(&s);
    return rc;
  }
  case DB_WEBHOOKS: {
    wh_rec_t w;
    rc = wh_rec_decode(val, vlen, key, keylen, ro->kr, &w);
    if (rc == 0)
      wh_rec_free(&w);
    return rc;
  }
  default: return GRANTD_EINVALID;
  }
}

static int get_raw(store_ro_t *ro, int db, const char *key, MDB_val *v)
{
  MDB_val k = {strlen(key), (void *)key};
  if (k.mv_size == 0 || k.mv_size > STORE_MAX_KEY)
    return GRANTD_ENOT_FOUND;
  if (ro->absent[db])
    return GRANTD_ENOT_FOUND;
  int rc = mdb_get(ro->txn, ro->dbi[db], &k, v);
  return rc == 0 ? 0 : rc == MDB_NOTFOUND ? GRANTD_ENOT_FOUND : GRANTD_ESTORE_IO;
}

int store_ro_conn_get(store_ro_t *ro, const char *id, conn_t *out)
{
  MDB_val v;
  int rc = get_raw(ro, DB_CONNECTIONS, id, &v);
  return rc ? rc : conn_decode(v.mv_data, v.mv_size, id, strlen(id), ro->kr, out);
}

int store_ro_provider_get(store_ro_t *ro, const char *name, provider_t *out)
{
  MDB_val v;
  int rc = get_raw(ro, DB_PROVIDERS, name, &v);
  return rc ? rc : provider_decode(v.mv_data, v.mv_size, name, strlen(name), ro->kr, out);
}

int store_ro_raw_scan(store_ro_t *ro, const char *db, store_ro_raw_fn fn, void *arg)
{
  int i = db_index(db);
  if (i < 0)
    return GRANTD_EINVALID;
  if (ro->absent[i])
    return 0;
  MDB_cursor *cur;
  if (mdb_cursor_open(ro->txn, ro->dbi[i], &cur) != 0)
    return GRANTD_ESTORE_IO;
  MDB_val k, v;
  int rc, ret = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if ((ret = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size)) != 0)
      break;
  }
  mdb_cursor_close(cur);
  if (ret != 0)
    return ret;
  return rc == MDB_NOTFOUND ? 0 : GRANTD_ESTORE_IO;
}

typedef struct {
  store_ro_t *ro;
  store_ro_conn_fn fn;
  store_ro_bad_fn bad;
  void *arg;
} conn_scan_t;

static int conn_scan_one(void *arg, const char *key, size_t keylen, const void *val, size_t vlen)
{
  conn_scan_t *cs = arg;
  conn_t c;
  int rc = conn_decode(val, vlen, key, keylen, cs->ro->kr, &c);
  if (rc != 0) {
    if (cs->bad)
      cs->bad(cs->arg, RECORD_DB_CONNECTIONS, key, keylen, rc);
    return 0;
  }
  rc = cs->fn(cs->arg, &c);
  conn_free(&c);
  return rc;
}

int store_ro_conn_scan(store_ro_t *ro, store_ro_conn_fn fn, store_ro_bad_fn bad, void *arg)
{
  conn_scan_t cs = {ro, fn, bad, arg};
  return store_ro_raw_scan(ro, RECORD_DB_CONNECTIONS, conn_scan_one, &cs);
}

int store_ro_seal_ids(const char *db, const void *val, size_t vlen, uint32_t *ids, int max)
{
  if (strcmp(db, RECORD_DB_WEBHOOKS) == 0) {
    uint32_t id;
    if (wh_rec_seal_id(val, vlen, &id) < 0)
      return -1;
    if (max > 0)
      ids[0] = id;
    return 1;
  }
  msgpack_zone zone;
  msgpack_zone_init(&zone, 2048);
  msgpack_object o;
  size_t off = 0;
  int n = -1;
  if (msgpack_unpack(val, vlen, &off, &zone, &o) == MSGPACK_UNPACK_SUCCESS &&
      o.type == MSGPACK_OBJECT_ARRAY) {
    n = 0;
    for (uint32_t i = 0; i < o.via.array.size; i++) {
      const msgpack_object *f = &o.via.array.ptr[i];
      uint32_t id;
      if (f->type != MSGPACK_OBJECT_BIN ||
          seal_blob_key_id(f->via.bin.ptr, f->via.bin.size, &id) != 0)
        continue;
      if (n < max)
        ids[n] = id;
      n++;
    }
  }
  msgpack_zone_destroy(&zone);
  return n;
}

int store_ro_backup(const char *src, const char *dest, const char **why)
{
  if (!store_exists(src))
    return GRANTD_ENOT_FOUND;
  if (mkdir(dest, 0700) != 0) {
    if (why)
      *why = strerror(errno);
    return errno == EEXIST ? GRANTD_EEXISTS : GRANTD_ESTORE_IO;
  }
  MDB_env *env = NULL;
  int rc = mdb_env_create(&env);
  if (rc == 0 && (rc = mdb_env_set_maxdbs(env, DB_COUNT)) == 0 &&
      (rc = mdb_env_open(env, src, MDB_RDONLY | MDB_NOTLS, 0600)) == 0)
    rc = mdb_env_copy2(env, dest, MDB_CP_COMPACT);
  if (env)
    mdb_env_close(env);
  char f[4200];
  snprintf(f, sizeof f, "%s/data.mdb", dest);
  if (rc == 0 && chmod(f, 0600) != 0)
    rc = errno;
  if (rc != 0) {
    if (why)
      *why = mdb_strerror(rc);
    unlink(f);
    rmdir(dest);
    return GRANTD_ESTORE_IO;
  }
  return 0;
}
