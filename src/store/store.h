/*
 * store.h - grantd's durable state: one LMDB environment, msgpack records
 * (record.h) with secrets sealed (seal.h), group-committed writes.
 *
 * Databases (named LMDB databases in one environment, file data.mdb in the
 * data directory):
 *   providers    name -> provider value
 *   connections  id -> connection value
 *   states       state -> authorization state value (single use)
 *   by_tenant    tenant 0x00 id -> empty (listing index, kept by the store)
 *   events       big-endian uint64 sequence -> connection event (outbox.h):
 *                written by the commit worker in the same txn as the
 *                connection put/delete that causes it, trimmed to the
 *                retention (events_keep, events_keep_ms) in each batch
 *   meta         "schema" -> schema version; "key:" + 4-byte id -> a value
 *                sealed with that key, so a wrong master key is detected at
 *                open instead of at the first secret read.
 *
 * Threads. Every function here is called on the loop thread. Reads run
 * right there in short read-only transactions (one reused read txn handle,
 * reset/renewed per call: about a microsecond plus decoding). Writes are
 * queued and committed by one worker of libuv's thread pool:
 *
 *   - A write (put/delete/consume) encodes and seals its value on the loop at
 *     enqueue time and joins the queue; it returns at once.
 *   - The ops queued while no commit is running form the next batch. Exactly
 *     one batch at a time is committed with uv_queue_work: begin a write txn,
 *     apply all ops in queue order, commit (synced: the environment is not
 *     opened with MDB_NOSYNC, so a commit returns after fdatasync).
 *   - In the after-work callback, on the loop, every op of that batch gets
 *     its callback with the commit status, in queue order. A failed commit
 *     fails exactly the ops of that batch, with one status for all; nothing
 *     of that batch is stored. Retrying is the caller's business.
 *
 * Read-your-writes. While an op is pending, reads of its key (get, list,
 * scan) see the pending value, or its absence for a delete: an overlay hash
 * maps each key with pending ops to the latest pending bytes or a
 * tombstone; entries are dropped when their batch completes (on failure the
 * reads fall back to what LMDB holds). So the loop sees its own writes
 * immediately, but a pending value is NOT durable: code that answers a
 * client about a write must wait for the write's callback.
 *
 * Errors: 0 = ok; GRANTD_ENOT_FOUND (MDB_NOTFOUND); GRANTD_EMAP_FULL
 * (MDB_MAP_FULL: the batch failed, the environment stays usable, everything
 * committed earlier is intact; raise the map size); GRANTD_ESTORE_IO (any
 * other LMDB error; mdb_strerror() is logged); GRANTD_ESTORE_DECODE /
 * _VERSION / _AUTH / _KEY for a record that fails to decode or to
 * authenticate (logged with its database and key; never silently skipped).
 *
 * Deleting secrets: a delete removes the key from its B-tree; LMDB reuses
 * the freed pages for later writes but does not zero them, so sealed bytes
 * may linger in free pages of data.mdb until overwritten. They are
 * ciphertext under the master key, never plaintext.
 */
#ifndef GRANTD_STORE_STORE_H
#define GRANTD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/outbox.h"
#include "store/record.h"
#include "store/seal.h"
#include "store/webhook.h"

#define STORE_DEFAULT_MAP_SIZE ((size_t)1 << 30) /* 1 GiB, sparse */
#define STORE_SCHEMA_VERSION 1

typedef struct store store_t;

typedef struct {
  uv_loop_t *loop;
  const char *path; /* data directory; created 0700 if missing */
  size_t map_size;  /* bytes; 0 = STORE_DEFAULT_MAP_SIZE */
  /* Borrowed; must outlive the store. Its current key seals new secrets and
   * must be set. */
  const seal_keyring_t *keyring;
  /* Event retention: at most events_keep events (0 = STORE_EVENTS_KEEP)
   * and none older than events_keep_ms (0 = STORE_EVENTS_KEEP_MS); the
   * newest event always stays, so numbering goes on after a restart. */
  size_t events_keep;
  int64_t events_keep_ms;
  /* Events some webhook endpoint has not finished yet (above the lowest
   * endpoint cursor, webhook.h) are kept past events_keep and
   * events_keep_ms, up to this many events held in all (0 = 4 x
   * events_keep); beyond it the oldest are dropped anyway, counted in
   * grantd_events_dropped_undelivered_total and logged
   * (events_dropped_undelivered). */
  size_t events_keep_undelivered;
} store_opts_t;

#define STORE_EVENTS_KEEP ((size_t)100000)
#define STORE_EVENTS_KEEP_MS ((int64_t)7 * 24 * 3600 * 1000)

