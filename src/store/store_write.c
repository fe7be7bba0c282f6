/*
 * store_write.c - the write side of the store: the op queue, the overlay
 * that gives the loop read-your-writes, and group commit on libuv's thread
 * pool; see store.h for the contract.
 *
 * Life of a write: the public call encodes and seals the record on the loop
 * (so the worker only ever handles byte buffers and never the keyring),
 * records the op in the overlay and appends it to `pend`. If no commit is
 * running, an idle handle is started so that the commit begins at the next
 * loop turn: everything queued by the callbacks of this turn joins the same
 * batch. start_commit() moves `pend` to `batch` and queues work_cb(); while
 * it runs, new ops pile up in `pend` and form the next batch. after_work_cb()
 * runs on the loop: it drops the overlay entries owned by the batch, answers
 * every op in queue order, then starts the next batch if ops are waiting.
 *
 * Why the worker maintains by_tenant itself: it reads the old connection
 * inside the write txn, so the index is right even when an earlier batch
 * failed and the loop's idea of the old tenant (from the overlay) was wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "store/store_int.h"

/* ---- overlay hash ---- */

static uint64_t ov_hash(int db, const char *key, size_t keylen)
{
  uint64_t h = 1469598103934665603ull ^ (uint64_t)db; /* FNV-1a */
  for (size_t i = 0; i < keylen; i++) {
    h ^= (unsigned char)key[i];
    h *= 1099511628211ull;
  }
  return h;
}

ov_entry_t *store__ov_find(store_t *s, int db, const char *key, size_t keylen)
{
  if (s->ov_per_db[db] == 0)
    return NULL;
  uint64_t h = ov_hash(db, key, keylen);
  for (ov_entry_t *e = s->ov[h & (s->ov_nb - 1)]; e; e = e->next)
    if (e->hash == h && e->db == db && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
      return e;
  return NULL;
}

static void ov_grow(store_t *s)
{
  size_t nb = s->ov_nb ? s->ov_nb * 2 : 64;
  ov_entry_t **t = xcalloc(nb, sizeof(*t));
  for (size_t i = 0; i < s->ov_nb; i++) {
    ov_entry_t *e = s->ov[i];
    while (e) {
      ov_entry_t *nx = e->next;
      e->next = t[e->hash & (nb - 1)];
      t[e->hash & (nb - 1)] = e;
      e = nx;
    }
  }
  free(s->ov);
  s->ov = t;
  s->ov_nb = nb;
}

/* Makes op the latest pending op of (db, key). */
static void ov_set(store_t *s, int db, const char *key, size_t keylen, const store_op_t *op,
                   bool tomb)
{
  ov_entry_t *e = store__ov_find(s, db, key, keylen);
  if (e == NULL) {
    if (s->ov_count + 1 > s->ov_nb)
      ov_grow(s);
    e = xmalloc(sizeof(*e) + keylen);
    e->hash = ov_hash(db, key, keylen);
    e->db = db;
    e->keylen = keylen;
    memcpy(e->key, key, keylen);
    size_t b = e->hash & (s->ov_nb - 1);
    e->next = s->ov[b];
    s->ov[b] = e;
    s->ov_count++;
    s->ov_per_db[db]++;
  }
  e->op = op;
  e->tomb = tomb;
}

/* Drops the entry of (db, key) if op is still its latest op. */
static void ov_release(store_t *s, int db, const char *key, size_t keylen, const store_op_t *op)
{
  if (key == NULL || s->ov_per_db[db] == 0)
    return;
  uint64_t h = ov_hash(db, key, keylen);
  ov_entry_t **pp = &s->ov[h & (s->ov_nb - 1)];
  for (; *pp; pp = &(*pp)->next) {
    ov_entry_t *e = *pp;
    if (e->hash == h && e->db == db && e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
      if (e->op == op) {
        *pp = e->next;
        free(e);
        s->ov_count--;
        s->ov_per_db[db]--;
      }
      return;
    }
  }
}

int store__keycmp(const char *a, size_t an, const char *b, size_t bn)
{
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c != 0)
    return c;
  return an < bn ? -1 : an > bn;
}

