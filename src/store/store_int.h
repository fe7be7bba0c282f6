/*
 * store_int.h - what store.c (open, reads, listing, scans) and
 * store_write.c (queue, overlay, group commit) share. Not public.
 */
#ifndef GRANTD_STORE_STORE_INT_H
#define GRANTD_STORE_STORE_INT_H

#include <lmdb.h>
#include <stdbool.h>

#include "store/store.h"

enum {
  DB_PROVIDERS,
  DB_CONNECTIONS,
  DB_STATES,
  DB_BY_TENANT,
  DB_META,
  DB_EVENTS,
  DB_WEBHOOKS,
  DB_WH_PROGRESS,
  DB_COUNT
};

/* The plaintext sealed under meta "key:" + id with each key id. */
#define STORE_KEY_CHECK_PLAIN "grantd key check v1"

/* LMDB's default (and here only) key size limit. */
#define STORE_MAX_KEY 511

typedef enum {
  OP_PUT,      /* put val under key in db */
  OP_DEL,      /* delete key from db (missing key: fine) */
  OP_CONN_PUT, /* put a connection and keep by_tenant in step */
  OP_CONN_DEL, /* delete a connection and its by_tenant entry */
  OP_CONSUME,  /* delete a state; the decoded record goes to the callback */
  OP_NOOP,     /* store_flush marker */
} op_kind_t;

typedef struct store_op store_op_t;
struct store_op {
  store_op_t *next;
  op_kind_t kind;
  int db;
  char *key;
  size_t keylen;
  buf_t val;          /* encoded (and sealed) value of a put */
  char *tenant;       /* OP_CONN_PUT: new tenant (NULL = not indexed) */
  char *idx_new;      /* by_tenant keys this op adds / removes in the */
  size_t idx_new_len; /* overlay (the worker recomputes them in its txn) */
  char *idx_old;
  size_t idx_old_len;
  bool idx_keep; /* OP_CONN_PUT: same tenant as the record it replaces (the
                  * loop knows it): by_tenant is not touched at all */
  store_cb cb;
  store_state_cb scb;
  void *arg;
  state_rec_t consumed; /* OP_CONSUME */
  /* OP_CONN_PUT / OP_CONN_DEL with events on: the event data object
   * (store_ev_data_fn) and OUTBOX_F_* flags; the worker decides the event
   * types from the record it replaces. */
  buf_t ev_data;
  unsigned ev_flags;
  bool ev_on;
  conn_status_t ev_next; /* OP_CONN_PUT: the new record's status and grant */
  grant_t ev_grant;
};

/* One entry per key with pending ops: the latest op on that key decides
 * what reads see. by_tenant entries are owned by the connection op that
 * added or removed them. Entries are individually allocated, so pointers to
 * them stay valid while the table grows. */
typedef struct ov_entry ov_entry_t;
struct ov_entry {
  ov_entry_t *next;
  uint64_t hash;
  const store_op_t *op;
  int db;
  bool tomb;
  size_t keylen;
  char key[];
};

struct store {
  uv_loop_t *loop;
  const seal_keyring_t *kr;
  MDB_env *env;
  MDB_dbi dbi[DB_COUNT];
  size_t map_size;

  MDB_txn *rtxn; /* the reused read txn (reset between reads) */
  bool rtxn_active;

  /* Write queue: ops gathered for the next batch, and the batch in flight. */
  store_op_t *pend_head, *pend_tail;
  size_t npend;
  store_op_t *batch;
  size_t nbatch;
  bool running; /* a batch is in the thread pool */
  uv_work_t work;
  uv_idle_t kick; /* starts a commit at the next loop turn */
  bool kick_active;
  int batch_status; /* worker result */
  double batch_ms;

  /* Overlay hash. */
  ov_entry_t **ov;
  size_t ov_nb, ov_count;
  size_t ov_per_db[DB_COUNT];

  bool completing; /* after_work_cb is running the batch's callbacks */
  bool closing;
  bool closed; /* store__finish_close() has run */
  void (*close_cb)(void *arg);
  void *close_arg;