/* Opens (creating if needed) the store: the directory (mode 0700), the LMDB
 * environment (MDB_NOTLS, file mode 0600) and its databases; checks the
 * schema version and the keyring against the check values in `meta`,
 * recording a check value for every key id it has not seen yet. Blocking
 * file I/O: call at start-up.
 * @param out the new store on success.
 * @return 0;
 *   GRANTD_EINVALID      opts incomplete or the keyring has no current key;
 *   GRANTD_ESTORE_WRONG_KEY  a key of the keyring does not open its check
 *                        value (the master key differs from the one the store
 *                        was created with);
 *   GRANTD_ESTORE_VERSION  the store has a newer schema version;
 *   GRANTD_ESTORE_DECODE   the stored schema version is malformed;
 *   GRANTD_EMAP_FULL       no room even for the meta records;
 *   GRANTD_ESTORE_IO     directory or LMDB failure (logged);
 *   a libuv code from uv_idle_init. */
int store_open(store_t **out, const store_opts_t *opts);

/* Replaces the keyring (a SIGHUP reload), on the loop, between writes:
 * every key of kr whose id the store has a check value for must open it
 * (else GRANTD_ESTORE_WRONG_KEY, logged with the id, and nothing changes);
 * kr must have a current key (else GRANTD_EINVALID). Check values for ids
 * new to the store are queued like writes. From the call on, writes are
 * sealed with kr's current key and reads open with kr. kr is borrowed
 * (must outlive the store or the next call); the old one may be freed as
 * soon as this returns 0, since the store seals and opens on the loop
 * only. Which keys records still need is the caller's check
 * (store_seal_census). @return 0, the codes above, GRANTD_ESTORE_IO,
 * GRANTD_ESHUTDOWN. */
int store_set_keyring(store_t *s, const seal_keyring_t *kr);

/* True when the directory `dir` already holds a store (LMDB's data file,
 * data.mdb), whose secrets are sealed with some master key; also true when
 * that cannot be told (the file cannot be examined for a reason other than
 * its absence). Only looks: creates and opens nothing, so it may run before
 * any key is known. */
bool store_exists(const char *dir);

/* Stops accepting writes (later writes return GRANTD_ESHUTDOWN), lets the
 * running commit finish, commits everything still queued (their callbacks
 * run as usual), closes the environment and the store's libuv handle, then
 * calls cb(arg) once and frees the store (the pointer is invalid when cb
 * runs). Shutdown must keep running the loop until cb has run, e.g.
 * `store_close(s, on_closed, &done); while (!done) uv_run(loop, UV_RUN_ONCE);`
 * or simply uv_run(loop, UV_RUN_DEFAULT) when nothing else is active.
 * Must be called once, not from inside a store read or scan callback. */
void store_close(store_t *s, void (*cb)(void *arg), void *arg);

/* ---- writes ----
 * Each returns 0 and later calls cb(arg, status) exactly once on the loop,
 * after the batch holding the op was committed (status 0) or failed
 * (GRANTD_EMAP_FULL or GRANTD_ESTORE_IO); or returns an error at once and
 * never calls cb: GRANTD_EINVALID (missing key / key longer than 511 bytes),
 * GRANTD_ESTORE_KEY (no current sealing key), GRANTD_ESHUTDOWN (closing).
 * Records are encoded and sealed during the call: the caller keeps
 * ownership of them and may free them right after. cb may be NULL. */
typedef void (*store_cb)(void *arg, int status);

int store_provider_put(store_t *s, const provider_t *p, store_cb cb, void *arg);
int store_provider_delete(store_t *s, const char *name, store_cb cb, void *arg);
/* Puts a connection and keeps by_tenant in step (the old index entry is
 * removed in the same txn when the tenant changed). */
int store_conn_put(store_t *s, const conn_t *c, store_cb cb, void *arg);
/* As store_conn_put, for a caller that knows the record c replaces: prev is
 * that connection as the loop sees it now (pending writes included: what
 * store_conn_get gave, with nothing written to c->id since), NULL = not
 * known (then exactly store_conn_put). Only prev->tenant is used: by_tenant
 * is kept in step without reading the stored record again, and when the
 * tenant is the same (every refresh) the commit neither reads the old
 * record nor rewrites its index entry. A wrong prev
 * would leave a stale by_tenant entry; builds without NDEBUG check the
 * claim against the store and abort when it is false. */
int store_conn_replace(store_t *s, const conn_t *c, const conn_t *prev, store_cb cb, void *arg);
/* Deletes a connection and its by_tenant entry. Deleting a key that does not
 * exist is not an error (status 0). */