static int ov_sort_cmp(const void *x, const void *y)
{
  const ov_entry_t *a = *(ov_entry_t *const *)x, *b = *(ov_entry_t *const *)y;
  return store__keycmp(a->key, a->keylen, b->key, b->keylen);
}

ov_entry_t **store__ov_range(store_t *s, int db, const char *prefix, size_t plen, const char *after,
                             size_t alen, size_t *n)
{
  *n = 0;
  if (s->ov_per_db[db] == 0)
    return NULL;
  ov_entry_t **v = xmalloc(s->ov_per_db[db] * sizeof(*v));
  for (size_t i = 0; i < s->ov_nb; i++) {
    for (ov_entry_t *e = s->ov[i]; e; e = e->next) {
      if (e->db != db || e->keylen < plen || (plen && memcmp(e->key, prefix, plen) != 0))
        continue;
      if (after != NULL && store__keycmp(e->key + plen, e->keylen - plen, after, alen) <= 0)
        continue;
      v[(*n)++] = e;
    }
  }
  if (*n == 0) {
    free(v);
    return NULL;
  }
  qsort(v, *n, sizeof(*v), ov_sort_cmp);
  return v;
}

/* ---- ops ---- */

static store_op_t *op_new(op_kind_t kind, int db, const char *key)
{
  store_op_t *op = xcalloc(1, sizeof(*op));
  op->kind = kind;
  op->db = db;
  if (key != NULL) {
    op->keylen = strlen(key);
    op->key = xmemdup(key, op->keylen);
  }
  return op;
}

static void op_free(store_op_t *op)
{
  free(op->key);
  buf_free(&op->val); /* sealed bytes only: no plaintext to wipe */
  free(op->tenant);
  free(op->idx_new);
  free(op->idx_old);
  state_rec_free(&op->consumed);
  buf_free(&op->ev_data);
  free(op);
}

static char *index_key(const char *tenant, const char *id, size_t idlen, size_t *len)
{
  size_t tl = strlen(tenant);
  char *k = xmalloc(tl + 1 + idlen + 1);
  memcpy(k, tenant, tl);
  k[tl] = '\0';
  memcpy(k + tl + 1, id, idlen);
  *len = tl + 1 + idlen;
  return k;
}

/* ---- commit ---- */

static double mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int w_del(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen)
{
  MDB_val k = {keylen, (void *)key};
  int rc = mdb_del(txn, dbi, &k, NULL);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Old tenant of connection `id` inside the write txn; 0 with *t = {NULL,0}
 * when there is none (or the old value does not decode: its index entry, if
 * any, stays behind, and listings skip it because they check the tenant). */
static int w_old_tenant(store_t *s, MDB_txn *txn, const store_op_t *op, slice_t *t)
{
  t->p = NULL;
  t->n = 0;
  MDB_val k = {op->keylen, op->key}, v;
  int rc = mdb_get(txn, s->dbi[DB_CONNECTIONS], &k, &v);
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc != 0)
    return rc;
  conn_sched_t cs;
  if (conn_decode_sched(v.mv_data, v.mv_size, op->key, op->keylen, &cs) == 0)
    *t = cs.tenant;
  return 0;
}

static int w_index_del(store_t *s, MDB_txn *txn, const store_op_t *op, slice_t t)
{
  if (t.p == NULL)
    return 0;
  size_t len = t.n + 1 + op->keylen;
  if (len > STORE_MAX_KEY)
    return 0;
  char kb[STORE_MAX_KEY];
  memcpy(kb, t.p, t.n);
  kb[t.n] = '\0';
  memcpy(kb + t.n + 1, op->key, op->keylen);
  return w_del(txn, s->dbi[DB_BY_TENANT], kb, len);
}