  store_stats_t st;

  /* Events (outbox.h, store_events.c). ev_last is the last committed
   * sequence number; the worker numbers a batch's events from it into
   * ev_batch_last and ev_last takes that value on the loop when the batch
   * committed. */
  store_ev_data_fn ev_data;
  store_ev_committed_fn ev_committed;
  void *ev_arg;
  uint64_t ev_last, ev_batch_last;
  uint64_t ev_first; /* oldest retained (0 = none), updated with ev_last */
  uint64_t ev_batch_first;
  size_t ev_keep;     /* retention: at most this many events */
  int64_t ev_keep_ms; /* and none older than this (the newest always stays) */
  int64_t batch_now_ms;
  uint64_t ev_trimmed; /* events pruned by retention since open */
  uint64_t ev_batch_trimmed;
  size_t ev_keep_max;  /* undelivered events are dropped only past this */
  uint64_t ev_dropped; /* undelivered events dropped since open */
  uint64_t ev_batch_dropped;
  uint64_t ev_batch_n[OUTBOX_TYPE_COUNT]; /* events of the batch by type */
};

extern const char *const store__db_names[DB_COUNT];

/* Maps an LMDB return code to grantd's (see store.h); logs unexpected ones
 * with what was being done. Safe on any thread. */
int store__mdb_err(int rc, const char *what);

/* Logs (and counts, on the loop) a record that failed to decode. */
void store__report_bad(store_t *s, int db, const char *key, size_t keylen, int err);

/* Overlay lookup: NULL when the key has no pending op. */
ov_entry_t *store__ov_find(store_t *s, int db, const char *key, size_t keylen);
/* Overlay entries of one db whose key starts with prefix and sorts after
 * `after` (prefix + after when after is given), sorted as LMDB sorts keys.
 * Returns an xmalloc'd array (NULL when *n is 0). */
ov_entry_t **store__ov_range(store_t *s, int db, const char *prefix, size_t plen, const char *after,
                             size_t alen, size_t *n);

/* Compares keys as LMDB's default comparator does. */
int store__keycmp(const char *a, size_t an, const char *b, size_t bn);

/* Read txn on the loop: begin (renew) and end (reset). */
int store__rtxn_begin(store_t *s, MDB_txn **txn);
void store__rtxn_end(store_t *s);

/* Value of a key as the loop sees it: pending op first, then LMDB (txn).
 * The bytes are borrowed until the txn ends or the loop turns.
 * @return 0, GRANTD_ENOT_FOUND or GRANTD_ESTORE_IO. */
int store__lookup(store_t *s, MDB_txn *txn, int db, const char *key, size_t keylen,
                  const void **val, size_t *vlen);

/* Queues a put of val (taken: *val is reset) under a binary key, with no
 * callback (the meta check values of new key ids). 0 or GRANTD_ESHUTDOWN. */
int store__put_raw(store_t *s, int db, const void *key, size_t keylen, buf_t *val);
/* Queues a put of val (taken) / a delete under a NUL-terminated key with a
 * callback, as the public writes do (store.h). 0, GRANTD_EINVALID or
 * GRANTD_ESHUTDOWN (val freed then, cb not called). */
int store__put_cb(store_t *s, int db, const char *key, buf_t *val, store_cb cb, void *arg);
int store__del_cb(store_t *s, int db, const char *key, store_cb cb, void *arg);

/* Worker side of the events (store_events.c), inside the batch's write
 * txn, before the op itself is applied: appends the events of one
 * connection op (from the record it replaces); and trims to the retention at the end of the
 * batch. @return an LMDB code. */
int store__ev_apply(store_t *s, MDB_txn *txn, const store_op_t *op);
int store__ev_trim(store_t *s, MDB_txn *txn);
/* At open: the first and last sequence numbers held. */
int store__ev_load(store_t *s, MDB_txn *txn);

/* Called by store_close() in store_write.c once the queue is drained. */
void store__finish_close(store_t *s);

#endif