int store_conn_delete(store_t *s, const char *id, store_cb cb, void *arg);
int store_state_put(store_t *s, const state_rec_t *st, store_cb cb, void *arg);
int store_state_delete(store_t *s, const char *state, store_cb cb, void *arg);

/* Consumes an authorization state: reads it (pending writes included) and
 * queues its deletion in one step, so a second consume of the same state,
 * even before the commit, gets GRANTD_ENOT_FOUND.
 * @return 0 and later cb(arg, status, rec): status 0 with the record
 *         (borrowed for the call; copy what you need) once the deletion is
 *         committed, or the commit's error with rec NULL;
 *         or at once, without cb: GRANTD_ENOT_FOUND, a decode error
 *         (GRANTD_ESTORE_*, the bad record is left in place and logged),
 *         GRANTD_EINVALID, GRANTD_ESHUTDOWN. */
typedef void (*store_state_cb)(void *arg, int status, const state_rec_t *rec);
int store_state_consume(store_t *s, const char *state, store_state_cb cb, void *arg);

/* Calls cb(arg, status) once every write queued before this call has been
 * committed or failed (status 0 when the flush itself had nothing to fail;
 * each write reports its own status). Runs cb from a later loop iteration
 * even when nothing is queued. @return 0 or GRANTD_ESHUTDOWN. */
int store_flush(store_t *s, store_cb cb, void *arg);

/* Number of ops queued or committing (0 = drained). */
size_t store_pending(const store_t *s);

/* ---- reads (pending writes included) ----
 * get: 0 with *out filled (free with the record's *_free), GRANTD_ENOT_FOUND,
 * GRANTD_ESTORE_* for a record that fails to decode/authenticate (logged
 * with its key), GRANTD_ESTORE_IO. */
int store_provider_get(store_t *s, const char *name, provider_t *out);
int store_conn_get(store_t *s, const char *id, conn_t *out);
/* store_conn_get() for a token read: the refresh token is not unsealed
 * (record.h, conn_decode_token_view: refresh_token stays NULL, *has_rt
 * tells whether there is one). Never write such a record back when
 * *has_rt is true. */
int store_conn_get_token_view(store_t *s, const char *id, conn_t *out, bool *has_rt);
int store_state_get(store_t *s, const char *state, state_rec_t *out);

/* Lists connections in id order after `cursor` (an opaque string returned as
 * *next by the previous page, NULL = from the start), at most `limit`
 * (0 = 100), filtered by tenant (NULL = all; uses by_tenant) and status
 * (-1 = all). *out is an xmalloc'd array of *n records (free each with
 * conn_free, then free() the array; NULL when *n is 0); *next is an
 * xmalloc'd cursor when more matching records follow, else NULL.
 * A record that fails to decode is logged with its key, counted in
 * store_stats().decode_errors and left out of the page.
 * @return 0 or GRANTD_ESTORE_IO (nothing allocated). */
int store_conn_list(store_t *s, const char *tenant, int status, const char *cursor, size_t limit,
                    conn_t **out, size_t *n, char **next);

/* Scan callbacks: return 0 to go on, non-zero to stop the scan (that value
 * is then returned by the scan). The record is borrowed for the call. The
 * callbacks may call store reads and queue writes. */
typedef int (*store_provider_fn)(void *arg, const provider_t *p);
typedef int (*store_conn_fn)(void *arg, const conn_t *c);
typedef int (*store_sched_fn)(void *arg, const conn_sched_t *c);
/* Reports a record that failed to decode: database name, key bytes (not
 * NUL-terminated), the GRANTD_ESTORE_* code. The scan goes on afterwards. */
typedef void (*store_bad_fn)(void *arg, const char *db, const char *key, size_t keylen, int err);

/* Calls fn for every provider / connection in key order, in one read txn;
 * records that fail to decode go to bad (which may be NULL; they are logged
 * and counted either way). @return 0, fn's non-zero value, or
 * GRANTD_ESTORE_IO. */
int store_provider_scan(store_t *s, store_provider_fn fn, store_bad_fn bad, void *arg);
int store_conn_scan(store_t *s, store_conn_fn fn, store_bad_fn bad, void *arg);
/* The start-up scan: decodes only the unsealed scheduling fields
 * (conn_sched_t, slices borrowed for the call), no AES work. */
int store_conn_scan_sched(store_t *s, store_sched_fn fn, store_bad_fn bad, void *arg);