static int w_apply(store_t *s, MDB_txn *txn, const store_op_t *op)
{
  MDB_val k = {op->keylen, op->key};
  MDB_val v = {op->val.len, op->val.data};
  int rc = 0;
  switch (op->kind) {
  case OP_PUT: return mdb_put(txn, s->dbi[op->db], &k, &v, 0);
  case OP_DEL:
  case OP_CONSUME: return w_del(txn, s->dbi[op->db], op->key, op->keylen);
  case OP_CONN_PUT: {
    slice_t old;
    if ((rc = store__ev_apply(s, txn, op)) != 0)
      return rc;
    if (op->idx_keep)
      return mdb_put(txn, s->dbi[DB_CONNECTIONS], &k, &v, 0);
    if ((rc = w_old_tenant(s, txn, op, &old)) != 0)
      return rc;
    bool same = op->tenant != NULL && old.p != NULL && old.n == strlen(op->tenant) &&
                memcmp(old.p, op->tenant, old.n) == 0;
    if (!same && (rc = w_index_del(s, txn, op, old)) != 0)
      return rc;
    if ((rc = mdb_put(txn, s->dbi[DB_CONNECTIONS], &k, &v, 0)) != 0)
      return rc;
    if (op->idx_new != NULL) {
      MDB_val ik = {op->idx_new_len, op->idx_new}, iv = {0, (void *)""};
      rc = mdb_put(txn, s->dbi[DB_BY_TENANT], &ik, &iv, 0);
    }
    return rc;
  }
  case OP_CONN_DEL: {
    slice_t old;
    if ((rc = store__ev_apply(s, txn, op)) != 0)
      return rc;
    if ((rc = w_old_tenant(s, txn, op, &old)) != 0)
      return rc;
    if ((rc = w_index_del(s, txn, op, old)) != 0)
      return rc;
    return w_del(txn, s->dbi[DB_CONNECTIONS], op->key, op->keylen);
  }
  case OP_NOOP: return 0;
  }
  return 0;
}

/* Thread pool: one write txn for the whole batch. Touches only LMDB and the
 * batch's byte buffers (the loop does not modify them meanwhile). */
static void work_cb(uv_work_t *req)
{
  store_t *s = req->data;
  double t0 = mono_ms();
  bool any = false;
  for (store_op_t *op = s->batch; op; op = op->next)
    any = any || op->kind != OP_NOOP;
  int rc = 0;
  if (any) {
    MDB_txn *txn = NULL;
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    for (store_op_t *op = s->batch; rc == 0 && op; op = op->next)
      rc = w_apply(s, txn, op);
    if (rc == 0 && s->ev_batch_last != s->ev_last)
      rc = store__ev_trim(s, txn);
    if (rc == 0)
      rc = mdb_txn_commit(txn); /* frees txn, also on failure */
    else if (txn != NULL)
      mdb_txn_abort(txn);
  }
  s->batch_status = store__mdb_err(rc, "commit");
  s->batch_ms = mono_ms() - t0;
}

static void start_commit(store_t *s);

static void after_work_cb(uv_work_t *req, int status)
{
  store_t *s = req->data;
  int rc = status != 0 ? GRANTD_ESTORE_IO : s->batch_status;
  store_op_t *batch = s->batch;
  size_t n = s->nbatch;
  s->batch = NULL;
  s->nbatch = 0;
  s->running = false;

  s->st.last_batch_size = n;
  s->st.last_commit_ms = s->batch_ms;
  s->st.commit_ms_total += s->batch_ms;
  bool events = rc == 0 && s->ev_batch_last != s->ev_last;
  if (rc == 0 && events) {
    s->ev_last = s->ev_batch_last;
    s->ev_first = s->ev_batch_first;
    s->ev_trimmed += s->ev_batch_trimmed;
    for (int t = 0; t < OUTBOX_TYPE_COUNT; t++) {
      if (s->ev_batch_n[t] == 0)
        continue;
      char labels[80];
      snprintf(labels, sizeof labels, "type=\"%s\"", outbox_type_name((outbox_type_t)t));
      metrics_counter_add("grantd_events_total", labels, (double)s->ev_batch_n[t]);
    }
    if (s->ev_batch_trimmed)
      metrics_counter_add("grantd_events_pruned_total", NULL, (double)s->ev_batch_trimmed);
    if (s->ev_batch_dropped) {
      s->ev_dropped += s->ev_batch_dropped;
      metrics_counter_add("grantd_events_dropped_undelivered_total", NULL,
                          (double)s->ev_batch_dropped);
      log_error("events_dropped_undelivered", "#dropped", LOG_I64(s->ev_batch_dropped), "#held_max",
                LOG_I64(s->ev_keep_max), "#first", LOG_I64(s->ev_first), "hint",
                "a webhook endpoint is far behind; its events below #first are lost for it");
    }
  }
  if (rc == 0) {
    s->st.commits++;
    s->st.ops_committed += n;
    metrics_counter_inc("grantd_store_commits_total", NULL);
    metrics_counter_add("grantd_store_ops_committed_total", NULL, (double)n);
  } else {
    s->st.commit_failures++;
    s->st.ops_failed += n;
    metrics_counter_inc("grantd_store_commit_failures_total", NULL);
    log_error("store_commit_failed", "error", err_name(rc), "#ops", LOG_I64(n));
  }
  metrics_histogram_observe("grantd_store_commit_seconds", NULL, s->batch_ms / 1e3);
  metrics_gauge_set("grantd_store_last_batch_size", NULL, (double)n);

  /* Reads done from the callbacks below must see what LMDB now holds. */
  for (store_op_t *op = batch; op; op = op->next) {
    ov_release(s, op->db, op->key, op->keylen, op);
    ov_release(s, DB_BY_TENANT, op->idx_new, op->idx_new_len, op);
    ov_release(s, DB_BY_TENANT, op->idx_old, op->idx_old_len, op);
  }
  metrics_gauge_set("grantd_store_pending_ops", NULL, (double)s->npend);
  if (events && s->ev_committed)
    s->ev_committed(s->ev_arg, s->ev_last);
  s->completing = true; /* a store_close() from a callback waits for us */
  while (batch) {
    store_op_t *op = batch;
    batch = op->next;
    if (op->kind == OP_CONSUME) {
      if (op->scb)
        op->scb(op->arg, rc, rc == 0 ? &op->consumed : NULL);
    } else if (op->cb) {
      op->cb(op->arg, rc);
    }
    op_free(op);
  }
  s->completing = false;
  if (s->pend_head != NULL)
    start_commit(s);
  else if (s->closing)
    store__finish_close(s);
}

static void start_commit(store_t *s)
{
  if (s->running || s->pend_head == NULL)
    return;
  s->batch = s->pend_head;
  s->nbatch = s->npend;
  s->batch_now_ms = clock_now_ms();
  s->ev_batch_last = s->ev_last;
  s->ev_batch_first = s->ev_first;
  s->ev_batch_trimmed = 0;
  s->ev_batch_dropped = 0;
  memset(s->ev_batch_n, 0, sizeof s->ev_batch_n);
  s->pend_head = s->pend_tail = NULL;
  s->npend = 0;
  s->running = true;
  s->work.data = s;
  int rc = uv_queue_work(s->loop, &s->work, work_cb, after_work_cb);
  if (rc != 0) {
    /* Cannot happen with valid arguments; fail the batch the usual way. */
    s->batch_status = GRANTD_ESTORE_IO;
    s->batch_ms = 0;
    after_work_cb(&s->work, rc);
  }
}

static void kick_cb(uv_idle_t *h)
{
  store_t *s = h->data;
  uv_idle_stop(h);
  s->kick_active = false;
  start_commit(s);
}

static void enqueue(store_t *s, store_op_t *op)
{
  if (s->pend_tail)
    s->pend_tail->next = op;
  else
    s->pend_head = op;
  s->pend_tail = op;
  s->npend++;
  if (!s->running && !s->kick_active) {
    s->kick_active = true;
    uv_idle_start(&s->kick, kick_cb);
  }
}