/* One bounded step of the expired-state sweep: looks at up to `max` states
 * (0 = 256) in key order after `cursor` (NULL = from the first; pending
 * writes included) and queues the deletion of each whose expires_at is at
 * or before now_ms (its commit is group-committed like any write; a failed
 * one leaves the state for a later sweep). A state that fails to decode is
 * logged and counted, never deleted. *next receives an xmalloc'd cursor for
 * the next step, or NULL when the end of the database was reached (start
 * over from NULL next time). *examined and *deleted count this step.
 * @return 0, GRANTD_ESTORE_IO or GRANTD_ESHUTDOWN (nothing queued then). */
int store_state_sweep(store_t *s, int64_t now_ms, const char *cursor, size_t max, char **next,
                      size_t *examined, size_t *deleted);

/* ---- sealing keys in use, and the re-seal job's steps (store_reseal.c) ----
 *
 * A record "uses" a key id when one of its sealed fields (seal.h blobs)
 * names it; a record counts once per key id it uses. Counting reads the
 * blobs' headers only: no AES, no plaintext. */
#define STORE_CENSUS_MAX_IDS 32
typedef struct {
  size_t n; /* distinct key ids seen (at most STORE_CENSUS_MAX_IDS kept) */
  uint32_t id[STORE_CENSUS_MAX_IDS];
  uint64_t records[STORE_CENSUS_MAX_IDS]; /* records using id[i] */
  uint64_t sealed;                        /* records with at least one sealed field */
  uint64_t old;                           /* records using a key other than the current one */
} store_census_t;

/* Counts the committed providers, connections, states and webhook
 * endpoints by key id, in one read txn (pending writes are not seen: call
 * it before writing, at start-up). Linear in the store's size. @return 0 or GRANTD_ESTORE_IO. */
int store_seal_census(store_t *s, store_census_t *out);

/* Records of a census using key `id` (0 when none). */
uint64_t store_census_count(const store_census_t *c, uint32_t id);

/* The position and tallies of one re-seal pass over providers, then
 * connections, then states, then webhook endpoints, in key order. Zero it
 * to start a pass (STORE_RESEAL_INIT); store_reseal_reset() frees the
 * cursor and zeroes it again. */
typedef struct {
  int db;       /* position: which database (0..3), 4 = the pass is done */
  char *cursor; /* last key visited in that database (xmalloc'd) or NULL */
  size_t cursor_len;
  store_census_t pass; /* what the pass counted so far, re-sealed records
                        * counted under the current key */
  uint64_t resealed;   /* records re-sealed by this pass */
  uint64_t unreadable; /* records using a key it could not open (logged) */
  uint64_t deferred;   /* records on an older key left to their pending
                        * write (counted as old: another pass confirms) */
} store_reseal_t;
#define STORE_RESEAL_INIT \
  { \
    0 \
  }
void store_reseal_reset(store_reseal_t *r);

/* One bounded step of a pass: visits up to `max` committed records (0 =
 * 64) after r's position; each that uses a key other than the keyring's
 * current one, and has no write pending (a pending write is sealed with
 * the current key already; the record is counted as old and in
 * r->deferred until a later pass sees it committed), is decoded and put
 * again, so it is re-sealed
 * with the current key; the puts are group-committed like any write, and
 * each record is replaced atomically, so a crash leaves every record
 * readable under the old key or the new one and the next pass picks up
 * what is left. A record that fails to open (its key id is not in the
 * keyring: GRANTD_ESTORE_KEY, or damaged) is logged and counted in
 * r->unreadable, never rewritten. Reads and writes of other records go on
 * between steps.
 * @return 0 (the pass goes on), 1 (the pass is done: r->pass is its
 *         census; reset r for the next), GRANTD_ESTORE_IO or
 *         GRANTD_ESHUTDOWN. */
int store_reseal_step(store_t *s, store_reseal_t *r, size_t max);

/* Reads the committed bytes of a key straight from LMDB, ignoring pending
 * writes (diagnostics and tests). db is one of "providers", "connections",
 * "states", "by_tenant", "meta", "events". Appends the value to out.
 * @return 0, GRANTD_ENOT_FOUND, GRANTD_EINVALID (unknown db), GRANTD_ESTORE_IO. */
int store_committed_get(store_t *s, const char *db, const void *key, size_t keylen, buf_t *out);