size_t store_pending(const store_t *s)
{
  return s->npend + s->nbatch;
}

/* ---- public writes ---- */

static int check_key(store_t *s, const char *key)
{
  if (s->closing)
    return GRANTD_ESHUTDOWN;
  if (key == NULL || key[0] == '\0' || strlen(key) > STORE_MAX_KEY)
    return GRANTD_EINVALID;
  return 0;
}

static int put_generic(store_t *s, int db, const char *key, const void *rec,
                       int (*enc)(const void *, const seal_keyring_t *, buf_t *), store_cb cb,
                       void *arg)
{
  int rc = check_key(s, key);
  if (rc != 0)
    return rc;
  store_op_t *op = op_new(OP_PUT, db, key);
  if ((rc = enc(rec, s->kr, &op->val)) != 0) {
    op_free(op);
    return rc;
  }
  op->cb = cb;
  op->arg = arg;
  ov_set(s, db, op->key, op->keylen, op, false);
  enqueue(s, op);
  return 0;
}

int store__put_raw(store_t *s, int db, const void *key, size_t keylen, buf_t *val)
{
  if (s->closing)
    return GRANTD_ESHUTDOWN;
  store_op_t *op = op_new(OP_PUT, db, NULL);
  op->key = xmemdup(key, keylen);
  op->keylen = keylen;
  op->val = *val;
  *val = (buf_t)BUF_INIT;
  ov_set(s, db, op->key, op->keylen, op, false);
  enqueue(s, op);
  return 0;
}

static int del_generic(store_t *s, int db, const char *key, store_cb cb, void *arg);

int store__put_cb(store_t *s, int db, const char *key, buf_t *val, store_cb cb, void *arg)
{
  int rc = check_key(s, key);
  if (rc != 0) {
    buf_free(val);
    return rc;
  }
  store_op_t *op = op_new(OP_PUT, db, key);
  op->val = *val;
  *val = (buf_t)BUF_INIT;
  op->cb = cb;
  op->arg = arg;
  ov_set(s, db, op->key, op->keylen, op, false);
  enqueue(s, op);
  return 0;
}

int store__del_cb(store_t *s, int db, const char *key, store_cb cb, void *arg)
{
  return del_generic(s, db, key, cb, arg);
}

static int enc_provider(const void *r, const seal_keyring_t *kr, buf_t *out)
{
  return provider_encode(r, kr, out);
}

static int enc_state(const void *r, const seal_keyring_t *kr, buf_t *out)
{
  return state_rec_encode(r, kr, out);
}

int store_provider_put(store_t *s, const provider_t *p, store_cb cb, void *arg)
{
  return put_generic(s, DB_PROVIDERS, p->name, p, enc_provider, cb, arg);
}

int store_state_put(store_t *s, const state_rec_t *st, store_cb cb, void *arg)
{
  return put_generic(s, DB_STATES, st->state, st, enc_state, cb, arg);
}

static int del_generic(store_t *s, int db, const char *key, store_cb cb, void *arg)
{
  int rc = check_key(s, key);
  if (rc != 0)
    return rc;
  store_op_t *op = op_new(OP_DEL, db, key);
  op->cb = cb;
  op->arg = arg;
  ov_set(s, db, op->key, op->keylen, op, true);
  enqueue(s, op);
  return 0;
}

int store_provider_delete(store_t *s, const char *name, store_cb cb, void *arg)
{
  return del_generic(s, DB_PROVIDERS, name, cb, arg);
}

int store_state_delete(store_t *s, const char *state, store_cb cb, void *arg)
{
  return del_generic(s, DB_STATES, state, cb, arg);
}

/* The tenant the loop currently sees for connection `id` (pending writes
 * included), as an xmalloc'd index key, or NULL. */
static char *current_index_key(store_t *s, const char *id, size_t idlen, size_t *len)
{
  MDB_txn *txn;
  if (store__rtxn_begin(s, &txn) != 0)
    return NULL;
  const void *v;
  size_t vn;
  char *k = NULL;
  conn_sched_t cs;
  if (store__lookup(s, txn, DB_CONNECTIONS, id, idlen, &v, &vn) == 0 &&
      conn_decode_sched(v, vn, id, idlen, &cs) == 0 && cs.tenant.p != NULL &&
      cs.tenant.n + 1 + idlen <= STORE_MAX_KEY) {
    char *t = xstrndup(cs.tenant.p, cs.tenant.n);
    k = index_key(t, id, idlen, len);
    free(t);
  }
  store__rtxn_end(s);
  return k;
}

/* The index key of `tenant` (NULL = none) as current_index_key gives it. */
static char *known_index_key(const char *tenant, const char *id, size_t idlen, size_t *len)
{
  if (tenant == NULL || strlen(tenant) + 1 + idlen > STORE_MAX_KEY)
    return NULL;
  return index_key(tenant, id, idlen, len);
}

#ifndef NDEBUG
/* Debug builds: a caller's claim about the stored tenant must hold. */
static void check_known_index_key(store_t *s, const char *id, size_t idlen, const char *k,
                                  size_t klen)
{
  size_t cl = 0;
  char *cur = current_index_key(s, id, idlen, &cl);
  bool same =
    (cur == NULL) == (k == NULL) && (k == NULL || (cl == klen && memcmp(cur, k, cl) == 0));
  free(cur);
  if (!same) {
    fprintf(stderr, "store_conn_replace: prev is not the stored record of %s\n", id);
    abort();
  }
}
#endif

int store_conn_replace(store_t *s, const conn_t *c, const conn_t *prev, store_cb cb, void *arg)
{
  int rc = check_key(s, c->id);
  if (rc != 0)
    return rc;
  size_t idlen = strlen(c->id);
  if (c->tenant != NULL && strlen(c->tenant) + 1 + idlen > STORE_MAX_KEY)
    return GRANTD_EINVALID;
  store_op_t *op = op_new(OP_CONN_PUT, DB_CONNECTIONS, c->id);
  if ((rc = conn_encode(c, s->kr, &op->val)) != 0) {
    op_free(op);
    return rc;
  }
  op->cb = cb;
  op->arg = arg;
  if (s->ev_data != NULL && s->ev_data(s->ev_arg, c, &op->ev_data) == 0) {
    op->ev_on = true;
    op->ev_next = c->status;
    op->ev_grant = c->grant;
    if (c->last_error_code && strcmp(c->last_error_code, "refresh_token_lost_in_restart") == 0)
      op->ev_flags |= OUTBOX_F_RT_LOST;
  }
  /* The same tenant as the record it replaces (a refresh): the index entry
   * stays as it is, so neither the overlay nor the worker touches by_tenant
   * (no read of the old record's tenant, no rewrite of the same key). */
  op->idx_keep = prev != NULL && prev->tenant != NULL && c->tenant != NULL &&
                 strcmp(prev->tenant, c->tenant) == 0;
  if (c->tenant != NULL && !op->idx_keep) {
    op->tenant = xstrdup(c->tenant);
    op->idx_new = index_key(c->tenant, c->id, idlen, &op->idx_new_len);
  }
  if (op->idx_keep) {
#ifndef NDEBUG
    size_t kl = 0;
    char *k = index_key(c->tenant, c->id, idlen, &kl);
    check_known_index_key(s, c->id, idlen, k, kl);
    free(k);
#endif
  } else if (prev == NULL) {
    op->idx_old = current_index_key(s, c->id, idlen, &op->idx_old_len);
  } else {
    op->idx_old = known_index_key(prev->tenant, c->id, idlen, &op->idx_old_len);
#ifndef NDEBUG
    check_known_index_key(s, c->id, idlen, op->idx_old, op->idx_old_len);
#endif
  }
  if (op->idx_old != NULL && op->idx_new != NULL && op->idx_old_len == op->idx_new_len &&
      memcmp(op->idx_old, op->idx_new, op->idx_new_len) == 0) {
    free(op->idx_old);
    op->idx_old = NULL;
  }
  ov_set(s, DB_CONNECTIONS, op->key, op->keylen, op, false);
  if (op->idx_old)
    ov_set(s, DB_BY_TENANT, op->idx_old, op->idx_old_len, op, true);
  if (op->idx_new)
    ov_set(s, DB_BY_TENANT, op->idx_new, op->idx_new_len, op, false);
  enqueue(s, op);
  return 0;
}