/* ---- connection events (the outbox) ----
 *
 * Off until store_set_events(). Then every store_conn_put and
 * store_conn_delete carries its change's data object, built on the loop at
 * enqueue time by data(arg, record, out) (for a delete: from the record the
 * loop sees, or a record with only the id when it cannot be read; data
 * must append a JSON object and never a secret; non-zero = no event for
 * that write). In the write txn the worker compares with the record it
 * replaces (outbox_put_events / outbox_delete_events), numbers the events
 * and stores them with the change: an event exists exactly when its change
 * was committed. After a batch that committed events, committed(arg,
 * last_seq) runs on the loop, before the batch's write callbacks. */
typedef int (*store_ev_data_fn)(void *arg, const conn_t *c, buf_t *out);
typedef void (*store_ev_committed_fn)(void *arg, uint64_t last_seq);
void store_set_events(store_t *s, store_ev_data_fn data, store_ev_committed_fn committed,
                      void *arg);

/* store_conn_delete with OUTBOX_F_* flags for its events (OUTBOX_F_REVOKED
 * after a revocation at the provider). */
int store_conn_delete_ev(store_t *s, const char *id, unsigned flags, store_cb cb, void *arg);

/* One committed event; data is xmalloc'd, NUL-terminated. */
typedef struct {
  uint64_t seq;
  outbox_type_t type;
  uint8_t status, prev; /* outbox_status_name() */
  int64_t ts_ms;
  char *data;
  size_t data_len;
} store_event_t;

/* Committed events with seq > after, in order, at most limit (0 = 100);
 * *out is an xmalloc'd array of *n (NULL when 0; free with
 * store_events_free). An undecodable value is logged, counted and skipped.
 * @return 0 or GRANTD_ESTORE_IO. */
int store_events_read(store_t *s, uint64_t after, size_t limit, store_event_t **out, size_t *n);
void store_events_free(store_event_t *ev, size_t n);
/* The oldest retained and the last committed sequence numbers (0 = none
 * yet); events first..last are held. */
void store_events_bounds(const store_t *s, uint64_t *first, uint64_t *last);
/* Events pruned by retention since the store was opened. */
uint64_t store_events_trimmed(const store_t *s);

/* ---- webhook endpoints (webhook.h) ----
 *
 * `webhooks` holds each endpoint's record (secrets sealed), and
 * `webhook_progress` its delivery progress; both keyed by the endpoint's
 * name. Writes are group-committed like every write (callback contract
 * above). */

/* Puts the endpoint and, when prog is not NULL, its progress, in the same
 * batch (so one commit holds both); cb runs once for the pair. */
int store_webhook_put(store_t *s, const wh_rec_t *r, const wh_prog_t *prog, store_cb cb, void *arg);
/* Deletes the endpoint and its progress. */
int store_webhook_delete(store_t *s, const char *name, store_cb cb, void *arg);
/* Puts the progress of endpoint `name`. */
int store_webhook_progress_put(store_t *s, const char *name, const wh_prog_t *prog, store_cb cb,
                               void *arg);
/* Calls fn(arg, rec, prog) for every committed endpoint in name order, in
 * one read txn; prog is NULL when the endpoint has no (decodable)
 * progress. An endpoint that fails to decode goes to bad (may be NULL;
 * logged and counted either way). Records are borrowed for the call.
 * @return 0, fn's non-zero value, or GRANTD_ESTORE_IO. */
typedef int (*store_webhook_fn)(void *arg, const wh_rec_t *r, const wh_prog_t *prog);
int store_webhook_scan(store_t *s, store_webhook_fn fn, store_bad_fn bad, void *arg);
/* Undelivered events dropped by retention since open (store_opts_t). */
uint64_t store_events_dropped(const store_t *s);

/* ---- counters ---- */
typedef struct {
  uint64_t commits;         /* batches committed successfully */
  uint64_t commit_failures; /* batches whose commit failed */
  uint64_t ops_committed;   /* ops in successful batches */
  uint64_t ops_failed;
  uint64_t last_batch_size; /* ops in the last completed batch */
  double last_commit_ms;    /* txn begin..commit, measured in the worker */
  double commit_ms_total;   /* sum over all completed batches */
  uint64_t decode_errors;   /* records reported as undecodable */
  size_t pending;           /* ops queued or committing */
  size_t map_size;          /* configured map size, bytes */
  size_t used_bytes;        /* pages in use (last txn) * page size */
  uint64_t entries_connections;
} store_stats_t;

/* Fills *out. The store also publishes these through base/metrics.h:
 * grantd_store_commits_total, grantd_store_commit_failures_total,
 * grantd_store_ops_committed_total, grantd_store_commit_seconds (histogram),
 * grantd_store_last_batch_size, grantd_store_pending_ops,
 * grantd_store_decode_errors_total. */
void store_stats(store_t *s, store_stats_t *out);

#endif