int store_conn_put(store_t *s, const conn_t *c, store_cb cb, void *arg)
{
  return store_conn_replace(s, c, NULL, cb, arg);
}

int store_conn_delete(store_t *s, const char *id, store_cb cb, void *arg)
{
  return store_conn_delete_ev(s, id, 0, cb, arg);
}

/* The data object of a delete's events: from the record the loop sees
 * (pending writes included), or one with only the id. */
static bool delete_ev_data(store_t *s, const char *id, buf_t *out)
{
  conn_t c;
  int rc = store_conn_get(s, id, &c);
  bool ok;
  if (rc == 0) {
    ok = s->ev_data(s->ev_arg, &c, out) == 0;
    conn_free(&c);
  } else {
    conn_t bare = {.id = (char *)id};
    ok = s->ev_data(s->ev_arg, &bare, out) == 0;
  }
  return ok;
}

int store_conn_delete_ev(store_t *s, const char *id, unsigned flags, store_cb cb, void *arg)
{
  int rc = check_key(s, id);
  if (rc != 0)
    return rc;
  store_op_t *op = op_new(OP_CONN_DEL, DB_CONNECTIONS, id);
  op->cb = cb;
  op->arg = arg;
  if (s->ev_data != NULL && delete_ev_data(s, id, &op->ev_data)) {
    op->ev_on = true;
    op->ev_flags = flags;
  }
  op->idx_old = current_index_key(s, op->key, op->keylen, &op->idx_old_len);
  ov_set(s, DB_CONNECTIONS, op->key, op->keylen, op, true);
  if (op->idx_old)
    ov_set(s, DB_BY_TENANT, op->idx_old, op->idx_old_len, op, true);
  enqueue(s, op);
  return 0;
}

int store_state_consume(store_t *s, const char *state, store_state_cb cb, void *arg)
{
  int rc = check_key(s, state);
  if (rc != 0)
    return rc;
  size_t kl = strlen(state);
  MDB_txn *txn;
  if ((rc = store__rtxn_begin(s, &txn)) != 0)
    return rc;
  const void *v;
  size_t vn;
  state_rec_t rec;
  memset(&rec, 0, sizeof(rec));
  rc = store__lookup(s, txn, DB_STATES, state, kl, &v, &vn);
  if (rc == 0) {
    rc = state_rec_decode(v, vn, state, kl, s->kr, &rec);
    if (rc != 0)
      store__report_bad(s, DB_STATES, state, kl, rc);
  }
  store__rtxn_end(s);
  if (rc != 0)
    return rc;
  store_op_t *op = op_new(OP_CONSUME, DB_STATES, state);
  op->consumed = rec;
  op->scb = cb;
  op->arg = arg;
  ov_set(s, DB_STATES, op->key, op->keylen, op, true);
  enqueue(s, op);
  return 0;
}

int store_flush(store_t *s, store_cb cb, void *arg)
{
  if (s->closing)
    return GRANTD_ESHUTDOWN;
  store_op_t *op = op_new(OP_NOOP, DB_META, NULL);
  op->cb = cb;
  op->arg = arg;
  enqueue(s, op);
  return 0;
}

void store_close(store_t *s, void (*cb)(void *arg), void *arg)
{
  s->closing = true;
  s->close_cb = cb;
  s->close_arg = arg;
  if (s->running || s->completing)
    return; /* after_work_cb commits what is queued, then finishes */
  if (s->pend_head != NULL) {
    start_commit(s);
    return;
  }
  store__finish_close(s);
}
